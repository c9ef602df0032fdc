// KIVI caches (int4 / int2 codes, K per channel in groups of 32 tokens, V per token in groups of 32
// channels, f16 scale and zero point, recent f16 tokens) in the tensor-core decode kernel
// (decode-mma-kivi.ts, -DATTNC_DEC_MMA_KIVI=1), run on the CPU emulator (warp-level stand-in for
// the f16 mma.sync, decode-mma-emu.ts) and merged by decode.ts's merge kernel, against the float64
// reference of the dequantized caches: int4 and int2 (and mixed), GQA, Nq, ragged Nk, with and
// without recent tokens (a window inside one split, across splits, longer than Nk), splits not
// aligned to K's groups of 32, a causal mask, q in f32 and bf16; mutations (wrong zero points)
// must fail.
import { describe, expect, it } from 'vitest';
import { agrees, emulate } from './decode-mma-packed-emu.js';

const kivi = (kb: number, vb: number, recent: number): string => {
  const r = recent > 0 ? ` recent ${recent} f16` : '';
  return (
    `store k int${kb} scale f16 per channel group 32 zero f16${r}\n` +
    `  store v int${vb} scale f16 per token group 32 zero f16${r}`
  );
};

describe('KIVI K/V in the tensor-core decode kernel (CPU emulation) agrees with the reference', () => {
  it('int4: GQA 4, ragged Nk, recent 40 inside the last split, splits not aligned to 32 (bf16 and f32 q); misaligned scale tensors; tiny K scales', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('i4b', kivi(4, 4, 40), 'bf16', c);
    await agrees('i4f', kivi(4, 4, 0), 'f32', { ...c, Nk: 203, splitKeys: 70 });
    // Scale tensors 2 bytes off a 4-byte boundary: the windows' plain-copy path.
    await agrees('i4o', kivi(4, 4, 16), 'bf16', { ...c, Nk: 190, oddScales: true });
    // K scales near 2^-19 (f16 subnormals; no recent rows, which q · 2^16 would make dominate):
    // s′ = s · 2^-(e+1) takes both f16 factors.
    await agrees('i4t', kivi(4, 4, 0), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 });
  }, 600_000);
  it('int2: GQA 8 x Nq 3, causal, no recent; recent 128 across splits', async () => {
    await agrees(
      'i2c',
      kivi(2, 2, 0),
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 260 },
      'mask causal',
    );
    await agrees(
      'i2r',
      kivi(2, 2, 128),
      'f32',
      { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 },
      'mask causal',
    );
  }, 600_000);
  it('head dim 64, both kernels: int4 with a recent window; int2 GQA 4 x Nq 3 causal', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100, D: 64 };
    for (const km of [1, 0]) {
      await agrees(`d4${km}`, kivi(4, 4, 40), 'bf16', c, '', { MMA_KM: km, MMA_LEAN: 3 });
      await agrees(`d2${km}`, kivi(2, 2, 0), 'f32', { ...c, Nq: 3 }, 'mask causal', {
        MMA_KM: km,
        MMA_LEAN: 3,
      });
    }
  }, 600_000);
  it('mixed int4 K / int2 V; a window longer than Nk; host-like splits of whole tiles (8 and 4 warps)', async () => {
    await agrees(
      'm42',
      `store k int4 scale f16 per channel group 32 zero f16 recent 32 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 32 f16`,
      'bf16',
      { B: 1, H: 4, Hkv: 2, Nq: 1, Nk: 97, splitKeys: 48 },
    );
    await agrees('all', kivi(2, 4, 128), 'bf16', { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 77, splitKeys: 40 });
    await agrees('big', kivi(2, 2, 128), 'bf16', { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 512 });
    // kivi_mma_w4s4's tile (decode-knobs.ts): 4 warps x 32 keys x 4 stages, splits of 3 tiles.
    await agrees(
      'w4s4',
      kivi(4, 4, 128),
      'bf16',
      { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1000, splitKeys: 384 },
      '',
      {
        MMA_QWARPS: 4,
        MMA_QSTAGES: 4,
      },
    );
  }, 600_000);
  // The tests above run the default (the key-major kernel since round 34, 4-warp blocks); this one
  // and the mutations below keep the query-major kernel (-DATTNC_DEC_MMA_KM=0) checked.
  it('query-major kernel, lean (ATTNC_DEC_MMA_KM 0, ATTNC_DEC_MMA_LEAN 3): one row half with a recent window (GQA 4); GQA 8 x Nq 3 causal', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('l3', kivi(4, 4, 40), 'bf16', c, '', { MMA_LEAN: 3, MMA_KM: 0 });
    await agrees(
      'l3c',
      kivi(2, 2, 32),
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 },
      'mask causal',
      { MMA_LEAN: 3, MMA_KM: 0 },
    );
  }, 600_000);
  it('mutations fail in both kernels (key-major, query-major): K zero points read as scales, V zero points not subtracted, tiny K scales mis-scaled', async () => {
    const c = { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 200, splitKeys: 100 };
    /** Every occurrence of `from` (the kernels share some lines) replaced; it must occur. */
    const swap =
      (from: string, to: string) =>
      (d: string): string => {
        expect(d).toContain(from);
        return d.replaceAll(from, to);
      };
    // Held in registers (uncapped) or read from shared memory at each use (capped: KM_HELD false,
    // the key-major default's three blocks an SM).
    const kz = (d: string): string =>
      swap(
        'dk_pair(swv + KGW, 2 * ks + h)',
        'dk_pair(swv, 2 * ks + h)',
      )(
        swap(
          'reinterpret_cast<const DmW4*>(gs + 2 * KGW + (lane & 3) * (D / 4))',
          'reinterpret_cast<const DmW4*>(gs + (lane & 3) * (D / 4))',
        )(d),
      );
    const vz = (d: string): string =>
      swap(
        'o[n][e] -= vz[n >> 1][e & 1];',
        '(void)0;',
      )(swap('o[4 * g + nq][2 * h8] -= x, o[4 * g + nq][2 * h8 + 1] -= x;', '(void)x;')(d));
    // Tiny K scales: the second f16 factor of s′ dropped.
    const fb = swap('f2b = dk_pow2h(fb) * 0x10001u', 'f2b = dk_pow2h(0) * 0x10001u');
    for (const km of [1, 0]) {
      const knobs = { MMA_KM: km };
      const ok = await emulate(`mok${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs);
      expect(ok.out).toBeLessThanOrEqual(4e-3);
      const k = await emulate(`mkz${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs, kz);
      const v = await emulate(`mvz${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs, vz);
      expect(Math.max(k.out, k.lse * 100), `KM ${km}: wrong K zero points`).toBeGreaterThan(1e-2);
      expect(v.out, `KM ${km}: V zero points dropped`).toBeGreaterThan(1e-2);
      const t = await emulate(`mfb${km}`, kivi(4, 4, 0), 'bf16', { ...c, kScaleShift: 16 }, '', knobs, fb);
      expect(t.out, `KM ${km}: tiny scales mis-scaled`).toBeGreaterThan(1e-2);
    }
  }, 600_000);
  it('key-major kernel (decode-mma-km.ts, -DATTNC_DEC_MMA_KM=1): GQA 4 with recent rows inside the last split, splits not aligned to 32 (bf16 and f32 q), tiny K scales, packed rows 8 and 16 (two row groups), Nq 3, 16-key m-tiles, 4 warps, causal, sliding window, softcap, the two-block register cap', async () => {
    const km = { MMA_KM: 1 };
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('k4b', kivi(4, 4, 40), 'bf16', c, '', km);
    await agrees('k4f', kivi(4, 4, 0), 'f32', { ...c, Nk: 203, splitKeys: 70 }, '', km);
    await agrees('k4t', kivi(4, 4, 0), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 }, '', km);
    await agrees(
      'k8',
      kivi(4, 4, 40),
      'bf16',
      { B: 1, H: 16, Hkv: 2, Nq: 1, Nk: 333, splitKeys: 120 },
      '',
      km,
    );
    await agrees(
      'k16',
      kivi(2, 4, 24),
      'f32',
      { B: 1, H: 16, Hkv: 1, Nq: 1, Nk: 290, splitKeys: 100 },
      '',
      km,
    );
    await agrees('kq3', kivi(4, 2, 8), 'bf16', { B: 2, H: 4, Hkv: 2, Nq: 3, Nk: 150, splitKeys: 72 }, '', km);
    await agrees('kk16', kivi(4, 4, 32), 'bf16', { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 400, splitKeys: 144 }, '', {
      ...km,
      MMA_QKEYS: 16,
      MMA_QWARPS: 4,
    });
    // Masks and a score modifier: causal GQA 8 x Nq 3 (no recent rows; recent 128 with f32 q), a
    // sliding window (tiles no query sees are skipped), softcap.
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await agrees('kc', kivi(2, 2, 0), 'bf16', g8, 'mask causal', km);
    const g3 = { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 };
    await agrees('kcr', kivi(2, 2, 128), 'f32', g3, 'mask causal', km);
    const sw = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 520, splitKeys: 128 };
    await agrees('ksw', kivi(4, 4, 40), 'bf16', sw, 'mask causal && q - k < 100', km);
    await agrees('ksc', kivi(4, 4, 16), 'bf16', g3, 'score 20.0 * tanh(score / 20.0)\n  mask causal', km);
    // Scale and zero words read from shared memory at each use (KM_HELD false).
    await agrees(
      'kb2',
      kivi(2, 2, 128),
      'bf16',
      { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 512 },
      '',
      {
        ...km,
        MMA_QMIN_BLOCKS: 2,
      },
    );
  }, 600_000);
});
