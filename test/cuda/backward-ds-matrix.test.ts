// The dsMatrix knob of the Hopper backward (backward-wgmma-tune.ts): dS goes into its [query][key]
// panels by stmatrix.trans from dK's packed A fragments instead of one 16-bit store per element.
// Nothing here runs stmatrix, so: a model of its PTX semantics (x4: lane L names row L % 8 of
// matrix L / 8; .trans: lane 4r + c's register holds row r, columns 2c and 2c + 1 of the matrix
// before the transpose) puts every element exactly where the element stores put it, once; the
// knob replaces those stores and nothing else; and where it is dropped. The numerics: H100 calls
// 28–30 (bench/device-calls/c28-backward-ds-matrix.sh) checked every pattern against torch
// autograd (gradients bit-equal to the element stores' kernel).
import { describe, expect, it } from 'vitest';
import { WGMMA_BWD_TUNE } from '../../src/codegen/cuda/backward-wgmma.js';
import type { BackwardWgmmaTune } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import { producerBackwardCode } from './backward-engines.js';

/** pswz<ROWS>(row, col) as the kernel defines it (128-byte XOR swizzle of 64-wide panels). */
const pswz = (rows: number, row: number, col: number): number =>
  (col >> 6) * (rows * 64) + row * 64 + ((((col >> 3) ^ row) & 7) << 3);

/** Where the element stores put dS of (key kl, query ql): the emitted dsAt, BM = 64. */
const elementAt = (kl: number, ql: number): number => pswz(64, ql & 7, kl) + (kl & 7) + (ql >> 3) * 512;

/** The address lane L gives in k-step kv (DS_MATRIX_STORE's expression). */
const rowAddress = (warp: number, lane: number, kv: number): number =>
  pswz(64, lane & 7, warp * 16 + 8 * ((lane >> 3) & 1)) + (2 * kv + (lane >> 4)) * (8 * 64);

describe('dsMatrix: stmatrix.trans addressing', () => {
  it('stores every (key, query) of the 128 × 64 dS tile where the element stores did, once', () => {
    const seen = new Map<number, string>();
    for (let warp = 0; warp < 8; warp++)
      for (let kv = 0; kv < 4; kv++)
        for (let m = 0; m < 4; m++) {
          // Register m of every lane is matrix m: n-tile j = 2 kv + m / 2, key half h = m % 2
          // (pa_dk[kv][m] = pack2(s[j][2h], s[j][2h + 1])).
          const j = 2 * kv + (m >> 1);
          const h = m & 1;
          for (let lane = 0; lane < 32; lane++)
            for (let c = 0; c < 2; c++) {
              const [g, t4] = [lane >> 2, lane & 3];
              const kl = warp * 16 + g + 8 * h; // the accumulator's row: a key
              const ql = j * 8 + t4 * 2 + c; // its column: a query
              // .trans: element (row g, column 2 t4 + c) lands in memory row 2 t4 + c, column g;
              // memory row r of matrix m is at the address lane 8 m + r gives.
              const at = rowAddress(warp, 8 * m + (2 * t4 + c), kv) + g;
              expect(at).toBe(elementAt(kl, ql));
              expect(seen.has(at)).toBe(false);
              seen.set(at, `${kl},${ql}`);
            }
        }
    expect(seen.size).toBe(128 * 64);
    expect(Math.min(...seen.keys())).toBe(0);
    expect(Math.max(...seen.keys())).toBe(128 * 64 - 1);
  });
  it('names 16-byte-aligned rows, as stmatrix needs', () => {
    for (let warp = 0; warp < 8; warp++)
      for (let kv = 0; kv < 4; kv++)
        for (let lane = 0; lane < 32; lane++) expect(rowAddress(warp, lane, kv) % 8).toBe(0);
  });
});

const code = producerBackwardCode;
const without: BackwardWgmmaTune = { ...WGMMA_BWD_TUNE, dsMatrix: false };

describe('dsMatrix: what it changes', () => {
  it('is on by default at D = 128: four stmatrix a k-step before the dK wgmmas, no element stores of dS', () => {
    for (const name of ['causal', 'softcap', 'document', 'dilated', 'neighbourhood', 'full']) {
      const c = code(name, WGMMA_BWD_TUNE);
      expect(c, name).toContain('stmatrix.sync.aligned.m8n8.x4.trans.shared.b16');
      expect(c, name).not.toContain('= from_f32(s[j][e]); // dS, [query][key]');
      const tile = c.slice(c.indexOf('// dK += dSᵀ·Q.'));
      const store = tile.indexOf('stsm_x4_t(Ss + pswz<BM>');
      expect(store, name).toBeGreaterThan(tile.indexOf('pa_dk[kv][3] = pack2('));
      expect(store, name).toBeLessThan(tile.indexOf('wg_fence();'));
      expect(store, name).toBeLessThan(tile.indexOf('proxy_fence(); // dS'));
    }
  });
  it('removes the element stores and adds the helper and the stores, nothing else', () => {
    const on = code('causal', WGMMA_BWD_TUNE).split('\n');
    const off = code('causal', without).split('\n');
    const added = on.filter((l) => !off.includes(l));
    const removed = off.filter((l) => !on.includes(l));
    expect(removed.map((l) => l.trim())).toEqual(
      removed.map(
        () =>
          'Ss[pswz<BM>(t4 * 2 + (e & 1), kl) + (kl & 7) + j * (8 * 64)] = from_f32(s[j][e]); // dS, [query][key]',
      ),
    );
    expect(removed.length).toBeGreaterThan(0);
    expect(added.some((l) => l.includes('__device__ __forceinline__ void stsm_x4_t('))).toBe(true);
    expect(added.filter((l) => l.includes('stsm_x4_t(Ss + pswz<BM>')).length).toBe(1);
  });
  it('is dropped at D = 64, in the deterministic mode (no dS in shared memory) and without packFirst', () => {
    expect(code('causal', WGMMA_BWD_TUNE, 64)).toBe(code('causal', without, 64));
    expect(code('causal', WGMMA_BWD_TUNE, 128, true)).toBe(code('causal', without, 128, true));
    expect(code('causal', { ...WGMMA_BWD_TUNE, packFirst: false })).toBe(
      code('causal', { ...without, packFirst: false }),
    );
  });
});
