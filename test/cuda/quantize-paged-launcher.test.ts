// The CUDA launcher of a paged cache's quantize kernels (codegen/cuda/quantize-host.ts) refuses,
// with ATTNC_ERR_ARGS and a message naming the argument, a block table whose capacity is below Nk
// (rows past it), an empty pool and a NULL block table. A host program calls
// it (no GPU needed: every case fails before the first CUDA call), as launcher-limits.test.ts does.
// Page ids are in device memory: the kernels skip rows whose page is outside the pool
// (test/quant/cuda-quantize-paged.test.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact, hostExecutableFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const cases: [string, string][] = [
  [
    'a.max_pages = 2;',
    "quantize k: the block table's max_pages=2 pages of 16 rows hold fewer than Nk=40 tokens",
  ],
  [
    'a.max_pages = -1;',
    "quantize k: the block table's max_pages=-1 pages of 16 rows hold fewer than Nk=40 tokens",
  ],
  ['a.pages = 0;', 'quantize k: pages=0: the pools hold no page'],
  ['a.block_table = NULL;', 'quantize k: block_table is NULL'],
];

describe('the CUDA quantize launcher of a paged cache checks its arguments on the host', () => {
  it('bad arguments get ATTNC_ERR_ARGS and a message', async () => {
    const dir = scratchDir('quantize-paged-launcher');
    const { artifact } = compile(
      'attention pql() {\n  cache paged 16\n  store k int4 scale f16 per channel group 8 zero f16 recent 4 f16\n}',
      { target: 'cuda', headDim: 64, valueDim: 64, dtype: 'f16', arch: 'sm_80' },
    );
    const cu = writeArtifact(dir, artifact);
    const main = join(dir, 'pql_main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static char dev[1 << 12] __attribute__((aligned(64)));
static void show(int code) { printf("%d|%s\\n", code == ATTNC_ERR_ARGS, attnc_pql_last_error()); }
static void reset(AttncQuantizeArgs_pql_k* a) {
  *a = AttncQuantizeArgs_pql_k{};
  a->x = dev; a->block_table = (const int*)dev; a->codes = (unsigned int*)dev;
  a->scale = dev; a->zero = dev; a->recent = dev;
  a->B = 1; a->Hkv = 2; a->Nk = 40; a->start = 0; a->n = 40; a->max_pages = 3; a->pages = 3;
}
int main(void) {
  AttncQuantizeArgs_pql_k a;
${cases.map(([set]) => `  reset(&a); { ${set} } show(attnc_pql_quantize_k(&a, 0));`).join('\n')}
  return 0;
}
`,
    );
    const exe = join(dir, 'pql_main');
    expectOk(
      await run(NVCC, [...hostExecutableFlags('sm_80'), main, '-o', exe]),
      'nvcc (paged quantize launcher)',
    );
    const r = await run(exe, []);
    expectOk(r, exe);
    expect(r.stdout.trim().split('\n')).toEqual(cases.map(([, msg]) => `1|attnc_pql: ${msg}`));
  }, 300_000);
});
