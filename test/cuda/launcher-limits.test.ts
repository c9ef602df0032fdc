// The CUDA launcher refuses what its kernels' 32-bit index arithmetic cannot hold (issue #9 items
// 3, 10): positions that leave int32, B·H past 2^31 − 1, Nq/Nk past the tile-rounding headroom,
// non-finite scale and f32 params, tensor-sizing params past the limit, misaligned pointers, K/V
// strides that overlap rows, are negative or break the vector loads.
// A host program calls the launcher with bad arguments and prints its codes and messages (no GPU
// needed: every case fails before the first CUDA call); what cannot execute is read off the code.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_ROWS } from '../../src/codegen/cuda/launcher-checks.js';
import { compile } from '../../src/compile.js';
import { expectOk, run, scratchDir, writeArtifact, hostExecutableFlags } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';

const source = `attention lim(cap: f32 = 30.0, n: int = 4, doc: i32[kv], gain: f32[n]) {
  score cap * tanh(score / cap) + gain[k % n]
  mask doc[q] == doc[k] && causal
}
`;

/** Each case: C statements on a fresh `a` (args_init(1, 2, 1, 8, 8), valid pointers), the message. */
const cases: [string, string][] = [
  // Issue #9: row 0 would see 5 keys, the kernel saw none (positions wrapped).
  [
    'a.q_offset = 2147483644; a.k_offset = 2147483640;',
    'query positions [2147483644, 2147483651] are too close to the int32 limit (q_offset + Nq - 1 must be <= 2147482623, 2^31 - 1 - 1024: tile padding; got q_offset = 2147483644, Nq = 8)',
  ],
  [
    'a.k_offset = 2147483641;',
    'key positions [2147483641, 2147483648] are too close to the int32 limit (k_offset + Nk - 1 must be <= 2147482623, 2^31 - 1 - 1024: tile padding; got k_offset = 2147483641, Nk = 8)',
  ],
  // Inside int32 but within a tile's padding of its end: padding rows' positions would wrap.
  [
    'a.k_offset = 2147483000;',
    'key positions [2147483000, 2147483007] are too close to the int32 limit (k_offset + Nk - 1 must be <= 2147482623',
  ],
  // Positions fit, their difference does not: q - k in a mask (and the dilation rewrite) would wrap.
  [
    'a.q_offset = 2000000000; a.k_offset = -2000000000;',
    'q - k ranges over [3999999993, 4000000007], which leaves int32 (q_offset = 2000000000, k_offset = -2000000000)',
  ],
  ['a.B = 65535; a.H = 65535; a.Hkv = 1;', 'B * H (65535 * 65535) must be at most 2147483647'],
  ['a.Nk = 2147483647;', `Nq (8) and Nk (2147483647) must be at most ${MAX_ROWS} (2^31 - 2^20)`],
  ['a.scale = INFINITY;', 'scale must be finite (got inf)'],
  ['a.scale = NAN;', 'scale must be finite (got nan)'],
  ['a.cap = -INFINITY;', 'param cap (f32) must be finite (got -inf)'],
  ['a.n = 2147483647;', `param n sizes a tensor and must be in [0, ${MAX_ROWS}] (got 2147483647)`],
  ['a.lse = (float*)(dev + 2);', 'lse must be 4-byte aligned (got 0x'],
  ['a.doc = (const int*)(dev + 1);', 'doc must be 4-byte aligned (got 0x'],
  ['a.doc_summary = (int*)(dev + 3);', 'doc_summary must be 4-byte aligned (got 0x'],
  ['a.k = dev + 4;', 'q, k, v and out must be non-NULL and 16-byte aligned'],
  // K/V strides (kv-rows.ts): rows that overlap, negative strides, strides off the vector width.
  ['a.k_stride_n = 8;', 'k_stride_n (8) is smaller than a row of k (16 elements): its rows would overlap'],
  ['a.v_stride_h = -16;', 'v strides must be >= 0 (got v_stride_b = 128, v_stride_h = -16, v_stride_n = 16)'],
  [
    'a.k_stride_h = 18;',
    "k strides must be multiples of 4 elements, the kernel's vector loads (got 128, 18, 16)",
  ],
];

describe('the CUDA launcher validates values and limits on the host', () => {
  const compiled = compile(source, { target: 'cuda', dtype: 'f32', headDim: 16 });
  const code = compiled.artifact.code;

  it('states the limits in the header', () => {
    const header = compiled.artifact.files!['lim.h']!;
    expect(header).toContain('B * H <= 2^31 - 1');
    expect(header).toContain(`0 <= Nq, Nk <= ${MAX_ROWS} (2^31 - 2^20)`);
    expect(header).toContain('q_offset + Nq - 1 and k_offset + Nk - 1 <= 2^31 - 1 - 1024;');
    expect(header).toContain('every q - k fits an int');
    expect(header).toMatch(/lse, doc, gain, doc_summary 4-byte/);
  });

  it('decode mode packs (H / Hkv) · Nq rows in an int only when they fit', () => {
    expect(code).toContain('if ((long long)(a.H / a.Hkv) * a.Nq > 2147483647LL - MT) return false;');
  });

  it('bad arguments get ATTNC_ERR_ARGS and a message; the largest valid ones pass the checks', async () => {
    const dir = scratchDir('limits');
    const cu = writeArtifact(dir, compiled.artifact);
    const calls = cases.map(([set]) => `  reset(&a); { ${set} } show(attnc_lim_launch(&a, 0));`);
    const main = join(dir, 'limits_main.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static char dev[1 << 12] __attribute__((aligned(64)));
static void show(int code) { printf("%d|%s\\n", code, attnc_lim_last_error()); }
static void reset(AttncArgs_lim* a) {
  attnc_lim_args_init(a, 1, 2, 1, 8, 8);
  a->q = dev; a->k = dev; a->v = dev; a->out = dev; a->lse = (float*)dev;
  a->doc = (const int*)dev; a->gain = (const float*)dev;
  a->doc_summary = (int*)dev;
}
int main(void) {
  AttncArgs_lim a;
${calls.join('\n')}
  /* The default q_offset (Nk - Nq) ends at position Nk - 1: fits even at the largest Nk. */
  reset(&a);
  attnc_lim_args_init(&a, 1, 2, 1, 8, ${MAX_ROWS});
  a.q = NULL;
  show(attnc_lim_launch(&a, 0));
  /* The last positions that fit pass the checks (then fail for want of a GPU, or run). */
  reset(&a); a.q_offset = 2147482616; a.k_offset = 2147482616;
  show(attnc_lim_launch(&a, 0));
  return 0;
}
`,
    );
    const exe = join(dir, 'limits_main');
    expectOk(await run(NVCC, [...hostExecutableFlags('sm_80'), main, '-o', exe]), 'nvcc (launcher limits)');
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    cases.forEach(([set, message], i) => {
      expect(lines[i], set).toContain(`1|attnc_lim: ${message}`);
    });
    expect(lines[cases.length]).toBe('1|attnc_lim: q, k, v and out must be non-NULL and 16-byte aligned');
    expect(lines[cases.length + 1]).toMatch(/^(2\|attnc_lim: summary of doc: .+|0\|)$/);
  }, 600_000);
});

// Block routing forms a block's end, (id + 1) · RB, in an int: with blocks larger than the tile
// padding's 1024 positions, the last block of keys at 2^31 − 1 − 1024 ended past 2^31 − 1 (the
// CPU emulation of route_pool_k crashed there). Positions then keep a whole block of headroom.
describe('the CUDA launcher keeps a routing block of headroom below 2^31 - 1', () => {
  const big = 'attention big(top: int = 1) { route blocks(2048) topk(top) by mean(q) . mean(k) }\n';
  const compiled = compile(big, { target: 'cuda', dtype: 'f32', headDim: 16, schedule: { engine: 'simt' } });
  const limit = 2 ** 31 - 1 - 2048;

  it('states it in the header', () => {
    const header = compiled.artifact.files!['big.h']!;
    expect(header).toContain('q_offset + Nq - 1 and k_offset + Nk - 1 <= 2^31 - 1 - 2048;');
    expect(header).toContain('(id + 1) * 2048): q_offset');
  });

  it('refuses positions within a block of the limit and passes the last ones that fit', async () => {
    const dir = scratchDir('limits-routing');
    const cu = writeArtifact(dir, compiled.artifact);
    const tile = 2 ** 31 - 1 - 1024 - 7; // fine for the tile padding, not for a block's end
    const calls = [
      `a.k_offset = ${tile};`,
      `a.q_offset = ${tile};`,
      `a.q_offset = ${limit - 7}; a.k_offset = ${limit - 7}; a.q = NULL;`,
    ].map((set) => `  attnc_big_args_init(&a, 1, 1, 1, 8, 8); { ${set} } show(attnc_big_launch(&a, 0));`);
    const main = join(dir, 'limits_routing.cu');
    writeFileSync(
      main,
      `#include "${cu}"
#include <stdio.h>
static void show(int code) { printf("%d|%s\\n", code, attnc_big_last_error()); }
int main(void) {
  AttncArgs_big a;
${calls.join('\n')}
  return 0;
}
`,
    );
    const exe = join(dir, 'limits_routing');
    expectOk(await run(NVCC, [...hostExecutableFlags('sm_80'), main, '-o', exe]), 'nvcc (routing limits)');
    const r = await run(exe, []);
    expectOk(r, exe);
    const lines = r.stdout.trim().split('\n');
    const why = `must be <= ${limit}, 2^31 - 1 - 2048: the end of a routing block of 2048`;
    expect(lines[0]).toBe(
      `1|attnc_big: key positions [${tile}, ${tile + 7}] are too close to the int32 limit (k_offset + Nk - 1 ${why}; got k_offset = ${tile}, Nk = 8)`,
    );
    expect(lines[1]).toContain(`1|attnc_big: query positions [${tile}, ${tile + 7}] are too close`);
    // Past the position checks: the first pointer check answers.
    expect(lines[2]).toBe('1|attnc_big: q, k, v and out must be non-NULL and 16-byte aligned');
  }, 600_000);
});
