// Quantized K/V in the tensor-core decode kernel (decode-mma-quant.ts): int8 and fp8 code rows
// dequantized into f16 fragments with folded per-token scales, run on the CPU emulator (warp-level
// stand-in for the f16 mma.sync, decode-mma-emu.ts) and merged by decode.ts's merge kernel, against
// the float64 reference of the dequantized caches: K and V element types mixed, GQA 1..8 × Nq,
// ragged Nk, splits ending inside a tile, a causal mask, q in f32 and bf16.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agrees, type Case } from './decode-mma-packed-emu.js';

/** What an int8 / fp8 cache's kernel holds: its pair reader; the key-major kernel behind its switch. */
const QUANT_KERNEL = ['dmq_k(', '#if ATTNC_DEC_MMA_KM'];

/**
 * `knobs`: ATTNC_DEC_* overrides (decode-knobs.ts) defined before the kernel. q̂ (f32 q) and p·s
 * round to f16 (2^-11 each), the output to bf16 where that is the dtype (2^-9): agrees' bounds.
 */
const emulate = (
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
  mutate: (device: string) => string = (d) => d,
): Promise<void> => agrees(tag, store, dtype, c, mask, knobs, QUANT_KERNEL, mutate);

describe('quantized K/V in the tensor-core decode kernel (CPU emulation) agrees with the reference', () => {
  it('int8, scale f16 per token: GQA 4 x Nq 1, ragged Nk, splits ending inside a tile (f32 and bf16 q)', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('i8f', 'store kv int8 scale f16 per token', 'f32', c);
    await emulate('i8b', 'store kv int8 scale f16 per token', 'bf16', c);
    await emulate('i8o', 'store kv int8 scale f16 per token', 'bf16', { ...c, Nk: 190, oddScales: true });
  }, 600_000);
  it('e4m3 per token; e5m2 unscaled K with int8 V; int8 K with e4m3 V: GQA 8 x Nq 3, causal', async () => {
    await emulate('e4', 'store kv e4m3 scale f16 per token', 'bf16', {
      B: 1,
      H: 8,
      Hkv: 1,
      Nq: 3,
      Nk: 260,
      splitKeys: 260,
    });
    await emulate(
      'e5',
      'store k e5m2\n  store v int8 scale f16 per token',
      'f32',
      { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 },
      'mask causal',
    );
    await emulate('ie', 'store k int8 scale f16 per token\n  store v e4m3', 'bf16', {
      B: 1,
      H: 2,
      Hkv: 2,
      Nq: 1,
      Nk: 97,
      splitKeys: 48,
    });
  }, 600_000);
  it('e3m4 (no hardware conversion: the bit decoder on every arch) per token K, unscaled V', async () => {
    const c = { B: 1, H: 4, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 };
    await emulate('e3', 'store k e3m4 scale f16 per token\n  store v e3m4', 'bf16', c, 'mask causal');
  }, 600_000);
  it('tile knobs: QKEYS 16 x QSTAGES 3, QKEYS 16, 4 warps x 32 keys x 5 stages (int8, e4m3; splits ending inside a tile)', async () => {
    const c = { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 700 };
    await emulate('ks3', 'store kv int8 scale f16 per token', 'bf16', c, '', {
      MMA_QKEYS: 16,
      MMA_QSTAGES: 3,
    });
    await emulate('kk16', 'store kv e4m3 scale f16 per token', 'bf16', c, '', { MMA_QKEYS: 16 });
    await emulate(
      'kw4',
      'store kv int8 scale f16 per token',
      'f32',
      { ...c, Nq: 2, Nk: 530 },
      'mask causal',
      {
        MMA_QWARPS: 4,
        MMA_QKEYS: 32,
        MMA_QSTAGES: 5,
      },
    );
  }, 600_000);
  // The one-pointer code-row fetch (ATTNC_DEC_MMA_FETCH_RUNS 1: KIVI's default, off for int8 / fp8)
  // over 128-byte rows; splits ending inside a tile (rows past a split's end must arrive as zeros:
  // the e4m3 case fails when one more row is copied), and 4 warps (a pass of 32 rows, 4 a tile).
  it('code rows from one pointer a thread (ATTNC_DEC_MMA_FETCH_RUNS 1): int8 with 4 warps, e4m3 GQA 8 x Nq 3', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('fr8', 'store kv int8 scale f16 per token', 'bf16', c, '', {
      MMA_FETCH_RUNS: 1,
      MMA_QWARPS: 4,
    });
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 };
    const knobs = { MMA_FETCH_RUNS: 1, MMA_LEAN: 3 };
    await emulate('fre4', 'store kv e4m3 scale f16 per token', 'bf16', g8, 'mask causal', knobs);
  }, 600_000);
  it('lean (ATTNC_DEC_MMA_LEAN, decode-mma-lean.ts): one row half at GQA 4; both halves and one in GQA 8 x Nq 3, causal', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('l3', 'store kv int8 scale f16 per token', 'bf16', c, '', { MMA_LEAN: 3 });
    await emulate('l1', 'store kv int8 scale f16 per token', 'f32', c, '', { MMA_LEAN: 1, MMA_QKEYS: 16 });
    // 24 packed rows: row group 0 takes both halves, row group 1 one; empty causal rows.
    await emulate(
      'l3c',
      'store kv e4m3 scale f16 per token',
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 },
      'mask causal',
      { MMA_LEAN: 3 },
    );
  }, 600_000);
  it('key-major kernel (decode-mma-km.ts, -DATTNC_DEC_MMA_KM=1): int8 (f32 and bf16 q, odd scale windows), e4m3 GQA 8 x Nq 3 (three row groups), unscaled e5m2 K with int8 V, int8 K with unscaled e4m3 V, e3m4, 4 warps x 16 keys, causal, sliding window, softcap; a dropped K scale fails', async () => {
    const km = { MMA_KM: 1 };
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('k8f', 'store kv int8 scale f16 per token', 'f32', c, '', km);
    await emulate('k8b', 'store kv int8 scale f16 per token', 'bf16', c, '', km);
    await emulate(
      'k8o',
      'store kv int8 scale f16 per token',
      'bf16',
      { ...c, Nk: 190, oddScales: true },
      '',
      km,
    );
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await emulate('ke4', 'store kv e4m3 scale f16 per token', 'bf16', g8, '', km);
    const mixed = { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 };
    await emulate('ke5', 'store k e5m2\n  store v int8 scale f16 per token', 'f32', mixed, '', km);
    await emulate('kie', 'store k int8 scale f16 per token\n  store v e4m3', 'bf16', mixed, '', km);
    await emulate('ke3', 'store k e3m4 scale f16 per token\n  store v e3m4', 'bf16', mixed, '', km);
    await emulate('kw4', 'store kv int8 scale f16 per token', 'bf16', { ...c, Nk: 400, splitKeys: 144 }, '', {
      ...km,
      MMA_QWARPS: 4,
      MMA_QKEYS: 16,
    });
    // Masks and a score modifier: causal (three row groups), a sliding window (skipped tiles), softcap.
    await emulate('kc', 'store kv e4m3 scale f16 per token', 'bf16', g8, 'mask causal', km);
    const sw = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 520, splitKeys: 128 };
    await emulate('ksw', 'store kv int8 scale f16 per token', 'bf16', sw, 'mask causal && q - k < 100', km);
    const sc = 'score 20.0 * tanh(score / 20.0)\n  mask causal';
    await emulate('ksc', 'store kv int8 scale f16 per token', 'f32', mixed, sc, km);
    const dropK = (d: string): string => {
      const from = 's[mt][e] *= sk[mt][e >> 1] * qinv[e & 1];';
      expect(d).toContain(from);
      return d.replace(from, 's[mt][e] *= qinv[e & 1];');
    };
    await expect(
      emulate('kmu', 'store kv int8 scale f16 per token', 'bf16', c, '', km, dropK),
    ).rejects.toThrow();
  }, 600_000);
  it('random eligible formats for k and v, GQA, Nq, ragged Nk, split lengths, q dtype', async () => {
    const seed = process.env.CI ? 11 : Date.now() % 100_000;
    const elem = fc.constantFrom(
      'int8 scale f16 per token',
      'e4m3 scale f16 per token',
      'e5m2 scale f16 per token',
      'e4m3',
      'e5m2',
    );
    const cases = fc.sample(
      fc.record({
        k: elem,
        v: elem,
        dtype: fc.constantFrom('f32' as const, 'bf16' as const),
        group: fc.integer({ min: 1, max: 8 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        Nq: fc.integer({ min: 1, max: 3 }),
        Nk: fc.integer({ min: 1, max: 300 }),
        splitKeys: fc.integer({ min: 1, max: 300 }),
        causal: fc.boolean(),
      }),
      { numRuns: 3, seed },
    );
    for (const [i, r] of cases.entries()) {
      const shape = { B: 1, H: r.Hkv * r.group, Hkv: r.Hkv, Nq: r.Nq, Nk: r.Nk, splitKeys: r.splitKeys };
      const store = `store k ${r.k}\n  store v ${r.v}`;
      // Both kernels whatever the default (key-major for fp8 caches, query-major with an int8 side).
      await emulate(`r${i}`, store, r.dtype, shape, r.causal ? 'mask causal' : '', { MMA_KM: 0 });
      await emulate(`rk${i}`, store, r.dtype, shape, r.causal ? 'mask causal' : '', { MMA_KM: 1 });
    }
  }, 900_000);
});
