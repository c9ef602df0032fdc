// The Hopper backward's opt-in tile-body knobs (codegen/cuda/backward-wgmma-tune.ts). Nothing here
// runs wgmma, so: every knob off is the untuned source byte for byte (the opt-out's default), each knob changes what it
// says and nothing it should not, the descriptor low-word arithmetic agrees with desc128's 64-bit
// one on every shared-memory address, and nvcc sm_90a builds the tuned kernels with warnings as
// errors, bounded spills and no ptxas-injected warpgroup.arrive. The numerics are checked on the
// H200 by bench/cuda/backward.py (ENGINES=ws,ws_*: each against torch autograd before timing).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  dqBulkApplies,
  renderCudaBackwardWgmma,
  WGMMA_BWD_TUNE,
} from '../../src/codegen/cuda/backward-wgmma.js';
import { DQ_BULK_BYTES, DQ_LD } from '../../src/codegen/cuda/backward-wgmma-dq-bulk.js';
import { costlyMask } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import {
  ALL_TUNE,
  TUNE_ENGINES,
  TUNE_KNOBS,
  type BackwardWgmmaTune,
} from '../../src/codegen/cuda/backward-wgmma-tune.js';
import { expectNoSpills, expectOk, run, scratchDir, sassOnly } from './support.js';
import { producerBackwardCode, stdlibBackwardKernel } from './backward-engines.js';

const kernelOf = stdlibBackwardKernel;
const code = producerBackwardCode;

/** Round 9's default (every knob but dqBulk / pingPong, 8-byte dQ atomics): the knobs' baseline. */
const R9_TUNE: BackwardWgmmaTune = { ...ALL_TUNE, dq8: true };

/** The consumers' tile lambda of bwd_dkdv. */
const tileOf = (c: string): string =>
  c.slice(c.indexOf('auto tile = [&]'), c.indexOf('bool full;', c.indexOf('auto tile = [&]')));

describe('wgmma backward tune: the defaults', () => {
  it("the default is ws_pp where the mask is cheap, round 9's knobs where it is costly, the hand-over where summaries are read", () => {
    expect(WGMMA_BWD_TUNE).toEqual({
      ...TUNE_ENGINES.ws_pp,
      pingPongCheapOnly: true,
      tileHandoff: true,
      firstTilesFirst: true,
      dsMatrix: true,
      dqDouble: true,
    });
    expect(WGMMA_BWD_TUNE).toEqual(TUNE_ENGINES.ws_dq2);
    const ds = { dsMatrix: true, dqDouble: true };
    expect(code('full', WGMMA_BWD_TUNE)).toBe(code('full', { ...TUNE_ENGINES.ws_ho, ...ds })); // every tile full
    expect(code('causal', WGMMA_BWD_TUNE)).not.toBe(code('causal', { ...TUNE_ENGINES.ws_ho, ...ds }));
    const ft = { firstTilesFirst: true, ...ds };
    expect(code('full', WGMMA_BWD_TUNE)).toBe(code('full', { ...TUNE_ENGINES.ws_pp, ...ds }));
    expect(code('causal', WGMMA_BWD_TUNE)).toBe(code('causal', { ...TUNE_ENGINES.ws_pp, ...ft }));
    // Residue classes and 2-D patches keep their own block coordinates.
    expect(code('dilated', WGMMA_BWD_TUNE)).toBe(code('dilated', { ...TUNE_ENGINES.ws_pp, ...ds }));
    // Document: with the walk handed over its mask is cheap, so it takes the ping-pong kernel.
    expect(code('document', WGMMA_BWD_TUNE)).toBe(
      code('document', { ...TUNE_ENGINES.ws_pp, tileHandoff: true, ...ds }),
    );
    expect(code('document', WGMMA_BWD_TUNE)).not.toBe(code('document', R9_TUNE)); // round 20's default
    // heavy_hitter reads a tensor per element (costly) and classifies its tiles by position.
    expect(code('heavy_hitter', WGMMA_BWD_TUNE)).toBe(code('heavy_hitter', { ...R9_TUNE, ...ft }));
  });
  it('no tune is WGMMA_BWD_TUNE with a producer and NO_TUNE without; an empty one and every knob false emit the same source', () => {
    const off = Object.fromEntries(TUNE_KNOBS.map((k) => [k, false])) as BackwardWgmmaTune;
    for (const name of ['full', 'causal', 'softcap', 'document'])
      for (const producer of [false, true]) {
        const k = kernelOf(name, 128);
        const plain = renderCudaBackwardWgmma(k, { producer, tune: {} }).code;
        expect(renderCudaBackwardWgmma(k, { producer, tune: off }).code).toBe(plain);
        expect(renderCudaBackwardWgmma(k, { producer }).code).toBe(
          producer ? renderCudaBackwardWgmma(k, { producer, tune: WGMMA_BWD_TUNE }).code : plain,
        );
        expect(plain).not.toContain('ex2_ftz');
        expect(plain).not.toContain('desc_lo');
      }
  });
  it('each knob changes the source, and the bench engines name real knob sets', () => {
    const base = code('causal');
    // pingPong, splitCheapOnly and pingPongCheapOnly only qualify other knobs (their own tests).
    // tileHandoff applies to classifiers that read summaries (its own tests, on document).
    // dqDouble double-buffers pingPong's dQ block (alone it is dropped; its own tests below).
    const qualifiers: readonly string[] = [
      'pingPong',
      'splitCheapOnly',
      'pingPongCheapOnly',
      'tileHandoff',
      'dqDouble',
    ];
    for (const k of TUNE_KNOBS)
      if (!qualifiers.includes(k)) expect(code('causal', { [k]: true }), k).not.toBe(base);
    // pingPong needs dqBulk (alone it is dropped).
    expect(code('causal', { pingPong: true })).toBe(code('causal', {}));
    expect(code('causal', { dqBulk: true, pingPong: true })).not.toBe(code('causal', { dqBulk: true }));
    expect(code('causal', { dqDouble: true })).toBe(code('causal', {}));
    const pp = { dqBulk: true, pingPong: true };
    expect(code('causal', { ...pp, dqDouble: true })).not.toBe(code('causal', pp));
    expect(Object.keys(TUNE_ENGINES)).toEqual([
      'ws_exp',
      'ws_mask',
      'ws_pack',
      'ws_dqu',
      'ws_desc',
      'ws_dq8',
      'ws_n128',
      'ws_all',
      'ws_all8',
      'ws_dqb',
      'ws_pp',
      'ws_nosplit',
      'ws_ho',
      'ws_ho_split',
      'ws_ho_only',
      'ws_km',
      'ws_ft',
      'ws_dsm',
      'ws_dq2',
    ]);
    expect(TUNE_ENGINES.ws_nosplit).toEqual({ ...R9_TUNE, splitMask: false });
    expect(TUNE_ENGINES.ws_dqb).toEqual({ ...R9_TUNE, dqBulk: true });
    expect(TUNE_ENGINES.ws_pp).toEqual({ ...R9_TUNE, dqBulk: true, pingPong: true });
    expect(TUNE_ENGINES.ws_all).toEqual({ ...ALL_TUNE });
    expect(ALL_TUNE.dq8).toBe(false);
    expect(ALL_TUNE.dqBulk).toBe(false);
    expect(ALL_TUNE.pingPong).toBe(false);
  });
});

describe('wgmma backward tune: what each knob emits', () => {
  it('fastExp: P by ex2_ftz; an identity score folds scale and log2 e, a modified one does not', () => {
    const full = tileOf(code('full', { fastExp: true }));
    expect(full).not.toContain('exp2f(');
    expect(full).toContain('ex2_ftz(s[j][e] * (a.scale * LOG2E) - Lb[ql])');
    const soft = tileOf(code('softcap', { fastExp: true }));
    expect(soft).toMatch(/ex2_ftz\(\(.+\) \* LOG2E - Lb\[ql\]\)/);
    expect(code('full', { fastExp: true })).toContain('asm("ex2.approx.ftz.f32 %0, %1;"');
  });
  it('splitMask: full tiles take a loop without the ok tests, masked tiles the default one', () => {
    const t = tileOf(code('causal', { splitMask: true }));
    const masked = t.slice(t.indexOf('if (MASKED) {'), t.indexOf('} else {'));
    const full = t.slice(t.indexOf('} else {'), t.indexOf('// dV += '));
    expect(masked).toContain('ok = k0 + kl < a.Nk && q0 + ql < a.Nq;');
    expect(masked).toContain('s[j][e] = ok ? exp2f(');
    expect(full).not.toContain('a.Nk');
    expect(full).not.toContain('ok ?');
    expect(full).toContain('s[j][e] = exp2f((x) * LOG2E - Lb[ql]);');
  });
  it('packFirst: every A fragment packed before wgmma.fence, none between the wgmmas', () => {
    const t = tileOf(code('full', { packFirst: true }));
    for (const acc of ['dv', 'dk']) {
      const at = t.indexOf(`unsigned pa_${acc}[BM / 16][4];`);
      expect(at).toBeGreaterThan(0);
      const fence = t.indexOf('wg_fence();', at);
      const commit = t.indexOf('wg_commit();', fence);
      expect(t.slice(at, fence)).toContain(`pa_${acc}[kv][3] = pack2(`);
      expect(t.slice(fence, commit)).not.toContain('pack2(');
    }
  });
  it('dqUnroll and descLo: low-word descriptors, no 64-bit du() adds, the dQ loop unrolled', () => {
    const dq = tileOf(code('full', { dqUnroll: true }));
    const loop = dq.slice(dq.indexOf('const unsigned sd'));
    expect(loop).not.toContain('#pragma unroll 1');
    expect(loop).toContain('wg_dq(acc, desc_of(sd + ');
    const desc = tileOf(code('full', { descLo: true }));
    expect(desc).toContain('const unsigned kd = opaque32(desc_lo(Kw, 16))');
    expect(desc.slice(0, desc.indexOf('const int c0'))).not.toContain('du(');
    expect(desc).toContain('wg_qk(s, dsc(kd, (ks >> 2) * (BN * 64) + (ks & 3) * 16)');
  });
  it('n128: one m64n128 register-A wgmma per k-step at D = 128, LBO a 64-wide panel; m64n64 at D = 64', () => {
    const c = code('full', { n128: true });
    const t = tileOf(c);
    expect(c).toContain('wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16');
    expect(t).toContain('wg_pv_w<DV>(dv, pa, ot_d + du(kv * 16 * 64));');
    expect(t).toContain('wg_pv_w<D>(dk, pa, qt_d + du(kv * 16 * 64));');
    expect(t).not.toContain('wg_pv<1>');
    expect(t).toContain('qt_d = desc128(Qb, BM * 128), ot_d = desc128(Ob, BM * 128);');
    expect(c).toContain('if constexpr (W == 128) wg_pv128(d, a, db);');
    expect(tileOf(code('full', { n128: true, descLo: true }))).toContain('qt_d = desc_lo(Qb, BM * 128)');
  });
  it('dq8: the 8-byte atomics, no lane exchange', () => {
    const t = tileOf(code('full', { dq8: true }));
    expect(t).not.toContain('__shfl_xor_sync');
    expect(t).not.toContain('float4');
    expect(t).toContain('add2(dst + n * 8, acc[n][2 * r], acc[n][2 * r + 1])');
  });
});

describe('wgmma backward tune: dqBulk', () => {
  const dqb = TUNE_ENGINES.ws_dqb!;
  it('consumers store dQ blocks for the dQ warp, which adds them by bulk reductions; 96 loaders', () => {
    const c = code('causal', dqb);
    const t = tileOf(c);
    const store = t.slice(t.indexOf('if (v4) {'), t.indexOf('} else {', t.indexOf('if (v4) {')));
    expect(store).toContain('mbar_wait(&dq_empty[wg], (it - 1) & 1)');
    expect(store).toContain(
      '*reinterpret_cast<float2*>(row + n * 8) = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);',
    );
    expect(store).toContain('mbar_arrive(&dq_full[wg]);');
    expect(store).not.toContain('add2(');
    expect(t).toContain('add2(dst + n * 8'); // the fallback where dq_acc is not 16-byte aligned
    expect(c).toContain('cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;');
    const warp = c.slice(c.indexOf('if (tid >= THREADS + DQ_LOADERS) {'), c.indexOf('const int ptid'));
    expect(warp).toContain('mbar_wait(&dq_full[w], it & 1);');
    expect(warp).toContain('bulk_add_f32(dst + r * D, src + r * DQ_LD, 64 * 4);');
    expect(warp).toContain('if (lane == 0) mbar_arrive(&dq_empty[w]);');
    expect(warp).toContain('bulk_wait_all();');
    expect(warp).not.toContain('next_tile'); // told each block's place by the consumers
    expect(c).toContain('constexpr int DQ_LOADERS = 96, DQ_LD = 72;');
    expect(c).toContain('mbar_init(&full_bar[i], DQ_LOADERS);');
    expect(c).toContain('for (int t = ptid; t < THREADS; t += DQ_LOADERS) {');
    expect(c).toContain('for (int i = ptid; i < BM; i += DQ_LOADERS) {');
    expect(c).toContain('if ((tid & 127) == 0) dq_meta[2 * wg + 1] = -1;'); // the stop after the last tile
  });
  it('adds DQ_BULK_BYTES of shared memory; blocks 16-byte aligned rows, bank-conflict-free stores', () => {
    const smem = (c: string): number => Number(/constexpr int SMEM = (\d+);/.exec(c)![1]);
    expect(smem(code('full', dqb))).toBe(smem(code('full', R9_TUNE)) + DQ_BULK_BYTES);
    expect((DQ_LD * 4) % 16).toBe(0);
    expect(DQ_BULK_BYTES % 16).toBe(0);
    // A half warp's 8-byte stores (lanes g = 0..3, t4 = 0..3, two words each) on 32 distinct banks.
    const banks = new Set<number>();
    for (let lane = 0; lane < 16; ++lane)
      for (const word of [0, 1]) banks.add(((lane >> 2) * DQ_LD + (lane & 3) * 2 + word) % 32);
    expect(banks.size).toBe(32);
  });
  it('is dropped where it does not apply: deterministic mode, no producer, two carried slots', () => {
    for (const name of ['full', 'softcap']) {
      const k = kernelOf(name, 128);
      const same = (o: { producer: boolean; deterministic: boolean }) =>
        expect(renderCudaBackwardWgmma(k, { ...o, tune: dqb }).code).toBe(
          renderCudaBackwardWgmma(k, { ...o, tune: R9_TUNE }).code,
        );
      same({ producer: true, deterministic: true });
      same({ producer: false, deterministic: false });
    }
    expect(dqBulkApplies(kernelOf('full', 128), true, false)).toBe(true);
    expect(dqBulkApplies(kernelOf('document', 64), true, false)).toBe(true);
    expect(dqBulkApplies(kernelOf('full', 128), true, true)).toBe(false);
    expect(dqBulkApplies(kernelOf('softcap', 128), true, false)).toBe(false); // 2 slots: 64 KiB
    expect(code('softcap', dqb)).toBe(code('softcap', R9_TUNE));
  });
});

describe('wgmma backward tune: pingPong', () => {
  const pp = TUNE_ENGINES.ws_pp!;
  const c = code('causal', pp);
  const t = tileOf(c);
  it('warpgroup-local barriers, alternating S/dP issue, per-warpgroup buffer release', () => {
    expect(t).not.toContain('consumer_sync()');
    expect(t).toContain('wg_sync(); // dS complete in shared memory');
    const sdp = t.slice(t.indexOf('pair_sync(5 + wg);'), t.indexOf('pair_arrive(5 + (wg ^ 1));'));
    expect(sdp).toContain('wg_qk(s, ');
    expect(sdp).toContain('wg_qk(dp, ');
    expect(c).toContain('if (wg == 1) pair_arrive(5);'); // warpgroup 0 issues first
    expect(c).toContain('mbar_init(&empty_bar[i], 2);');
    expect(c).toContain('if ((tid & 127) == 0) mbar_arrive(&empty_bar[buf]);');
    expect(c).toContain('asm volatile("bar.sync %0, 128;\\n" ::"r"(2 + (int)threadIdx.x / 128) : "memory");');
  });
  it('dQ over the own keys (m64n128), partials summed in shared memory, one bulk add a row', () => {
    expect(c).toContain('wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16');
    expect(t).toContain('sd = opaque(desc128(Ss + wg * (BM * 64), 16)), kb = opaque(desc128(Kw, BN * 128));');
    expect(t).toContain(
      'for (int ks = 0; ks < 4; ++ks) wg_dq_d(acc, sd + du(ks * 16), kb + du(ks * 16 * 64));',
    );
    const w0 = t.slice(t.indexOf('if (wg == 0) {'), t.indexOf('} else {', t.indexOf('if (wg == 0) {')));
    expect(w0).toContain('mbar_wait(&dq_empty[0], (it - 1) & 1)');
    expect(w0).toContain('pair_arrive(4);');
    expect(w0).not.toContain('mbar_arrive(&dq_full');
    const w1 = t.slice(t.indexOf('pair_sync(4);'));
    expect(w1).toContain('*p = make_float2(o.x + acc[n][2 * r], o.y + acc[n][2 * r + 1]);');
    expect(w1).toContain('mbar_arrive(&dq_full[0]);');
    expect(c).toContain('DQ_LD = D + 8;');
    const warp = c.slice(c.indexOf('if (tid >= THREADS + DQ_LOADERS) {'), c.indexOf('const int ptid'));
    expect(warp).toContain('for (int w = 0; w < 1; ++w) {');
    expect(warp).toContain('bulk_add_f32(dst + r * D, src + r * DQ_LD, D * 4);');
    expect(c).toContain('if (v4 && wg == 1) {'); // warpgroup 1 stops the dQ warp
    // D + 8 floats a row: a half warp's 8-byte stores still on 32 distinct banks at D = 128.
    const banks = new Set<number>();
    for (let lane = 0; lane < 16; ++lane)
      for (const word of [0, 1]) banks.add(((lane >> 2) * 136 + (lane & 3) * 2 + word) % 32);
    expect(banks.size).toBe(32);
    expect(64 * 136 * 4).toBeLessThanOrEqual(DQ_BULK_BYTES - 64); // fits dqBulk's blocks
  });
  it('goes where dqBulk goes: not deterministic, not softcap', () => {
    const k = kernelOf('full', 128);
    expect(renderCudaBackwardWgmma(k, { producer: true, deterministic: true, tune: pp }).code).toBe(
      renderCudaBackwardWgmma(k, { producer: true, deterministic: true, tune: R9_TUNE }).code,
    );
    expect(code('softcap', pp)).toBe(code('softcap', R9_TUNE));
  });
});

describe('wgmma backward tune: splitCheapOnly', () => {
  it('costlyMask: masks that read a tensor or divide per element once hoisted, or whose classifier reads summaries', () => {
    for (const name of ['document', 'modality', 'heavy_hitter'])
      expect(costlyMask(kernelOf(name, 128)), name).toBe(true);
    // Their divisions are one-sided: per key and per query in shared memory (backward-mask-hoists.ts).
    for (const name of ['dilated', 'neighbourhood'])
      expect(costlyMask(kernelOf(name, 128)), `${name} (hoisted)`).toBe(false);
    for (const name of ['full', 'causal', 'sliding_window', 'sink_window', 'prefix_lm', 'softcap', 'alibi'])
      expect(costlyMask(kernelOf(name, 128)), name).toBe(false);
  });
  it('keeps splitMask on cheap masks and drops it on costly ones', () => {
    const cheap = { ...R9_TUNE, splitCheapOnly: true };
    expect(code('causal', cheap)).toBe(code('causal', R9_TUNE));
    expect(code('document', cheap)).toBe(code('document', TUNE_ENGINES.ws_nosplit));
    expect(code('document', cheap)).not.toBe(code('document', R9_TUNE));
  });
});

describe('wgmma backward tune: tileHandoff', () => {
  const ho = { ...R9_TUNE, tileHandoff: true };
  /** The consumers' part of bwd_dkdv (after the producer's return). */
  const consumers = (c: string): string => {
    const k = c.slice(c.indexOf('bwd_dkdv(const Args a)'));
    return k.slice(k.indexOf('regs_inc<'), k.indexOf('__global__'));
  };
  const producer = (c: string): string => {
    const k = c.slice(c.indexOf('bwd_dkdv(const Args a)'));
    return k.slice(k.indexOf('regs_dec<'), k.indexOf('regs_inc<'));
  };
  it('consumers walk no tiles: each fill names its q-tile, head step and fullness, then one names none', () => {
    for (const deterministic of [false, true]) {
      const c = code('document', ho, 128, deterministic);
      const con = consumers(c);
      expect(con).not.toContain('next_tile');
      expect(con).not.toContain('range_min_doc');
      expect(con).not.toContain('__ballot_sync');
      expect(con).toContain('mbar_wait(&full_bar[buf], (it >> 1) & 1);');
      const read = con.indexOf('const int qt = tile_meta[2 * buf], hg = tile_meta[2 * buf + 1] >> 1;');
      expect(read).toBeGreaterThan(con.indexOf('mbar_wait(&full_bar[buf]')); // after the acquire
      expect(con).toContain('if (qt < 0) break;');
      expect(con).toContain('const int h = hkv * group + hg;');
      const pro = producer(c);
      expect(pro.split('auto next_tile = [&]').length - 1).toBe(1); // the only walk
      const slot = pro.indexOf('tile_meta[2 * buf + 1] = 2 * hg + (full ? 1 : 0);');
      expect(slot).toBeGreaterThan(pro.indexOf('mbar_wait(&empty_bar[buf]')); // the buffer is free
      expect(slot).toBeLessThan(pro.indexOf('mbar_arrive(&full_bar[buf]);')); // released by the arrive
      // The closing fill waits for its buffer like any other and names no tile.
      const end = pro.slice(pro.indexOf('the walk ended'));
      expect(end).toContain('if (it >= 2) mbar_wait(&empty_bar[buf], ((it >> 1) - 1) & 1);');
      expect(end.indexOf('tile_meta[2 * buf] = -1;')).toBeLessThan(
        end.indexOf('mbar_arrive(&full_bar[buf]);'),
      );
    }
  });
  it('takes 16 bytes before the barriers, keeping them 8-byte aligned', () => {
    const k = kernelOf('document', 128);
    const [a, b] = [R9_TUNE, ho].map((tune) => renderCudaBackwardWgmma(k, { producer: true, tune }));
    expect(b!.smemBytes - a!.smemBytes).toBe(16);
    expect(b!.code).toContain('Ds + 2 * BM + 2 * BM + 1 * BN + 0 + 4); // [2]: buffer filled');
    expect(b!.code).toContain('int* tile_meta = reinterpret_cast<int*>(full_bar) - 4;');
  });
  it('applies only where the classifier reads summaries, in the plain order, with a producer', () => {
    for (const name of ['full', 'causal', 'sink_window', 'dilated', 'neighbourhood'])
      expect(code(name, ho), name).toBe(code(name, R9_TUNE));
    const k = kernelOf('document', 128);
    expect(renderCudaBackwardWgmma(k, { producer: false, tune: ho }).code).toBe(
      renderCudaBackwardWgmma(k, { producer: false, tune: R9_TUNE }).code,
    );
    for (const name of ['document', 'modality']) expect(code(name, ho), name).not.toBe(code(name, R9_TUNE));
  });
  it("makes document's mask cheap: its element part compares hoisted ids, so the cheap masks' knobs apply", () => {
    expect(costlyMask(kernelOf('document', 128), true)).toBe(false);
    expect(costlyMask(kernelOf('heavy_hitter', 128), true)).toBe(true); // reads a tensor per element
    const cheapOnly = { ...R9_TUNE, splitCheapOnly: true };
    expect(code('document', { ...cheapOnly, tileHandoff: true })).toBe(code('document', ho));
    expect(code('document', { ...cheapOnly, tileHandoff: true })).not.toBe(
      code('document', { ...cheapOnly, splitMask: false, tileHandoff: true }),
    );
  });
});

describe('wgmma backward tune: keyMajor', () => {
  const km = { ...WGMMA_BWD_TUNE, keyMajor: true };
  it("takes the block's key tile and head pair from its linear index, key tile slowest", () => {
    for (const deterministic of [false, true]) {
      const c = code('causal', km, 128, deterministic);
      const k = c.slice(c.indexOf('bwd_dkdv(const Args a)'));
      expect(k).toContain('lin = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);');
      expect(k).toContain(
        'const int b = (lin % heads) / gridDim.y, hkv = (lin % heads) % gridDim.y, k0 = (lin / heads) * BN,',
      );
      expect(k.slice(0, k.indexOf('__global__'))).not.toContain('k0 = blockIdx.x * BN');
    }
    expect(code('causal', TUNE_ENGINES.ws_ho)).toContain('k0 = blockIdx.x * BN');
  });
  it('leaves the residue-class and 2-D patch orders (their own block coordinates) as they are', () => {
    for (const name of ['dilated', 'neighbourhood'])
      expect(code(name, km), name).toBe(code(name, WGMMA_BWD_TUNE));
  });
  it('firstTilesFirst: blocks 0 .. Hkv·B − 1 take key tile 0, the rest head-major; not where every tile is full', () => {
    const c = code('sink_window', TUNE_ENGINES.ws_ft);
    const k = c.slice(c.indexOf('bwd_dkdv(const Args a)'));
    expect(k).toContain('const int rest = lin - heads, bh = lin < heads ? lin : rest / (gridDim.x - 1);');
    expect(k).toContain('k0 = (lin < heads ? 0 : 1 + rest % (gridDim.x - 1)) * BN');
    const off = { ...TUNE_ENGINES.ws_ft, firstTilesFirst: false };
    expect(code('full', TUNE_ENGINES.ws_ft)).toBe(code('full', off));
    expect(code('document', TUNE_ENGINES.ws_ft)).toBe(code('document', off)); // classified by summaries
    expect(code('causal', TUNE_ENGINES.ws_ft)).not.toBe(code('causal', off));
  });
});

describe('wgmma backward tune: descriptor low words', () => {
  // desc128 (wgmma-device.ts) as 64-bit arithmetic, and desc_of(desc_lo(p, lbo) + units).
  const desc128 = (addr: number, lbo: number): bigint =>
    BigInt((addr & 0x3ffff) >> 4) | (BigInt(lbo >> 4) << 16n) | (64n << 32n) | (1n << 62n);
  const DESC_HI = BigInt(64 | (1 << 30));
  const descOf = (lo: number): bigint => (DESC_HI << 32n) | BigInt(lo >>> 0);
  const descLo = (addr: number, lbo: number): number => ((addr & 0x3ffff) >> 4) | ((lbo >> 4) << 16);
  it('agree with desc128 + du() for every 16-byte address and in-range offset of 227 KiB', () => {
    const top = 227 * 1024;
    for (const lbo of [16, 1024])
      for (let addr = 0; addr < top; addr += 1024 - 16)
        for (const elems of [0, 8, 16, 64 * 64, 128 * 64 + 48]) {
          if (addr + elems * 2 >= top) continue;
          const wide = (desc128(addr, lbo) + BigInt(elems >> 3)) & 0xffffffffffffffffn;
          expect(descOf(descLo(addr, lbo) + (elems >> 3))).toBe(wide);
          expect(wide).toBe(desc128(addr + elems * 2, lbo));
        }
  });
});

/**
 * The tuned kernels build (nvcc 13, bf16, all knobs but dq8, and the default with dqBulk; the
 * default itself, all knobs with dq8, is built by backward-wgmma-ws.test.ts): measured bwd_dkdv
 * spills D = 128 full 8, causal 16, softcap 44 bytes, D = 64 none; with dqBulk full and causal none
 * (asserted); with pingPong (D = 128 full 12/44, causal 28/42 bytes stored/loaded; D = 64 none).
 * Document (round 16: doc[q] and doc[k] read from shared memory, backward-mask-hoists.ts) stores 96
 * bytes (loads 98) with every knob and 84 with splitCheapOnly, and no wgmma is serialised: before, ptxas
 * serialised them instead (C7512; 72 / 64 bytes), and that kernel was slower (H100 16K: 4.46 ms
 * against 3.68).
 */
describe('wgmma backward tune: nvcc sm_90a', () => {
  it('builds full, causal, document and softcap with every knob (D 64 and 128, atomic and deterministic)', async () => {
    const dir = scratchDir('bwd-wgmma-tune');
    const parts: string[] = [];
    const tunes: [string, BackwardWgmmaTune][] = [
      ['all', TUNE_ENGINES.ws_all!],
      ['dqb', TUNE_ENGINES.ws_dqb!],
      ['pp', TUNE_ENGINES.ws_pp!],
      ['cheap', { ...R9_TUNE, splitCheapOnly: true }],
      ['ho', TUNE_ENGINES.ws_ho!],
      ['hosplit', TUNE_ENGINES.ws_ho_split!],
    ];
    for (const [tag, tune] of tunes)
      for (const headDim of [64, 128])
        for (const name of ['full', 'causal', 'document', 'softcap'])
          for (const deterministic of [false, true]) {
            // dqBulk changes the atomic dQ only (D = 64: one pattern, its partial-sum blocks).
            // Not document's: bulk dQ without pingPong is no pattern's default, and that kernel spills
            // 128 / 206 bytes since its mask's reads moved to shared memory (round 16).
            if (
              tag === 'dqb' &&
              (deterministic || (headDim === 64 && name !== 'causal') || name === 'document')
            )
              continue;
            // pingPong: full at D = 128 (m64n128 dQ), causal at D = 64 (m64n64); document has C7520.
            if (
              tag === 'pp' &&
              (deterministic || `${name}:${headDim}` !== (headDim === 128 ? 'full:128' : 'causal:64'))
            )
              continue;
            // splitCheapOnly: document (a costly mask) at D = 128 must not serialise its wgmmas.
            if (tag === 'cheap' && (deterministic || headDim === 64 || name !== 'document')) continue;
            // tileHandoff: document alone (elsewhere it does not apply), both modes, D 64 and 128.
            if (tag.startsWith('ho') && name !== 'document') continue;
            const ns = `attnc_${name}_${tag}_${headDim}_${deterministic ? 'det' : 'at'}`;
            const k = {
              ...kernelOf(name, headDim),
              name: `${name}_${tag}_${headDim}_${deterministic ? 'det' : 'at'}`,
            };
            const c = renderCudaBackwardWgmma(k, { producer: true, deterministic, tune }).code;
            expect(c).toContain(`namespace ${ns}_backward`);
            parts.push(c);
          }
    const cu = join(dir, 'backward.cu');
    writeFileSync(cu, parts.join('\n'));
    const flags = [...sassOnly('sm_90a'), '-O3', '-cubin', '-Werror', 'all-warnings', '-Xptxas', '-v'];
    const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.cubin')], undefined, 900_000);
    expectOk(r, 'nvcc sm_90a');
    expectNoSpills(
      r.stderr,
      3 * parts.length,
      [
        // tileHandoff with ping-pong (document's default since round 21; backward-wgmma-ws.test.ts).
        [/attnc_document_ho_(64|128)_at_backward\w*bwd_dkdvE/, 192],
        /attnc_(?!(full|causal)_dqb_)\w+_128_\w+_backward\w*bwd_dkdvE/,
        /attnc_(document|softcap)_\w+_det_backward\w*bwd_dqE/,
      ],
      100,
    );
    // No wgmma serialised by ptxas (C7512 registers, C7520 divergent arrive), none injected
    // (C7519): document's were, before its mask's doc[q] and doc[k] moved to shared memory.
    expect(r.stderr.split('\n').filter((l) => /C7512|C7520|C7519/.test(l))).toEqual([]);
  }, 900_000);
});
