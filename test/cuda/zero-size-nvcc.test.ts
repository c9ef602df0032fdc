// Small head dims where a dead `if constexpr` branch of the CUDA source declared a zero-sized
// array, which nvcc rejects even there (a discarded branch outside a template is still checked).
// The fuzz campaign (round 15, seed 1701 draws 13 and 22) found both: a paged cache at D = 16
// f16 (kv-rows.ts's per-row page lookups, `rows[N]` with N = 0) and `emit`/`select` voting at
// D = 5 (select-vote.ts's 16-byte key loads, `k8[CH]` with CH = 0). One nvcc run, -Werror.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const CASES = [
  { source: 'attention zp() {\n  cache paged 64\n  mask causal\n}\n', headDim: 16 },
  { source: 'attention zs() {\n  emit topk(2) by q . k vote heads\n}\n', headDim: 5 },
  { source: 'attention zt() {\n  select topk(3) by q . k\n  mask causal\n}\n', headDim: 3 },
];

describe('CUDA kernels at small head dims build with nvcc (no zero-sized arrays)', () => {
  it('paged D = 16 and token voting at D = 5 and 3, f16 (sm_90a, warnings as errors)', async () => {
    const dir = scratchDir('zero-size');
    const code = CASES.map(
      ({ source, headDim }) =>
        compile(source, { target: 'cuda', dtype: 'f16', headDim, file: 'z.attn' }).artifact.code,
    );
    const tu = join(dir, 'zero-size.cu');
    writeFileSync(tu, code.join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
  }, 600_000);
});
