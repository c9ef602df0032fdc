// Per-token int4 / int2 caches (one f16 scale a token row for K; for V one a row or a run of 32·m
// channels; symmetric signed codes or an f16 zero point; an optional recent f16 window) in the
// key-major tensor-core decode kernel (decode-mma-tokint.ts), run on the CPU emulator and merged by
// decode.ts's merge kernel, against the float64 reference of the dequantized caches: both widths
// and mixed, both signednesses on either side, V groups, GQA, Nq, ragged Nk, splits not aligned to
// 32, recent windows, masks and a score modifier, tile knobs; mutations (unsigned reads of signed
// codes, a dropped K zero term, V zero points not subtracted, one V or K scale for every run, K words
// in the other order) must fail; K scales per run of channels (the interleaved K order).
import { describe, expect, it } from 'vitest';
import { agrees, emulate, type Case } from './decode-mma-packed-emu.js';

/** The kernel the tests expect: per-token pairs, the key-major kernel alone. */
const TOKEN_INT_KERNEL = ['dt_kpair(', 'static_assert(ATTNC_DEC_MMA_KM == 1'];

const side = (which: 'k' | 'v' | 'kv', bits: number, zero: boolean, group = 0, recent = 0): string =>
  `store ${which} int${bits} scale f16 per token${group ? ` group ${group}` : ''}${zero ? ' zero f16' : ''}` +
  (recent ? ` recent ${recent} f16` : '');
const both = (k: string, v: string): string => `${k}\n  ${v}`;

const ok = (
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
): Promise<void> => agrees(tag, store, dtype, c, mask, knobs, TOKEN_INT_KERNEL);

describe('per-token int4 / int2 K/V in the key-major tensor-core decode kernel (CPU emulation) agrees with the reference', () => {
  it('int4: symmetric and with zero points, GQA 4, ragged Nk, splits not aligned to 32 (bf16 and f32 q); misaligned scale tensors; tiny K scales', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await ok('s4b', side('kv', 4, false), 'bf16', c);
    await ok('z4f', side('kv', 4, true), 'f32', { ...c, Nk: 203, splitKeys: 70 });
    await ok('s4o', side('kv', 4, false), 'bf16', { ...c, Nk: 190, oddScales: true });
    await ok('z4t', side('kv', 4, true), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 });
  }, 600_000);

  it('int2 and mixed widths; V scales per 32 and 64 channels; one side symmetric, the other not; GQA 8 x Nq 3 causal', async () => {
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await ok('s2c', side('kv', 2, false), 'bf16', g8, 'mask causal');
    await ok('z2g', both(side('k', 2, true), side('v', 2, true, 32)), 'bf16', g8, 'mask causal');
    const c = { B: 2, H: 4, Hkv: 2, Nq: 2, Nk: 333, splitKeys: 128 };
    await ok('m42', both(side('k', 4, false), side('v', 2, true, 64)), 'f32', c);
    await ok('m24', both(side('k', 2, true), side('v', 4, false, 32)), 'bf16', c);
  }, 600_000);

  it('K scales per run of channels (the interleaved K order): int4 runs of 32 and 64, int2 of 64, with and without zero points, a recent window', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await ok('g4s', side('kv', 4, false, 32), 'bf16', c);
    await ok('g4z', both(side('k', 4, true, 64), side('v', 4, true, 32)), 'f32', {
      ...c,
      Nk: 203,
      splitKeys: 70,
    });
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await ok('g2z', side('kv', 2, true, 64), 'bf16', g8, 'mask causal');
    await ok('g4r', both(side('k', 4, true, 32, 40), side('v', 2, false, 64, 40)), 'bf16', c);
    await ok('g4t', side('kv', 4, true, 32), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 });
  }, 600_000);

  it('head dims 64 (int4; int2 in runs of 64 with zero points) and 256', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await ok('d64s', side('kv', 4, false), 'bf16', { ...c, D: 64 });
    await ok('d64g', side('kv', 2, true, 64), 'f32', { ...c, D: 64 }, 'mask causal');
    await ok('d256', both(side('k', 4, true), side('v', 4, true, 64)), 'bf16', { ...c, D: 256 });
  }, 600_000);

  it('recent f16 windows: inside the last split, across splits, longer than Nk', async () => {
    const rk = (bits: number, zero: boolean, r: number): string =>
      both(side('k', bits, zero, 0, r), side('v', bits, zero, 32, r));
    await ok('r40', rk(4, true, 40), 'bf16', { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 });
    await ok(
      'r128',
      rk(2, false, 128),
      'f32',
      { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 },
      'mask causal',
    );
    await ok('rall', rk(4, false, 128), 'bf16', { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 77, splitKeys: 40 });
  }, 600_000);

  it('a sliding window (tiles no query sees skipped), softcap; 8-warp blocks, 16-key m-tiles, packed rows 16 (two row groups)', async () => {
    const sw = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 520, splitKeys: 128 };
    await ok('ssw', side('kv', 4, false), 'bf16', sw, 'mask causal && q - k < 100');
    const g3 = { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 };
    await ok('zsc', side('kv', 4, true), 'bf16', g3, 'score 20.0 * tanh(score / 20.0)\n  mask causal');
    const big = { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 512 };
    await ok('w8', side('kv', 2, true), 'bf16', big, '', { MMA_QWARPS: 8, MMA_QMIN_BLOCKS: 1 });
    await ok('k16', side('kv', 4, false), 'bf16', { ...big, Nk: 400, splitKeys: 144 }, '', { MMA_QKEYS: 16 });
    await ok('p16', side('kv', 4, true), 'f32', { B: 1, H: 16, Hkv: 1, Nq: 1, Nk: 290, splitKeys: 100 });
  }, 600_000);

  it('mutations fail: signed codes read unsigned, the K zero term dropped, V zero points not subtracted, one V or K scale for every run, K words in the contiguous order', async () => {
    const c = { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 200, splitKeys: 100 };
    const swap =
      (from: string, to: string) =>
      (d: string): string => {
        expect(d).toContain(from);
        return d.replaceAll(from, to);
      };
    const run = (tag: string, store: string, mutate: (d: string) => string) =>
      emulate(tag, store, 'bf16', c, '', {}, mutate, TOKEN_INT_KERNEL);
    const sym = side('kv', 4, false);
    const asym = both(side('k', 4, true), side('v', 4, true, 32));
    const base = await run('mok', asym, (d) => d);
    expect(base.out).toBeLessThanOrEqual(4e-3);
    const unsigned = await run(
      'mus',
      sym,
      swap('return dmq_field(w, KBITS, KBITS * i, true);', 'return dmq_field(w, KBITS, KBITS * i, false);'),
    );
    expect(unsigned.out, 'signed K codes read unsigned').toBeGreaterThan(1e-2);
    const kz = await run('mkz', asym, swap('dec_half_bits(kzs[2 * KGW + row]) * qsum[g][e & 1]', '0.f'));
    expect(Math.max(kz.out, kz.lse * 100), 'K zero term dropped').toBeGreaterThan(1e-2);
    const vz = await run('mvz', asym, swap('o[n][e] -= vz[(n >> 1) / VGS][e & 1];', '(void)0;'));
    expect(vz.out, 'V zero points not subtracted').toBeGreaterThan(1e-2);
    const vs = await run('mvs', asym, swap('vzs[(kr + kr0) * VS + sg]', 'vzs[(kr + kr0) * VS]'));
    expect(vs.out, 'one V scale for every group').toBeGreaterThan(1e-2);
    const grouped = both(side('k', 4, true, 32), side('v', 4, true, 32));
    const ksg = await run(
      'mks',
      grouped,
      swap('const int row = (kr + 8 * (e >> 1)) * KS + g;', 'const int row = (kr + 8 * (e >> 1)) * KS;'),
    );
    expect(Math.max(ksg.out, ksg.lse * 100), 'one K scale for every run').toBeGreaterThan(1e-2);
    const kil = await run('mki', grouped, swap('kr[4 * m + (lane & 3)]', 'kr[KWL * (lane & 3) + m]'));
    expect(Math.max(kil.out, kil.lse * 100), 'K words in the contiguous order').toBeGreaterThan(1e-2);
  }, 600_000);
});
