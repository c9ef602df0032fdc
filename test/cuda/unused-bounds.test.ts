// A mask that never reads k (or never reads q) leaves some of the tile classifier's bounds unused;
// nvcc's -Werror refused such kernels ("variable k_lo was declared but never referenced"). Every
// engine builds them now.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const masks = { qonly: 'q > w', konly: 'k >= w' } as const;
const engines = [
  ['simt', 'f32'],
  ['mma', 'bf16'],
  ['wgmma', 'bf16'],
  ['wgmma-ws', 'bf16'],
] as const;

describe('classifier bounds a mask does not read', () => {
  it('build with nvcc -Werror on every engine', async () => {
    const parts: string[] = [];
    for (const [name, mask] of Object.entries(masks))
      for (const [engine, dtype] of engines) {
        const source = `attention ${name}(w: int = 5) { mask ${mask} }`;
        const a = compile(source, { target: 'cuda', headDim: 64, dtype, schedule: { engine } }).artifact;
        expect(a.schedule.engine).toBe(engine);
        expect(a.code).toMatch(/\(void\)(k_lo|q_lo)/);
        parts.push(a.code.replaceAll(`attnc_${name}`, `attnc_${name}_${engine.replace('-', '_')}`));
      }
    const dir = scratchDir('unused-bounds');
    const tu = join(dir, 'unused.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(NVCC, [...flags, '-c', tu, '-o', join(dir, 'unused.o')]), `nvcc ${tu}`);
  }, 900_000);
});
