// `pv e4m3 [smooth v]` on the `qk int8` wgmma-ws kernel (src/codegen/cuda/int8qk-pv-wgmma.ts):
// which schedules it takes and refuses, and the structure of the emitted kernel (V codes by TMA,
// P packed to e4m3 straight from S in the permuted order the pre-pass wrote V in, per-tile f32
// sums, the per-channel epilogue, the launcher running both pre-passes). nvcc builds it in
// int8qk-wgmma.test.ts's translation unit; the V pre-pass runs on the CPU emulator in
// int8qk-pv-prepass-emu.test.ts; the numbers come from the GPU (bench/cuda/int8qk.py).
import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../../src/compile.js';

const ws = { engine: 'wgmma-ws' } as const;
const kernelOf = (name: string, body: string) => `attention ${name}() {\n${body}}\n`;
const opts = (schedule: CompileOptions['schedule'], extra: Partial<CompileOptions> = {}): CompileOptions => ({
  target: 'cuda',
  headDim: 128,
  dtype: 'bf16',
  ...(schedule ? { schedule } : {}),
  ...extra,
});
const causal = kernelOf('p8', '  qk int8 smooth k\n  pv e4m3 smooth v\n  mask causal\n');
const full = kernelOf('f8', '  qk int8 smooth k\n  pv e4m3\n');

describe('pv e4m3 on the wgmma-ws engine: schedules', () => {
  it('serial consumers and 128-key tiles, also where unmasked float kernels take 176', () => {
    for (const src of [causal, full])
      expect(compile(src, opts(ws)).kernel.schedule).toMatchObject({
        engine: 'wgmma-ws',
        blockQ: 128,
        blockK: 128,
        threads: 384,
      });
    expect(compile(kernelOf('q8', '  qk int8 smooth k\n'), opts(ws)).kernel.schedule.blockK).toBe(176);
    const tweaked = compile(causal, opts({ ...ws, wsTweaks: ['fastExp', 'regs240'] }));
    expect(tweaked.artifact.code).toContain('regs_inc<240>();');
  });

  it('ping-pong consumers: the warpgroups take turns at S = Q·Kᵀ, each P·V the fp8 tile', () => {
    const pp = compile(causal, opts({ ...ws, wsConsumers: 'pingpong', wsTweaks: ['fastExp', 'regs240'] }));
    const code = pp.artifact.code;
    const start = code.indexOf('auto tile = [&]');
    const tile = code.slice(start, code.indexOf('mbar_wait(qbar, 0);', start));
    const first = code.indexOf('if (wg == 1) pp_arrive();');
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(start);
    // The turn brackets S's issue; the fp8 P·V follows the softmax outside it.
    const sync = tile.indexOf('pp_sync();');
    const issue = tile.indexOf('wg_qk8(si,');
    const arrive = tile.indexOf('pp_arrive();');
    expect(sync).toBeGreaterThan(0);
    expect(issue).toBeGreaterThan(sync);
    expect(arrive).toBeGreaterThan(issue);
    expect(tile.indexOf('wg_pv8(ot, pk[kg]')).toBeGreaterThan(arrive);
    const manifest = JSON.parse(pp.artifact.files![`${pp.artifact.name}.json`]!);
    expect(manifest.mapping.pingpong).toContain('alternate');
    // Serial kernels have no turns.
    expect(compile(causal, opts(ws)).artifact.code).not.toContain('pp_sync');
  });

  it('refuses what the fp8 tile does not run, naming it', () => {
    expect(() => compile(causal, opts({ ...ws, blockK: 112 }))).toThrow(
      'pv e4m3 on the wgmma-ws engine needs blockK 128 (one 128-byte row of V codes per channel), got 112',
    );
    for (const wsConsumers of ['overlap', 'fa3'] as const)
      expect(() => compile(causal, opts({ ...ws, wsConsumers }))).toThrow(
        'runs the serial and ping-pong consumer schedules only so far (not overlap, fa3)',
      );
    expect(() => compile(causal, opts({ ...ws, wsTweaks: ['pvN128'] }))).toThrow(
      'takes the wsTweaks fastExp, regs240; not pvN128',
    );
    // A stale running max (lazyRescale) leaves p up to 2⁸: 448·p would saturate e4m3.
    expect(() => compile(causal, opts({ ...ws, wsTweaks: ['fastExp', 'lazyRescale'] }))).toThrow(
      'takes the wsTweaks fastExp, regs240; not lazyRescale',
    );
    // qk int8's own limits come first.
    expect(() => compile(causal, opts({ ...ws, wsProducerWalk: true }))).toThrow('leave wsProducerWalk out');
  });
});

describe('pv e4m3 on the wgmma-ws engine: emitted code', () => {
  const c = compile(causal, opts(ws));
  const code = c.artifact.code;
  const tile = code.slice(
    code.indexOf('auto tile = [&]'),
    code.indexOf('mbar_wait(qbar, 0);', code.indexOf('auto tile = [&]')),
  );
  const launcher = code.slice(code.indexOf('extern "C" int attnc_p8_launch'));

  it('P·V is the e4m3 wgmma from P registers and K-major V codes, summed per tile into o', () => {
    expect(code).toContain('wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3');
    expect(tile).not.toContain('wg_pv<'); // no 16-bit P·V
    expect(tile).not.toContain('pack2(');
    // Register 1 of k-group kg: row g + 8 of n-tiles 4kg and 4kg + 1, ×448.
    expect(tile).toContain(
      'pk[kg][1] = pack_e4m3x4(448.f * s[4 * kg + 0][2], 448.f * s[4 * kg + 0][3], 448.f * s[4 * kg + 1][2], 448.f * s[4 * kg + 1][3]);',
    );
    expect(tile).toContain(
      'wg_pv8(ot, pk[kg], desc128(reinterpret_cast<const T*>(Vb8 + kg * 32), 16), kg > 0);',
    );
    expect(tile.indexOf('wg_wait0();', tile.indexOf('wg_pv8(ot'))).toBeLessThan(
      tile.indexOf('o[n][x] += ot[n][x];'),
    );
    expect(code).toContain('asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(x1), "f"(x0));');
    // The producer streams V's code rows (key, channel, head), BK · DV bytes a tile.
    expect(code).toContain(
      'tma_load(reinterpret_cast<T*>(Vs8 + st * (BK * DV)), tmv, kt * BK, 0, b * a.Hkv + hkv, &full_bar[st]);',
    );
    expect(code).toContain('mbar_expect_tx(&full_bar[st], BK * D + BK * DV);');
    const manifest = JSON.parse(c.artifact.files![`${c.artifact.name}.json`]!);
    expect(manifest.mapping.instruction).toContain('P·V: m64n128k32.f32.e4m3.e4m3');
    expect(manifest.mapping.pvE4m3).toContain('channel means');
  });

  it('after the loop: o · sv / 448, plus mean · l with smooth v, before the epilogue divides by l', () => {
    const finish = code.indexOf('// pv e4m3: back from code units');
    expect(finish).toBeGreaterThan(code.indexOf('while (kt < nkt)'));
    expect(finish).toBeLessThan(code.indexOf('const float inv = sum == 0.f ? 0.f : 1.f / sum;'));
    expect(code).toContain('o[n][2 * r + x] = fmaf(o[n][2 * r + x], u, __ldg(pv_mean_head + c) * sum);');
    const plain = compile(full, opts(ws)).artifact.code;
    expect(plain).toContain('o[n][2 * r + x] *= u;');
    expect(plain).toContain('pv8_quantize<<<grid, PV8_THREADS, 0, stream>>>(a, *w, false);');
    expect(code).toContain('pv8_quantize<<<grid, PV8_THREADS, 0, stream>>>(a, *w, true);');
  });

  it('the launcher runs both pre-passes, then the attention with V codes in place of the 16-bit map', () => {
    const qk = launcher.indexOf('qk8_prepass(a, stream, &qk8)');
    const pv = launcher.indexOf('pv8_prepass(a, stream, &pv8)');
    const map = launcher.indexOf('make_pv8_map(a, pv8, &tma[2])');
    const attn = launcher.indexOf('attnc_p8_attention<<<');
    expect(qk).toBeGreaterThan(0);
    expect(pv).toBeGreaterThan(qk);
    expect(map).toBeGreaterThan(pv);
    expect(attn).toBeGreaterThan(map);
    expect(launcher).toContain('tma[0], tma[1], tma[2], qk8.sq, qk8.sk, pv8.sv, pv8.mean);');
  });
});
