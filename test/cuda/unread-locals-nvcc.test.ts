// Random programs compiled with nvcc -Werror all-warnings (scripts/fuzz-campaign.mjs, round 14)
// found generated locals nothing reads: the SIMT kernel of an all-empty mask (`mask false`) left
// its V tile pointer, q registers and tile constants unread, and the importance pass of a score
// that ignores q·k (`score exp(min(c0, 2.0))`) its scaled dot product, and the staged launcher of
// a kernel with only k quantized its V workspace pointer. nvcc warns (#177, #550),
// and -Werror, which the stdlib checks and engines use, refuses the kernel.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact, quickCheckFlags } from './support.js';

const cases = [
  ['empty_mask', 'attention empty_mask() {\n  mask false\n}', {}],
  ['empty_param', 'attention empty_param(w0: int = 3) {\n  mask q < w0 && false\n}', {}],
  // A score beside an empty mask: LOG2E goes unread too.
  [
    'empty_score',
    'attention empty_score() {\n  score exp(min(float(k - q) * 0.0078125, 2.0))\n  mask !true\n}',
    {},
  ],
  // The staged quantized prefill's launcher with only k quantized: its V workspace rows are unread.
  ['k_only', 'attention k_only() {\n  mask causal\n  store k e4m3 scale f32 per tensor\n}', { headDim: 64 }],
  [
    'imp_no_qk',
    'attention imp_no_qk(c0: f32 = 1.0) {\n  score exp(min(c0, 2.0))\n  mask causal\n}',
    { importance: 'sum' as const },
  ],
  // Row-invariant parts that live only inside a per-key hoist (`-c0`, `doc[w0]`): the per-row
  // copy (hq0[ROWS]) was set and never read (#550).
  ['hoist_min', 'attention hoist_min(c0: f32 = 1.5) {\n  score min(-c0, float(k % 64) * -1.0)\n}', {}],
  [
    'hoist_let',
    'attention hoist_let(w0: int = 28, doc: i32[kv], keep: i32[kv]) {\n  let d0 = doc[w0]\n  mask k < d0 ? keep[k] != 0 : true\n}',
    {},
  ],
] as const;

const artifacts = () =>
  cases.map(
    ([, source, o]) => compile(source, { target: 'cuda', headDim: 16, dtype: 'bf16', ...o }).artifact,
  );

describe('generated CUDA leaves no unread local', () => {
  it('casts the empty kernel’s tile state and the importance pass’s unread x to void', () => {
    const [empty, , , kOnly, imp] = artifacts();
    expect(kOnly!.code).toContain('(void)(vw == kw);');
    expect(empty!.code).toContain('(void)(Vs == Ks); (void)qr[0][0];');
    expect(imp!.code).toMatch(/const float x = a\.scale \* dot;\n\s*\(void\)x;/);
  });

  it('hoists no per-row copy of a part that only a per-key hoist reads', () => {
    for (const a of artifacts().slice(5)) {
      expect(a.code).toContain('hk0[kk] = kh0;');
      expect(a.code).not.toContain('hq0');
    }
  });

  it('nvcc -arch=sm_90a -Werror all-warnings accepts them', async () => {
    const dir = scratchDir('unread-locals');
    const codes = artifacts().map((a) => (writeArtifact(dir, a), a.code));
    const tu = join(dir, 'unread.cu');
    writeFileSync(tu, codes.join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
  }, 600_000);
});
