// Paged K/V caches with nvcc (no GPU needed): the tensor-core engines' code builds with warnings
// as errors, and the launcher's host checks refuse a bad block table (src/codegen/cuda/kv-rows.ts,
// launcher-checks.ts). Their execution is test/cuda/paged-emu.test.ts (SIMT, decode).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, quickCheckFlags, hostExecutableFlags } from './support.js';

const dir = scratchDir('paged-nvcc');

describe('paged K/V caches on the tensor-core engines (nvcc, warnings as errors)', () => {
  it('stdlib/paged-decode.attn builds for wgmma (sm_90a) and mma (sm_80) at D = 64 and 128', async () => {
    const source = readFileSync('stdlib/paged-decode.attn', 'utf8');
    for (const [arch, engine] of [
      ['sm_90a', 'wgmma'],
      ['sm_80', 'mma'],
    ] as const) {
      const parts: string[] = [];
      for (const headDim of [64, 128]) {
        const a = compile(source, { target: 'cuda', headDim, dtype: 'bf16', arch }).artifact;
        expect(a.schedule.engine).toBe(engine);
        parts.push(a.code.replaceAll(`attnc_${a.name}`, `attnc_${a.name}_d${headDim}`));
      }
      const tu = join(dir, `paged-${arch}.cu`);
      writeFileSync(tu, parts.join('\n'));
      const flags = quickCheckFlags(arch);
      expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
    }
  }, 600_000);
});

describe('the paged launcher checks its block table on the host (no GPU needed)', () => {
  it('a NULL table, max_pages that cannot hold Nk and a misaligned table are refused', async () => {
    const source = `attention pl() {\n  cache paged 8\n  mask causal\n}\n`;
    const c = compile(source, { target: 'cuda', dtype: 'f32', headDim: 16, arch: 'sm_80' });
    const ldir = join(dir, 'launcher');
    mkdirSync(ldir, { recursive: true });
    const cu = join(ldir, 'pl.cu');
    writeFileSync(cu, c.artifact.code);
    const cases: [string, string][] = [
      ['a.block_table = NULL;', 'block_table is NULL (a paged cache reads its keys through it)'],
      ['a.max_pages = 2;', "the block table's max_pages = 2 pages of 8 rows hold fewer than Nk = 20 keys"],
      ['a.block_table = (const int*)(dev + 2);', 'block_table must be 4-byte aligned'],
    ];
    const main = join(ldir, 'pl_main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static char dev[1 << 12] __attribute__((aligned(64)));
static void show(int code) { printf("%d|%s\\n", code, attnc_pl_last_error()); }
static void reset(AttncArgs_pl* a) {
  attnc_pl_args_init(a, 1, 2, 1, 4, 20);
  a->q = dev; a->k = dev; a->v = dev; a->out = dev; a->lse = (float*)dev;
  a->block_table = (const int*)dev;
}
int main(void) {
  AttncArgs_pl a;
  reset(&a);
  printf("%d %lld %lld %lld\\n", a.max_pages, a.k_stride_b, a.k_stride_h, a.k_stride_n);
${cases.map(([set]) => `  reset(&a); { ${set} } show(attnc_pl_launch(&a, 0));`).join('\n')}
  return 0;
}
`,
    );
    const exe = join(ldir, 'pl_main');
    expectOk(
      await run(process.env.NVCC ?? 'nvcc', [...hostExecutableFlags('sm_80'), main, '-o', exe]),
      'nvcc',
    );
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    // args_init: ceil(20 / 8) pages, HND pages [Hkv, 8, 16].
    expect(lines[0]).toBe(`3 ${1 * 8 * 16} ${8 * 16} 16`);
    cases.forEach(([set, message], i) => expect(lines[i + 1], set).toContain(`1|attnc_pl: ${message}`));
  }, 300_000);
});
