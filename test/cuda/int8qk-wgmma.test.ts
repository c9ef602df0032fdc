// `qk int8 [smooth k]` on the wgmma-ws engine (src/codegen/cuda/int8qk-wgmma.ts), opt-in with
// schedule `engine: 'wgmma-ws'`: which schedules it takes and refuses, the structure of the
// emitted kernel (s8 wgmma over codes the launcher's pre-pass writes; no 16-bit S = Q·Kᵀ), and
// whole artifacts building for sm_90a without spills. The default stays the SIMT engine. The
// pre-pass runs on the CPU emulator in int8qk-prepass-emu.test.ts; the kernel's numbers come
// from the GPU (bench/cuda/int8qk.py).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { int8QkFirst, int8QkWsDefault } from '../../src/codegen/cuda/schedule-rules.js';
import { compile, type CompileOptions } from '../../src/compile.js';
import { expectOk, run, scratchDir } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const ws = { engine: 'wgmma-ws' } as const;
const sage = 'attention sage(window: int = 1024) {\n  qk int8 smooth k\n  mask k <= q && q - k < window\n}\n';
const kernelOf = (name: string, body: string) => `attention ${name}() {\n${body}}\n`;
const opts = (schedule: CompileOptions['schedule'], extra: Partial<CompileOptions> = {}): CompileOptions => ({
  target: 'cuda',
  headDim: 128,
  dtype: 'bf16',
  ...(schedule ? { schedule } : {}),
  ...extra,
});

describe('qk int8 on the wgmma-ws engine: schedules', () => {
  const causal = kernelOf('c8', '  qk int8 smooth k\n  mask causal\n');
  const full = kernelOf('f8', '  qk int8\n');

  it('unasked at D = 128 on sm_90a: int8QkWsDefault; asked for: serial consumers, 128 × 128 tiles, no tunings', () => {
    for (const dtype of ['bf16', 'f16'] as const)
      expect(compile(causal, opts(undefined, { dtype })).kernel.schedule).toMatchObject(int8QkWsDefault!);
    expect(compile(causal, opts(undefined, { arch: 'sm_80' })).kernel.schedule.engine).toBe('simt');
    expect(compile(causal, opts(undefined, { headDim: 64 })).kernel.schedule.engine).toBe('simt');
    for (const src of [causal, full, sage]) {
      const s = compile(src, opts(ws)).kernel.schedule;
      expect(s).toMatchObject({ engine: 'wgmma-ws', blockQ: 128, threads: 384, stages: 2 });
      expect(s.wsTweaks).toBeUndefined();
      expect(s.wsConsumers).toBeUndefined();
      expect(s.wsProducerWalk).toBeUndefined();
    }
    expect(compile(causal, opts(ws)).kernel.schedule.blockK).toBe(128);
  });

  it('int8QkWsDefault (ping-pong with foldScale, call 44) is tried first only where the s8 kernel runs', () => {
    expect(int8QkWsDefault).toEqual({
      blockQ: 128,
      blockK: 128,
      threads: 384,
      stages: 2,
      engine: 'wgmma-ws',
      wsConsumers: 'pingpong',
      wsTweaks: ['fastExp', 'lazyRescale', 'pvN128', 'regs240', 'foldScale'],
    });
    const k0 = compile(causal, opts({ engine: 'simt' })).kernel;
    expect(int8QkFirst(k0.schedule, k0, {})).toEqual([int8QkWsDefault]);
    const pick = { blockQ: 128, blockK: 112, threads: 384, stages: 2, engine: 'wgmma-ws' } as const;
    const k = compile(causal, opts(undefined)).kernel;
    expect(int8QkFirst(k.schedule, k, {}, pick)).toEqual([pick]);
    for (const asked of [{ engine: 'simt' }, { engine: 'wgmma-ws' }, { blockK: 64 }, { blockQ: 64 }] as const)
      expect(int8QkFirst(k.schedule, k, asked, pick)).toEqual([]);
    const d64 = compile(causal, opts(undefined, { headDim: 64 })).kernel;
    expect(int8QkFirst(d64.schedule, d64, {}, pick)).toEqual([]);
  });

  it('refuses what the int8 kernel does not run, naming it', () => {
    expect(() => compile(causal, opts({ engine: 'mma' }))).toThrow(
      'qk int8 runs on the simt and wgmma-ws engines; mma: not yet',
    );
    expect(() => compile(causal, opts(ws, { headDim: 64 }))).toThrow('needs headDim 128');
    expect(() => compile(causal, opts({ ...ws, wsProducerWalk: true }))).toThrow('leave wsProducerWalk out');
    expect(() => compile(causal, opts({ ...ws, wsTweaks: ['fastExp', 'splitKv'] }))).toThrow(
      'takes the wsTweaks fastExp, lazyRescale, pvN128, regs240, packFirst, rescaleInTurn, foldScale; not splitKv',
    );
  });
});

const tuned = {
  ...ws,
  wsConsumers: 'pingpong',
  wsTweaks: ['fastExp', 'lazyRescale', 'pvN128', 'regs240'],
} as const;

// FlashAttention-3's consumers with the tweaks that apply; 112-key tiles keep causal spill-free.
const fa3 = {
  ...ws,
  blockK: 112,
  wsConsumers: 'fa3',
  wsTweaks: ['fastExp', 'lazyRescale', 'pvN128', 'rescaleInTurn', 'regs240'],
} as const;

describe('qk int8 on the wgmma-ws engine: emitted code', () => {
  const c = compile(kernelOf('s8', '  qk int8 smooth k\n  mask causal\n'), opts(ws));
  const code = c.artifact.code;
  const launcher = code.slice(code.indexOf('extern "C" int attnc_s8_launch'));

  it('S = Q·Kᵀ is the s8 wgmma over TMA-loaded codes, scaled by the block scales', () => {
    expect(code).toContain('wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8');
    expect(code).not.toMatch(/\bwg_qk\(s,/); // no 16-bit S = Q·Kᵀ in the tile
    // The s32 sums become f32 by an integer add and an FADD (qk_s32_f32), not by I2F.
    expect(code).toContain('s[j][x] = qk_s32_f32(si[j][x]) * ts;');
    expect(code).not.toMatch(/\(float\)si\[/);
    expect(code).toContain('const float ts = qk_sq * qk_sk_ring[st];');
    expect(code).toContain('qk_sk_ring[st] = sk;');
    // Codes come as one 128-byte UINT8 row per token; V keeps the float core's map.
    expect(code).toContain('return fn(map, 0, 3, const_cast<signed char*>(base)');
    expect(code).toContain('tma_kv_panels<DV, BK>(Vs + st * (BK * DV), tmv');
    const manifest = JSON.parse(c.artifact.files![`${c.artifact.name}.json`]!);
    expect(manifest.mapping).toMatchObject({ core: 'wgmma-ws', stages: 2, consumerWarpgroups: 2 });
    expect(manifest.mapping.instruction).toContain('m64n128k32.s32.s8.s8');
  });

  it('ping-pong and the serial tweaks: the float core pieces around the s8 product', () => {
    const t = compile(kernelOf('t8', '  qk int8 smooth k\n  mask causal\n'), opts(tuned)).artifact.code;
    const body = t.slice(t.indexOf('auto tile = [&]'));
    expect(body.indexOf('pp_sync();')).toBeLessThan(body.indexOf('wg_qk8(si,'));
    expect(body.indexOf('pp_arrive();')).toBeGreaterThan(body.indexOf('wg_qk8(si,'));
    expect(body.indexOf('pp_arrive();')).toBeLessThan(body.indexOf('wg_wait0();'));
    expect(body).toContain('ex2_ftz(');
    expect(body).toContain('wg_pv128(o, pk[kv], desc128(Vb + kv * 16 * 64, BK * 128));');
    expect(t).toContain('regs_inc<240>();');
    expect(code).not.toContain('pp_sync');
  });

  it('overlapped consumers (fa3): S issued into the bits of the loop S, made scores in the softmax', () => {
    const f = compile(kernelOf('o8', '  qk int8 smooth k\n  mask causal\n'), opts(fa3)).artifact.code;
    const issue = f.slice(f.indexOf('auto issue_qk = [&]'), f.indexOf('auto issue_pv = [&]'));
    expect(issue).toContain('wg_qk8(reinterpret_cast<int (&)[NT][4]>(s),');
    expect(issue).not.toContain('wg_qk(');
    const softmax = f.slice(f.indexOf('auto softmax = [&]'));
    expect(softmax.indexOf('s[j][x] = qk_s32_f32(__float_as_int(s[j][x])) * ts;')).toBeLessThan(
      softmax.indexOf('const float x = s[j][e] * qscale;'),
    );
    expect(f).toContain('issue_qk(s, st2); // the next S, ahead of this P·V on the tensor cores');
  });

  it('foldScale: raw s32 sums (signed as qscale) into the max, |qscale| · sq · sk into the exp2', () => {
    const folded = { ...tuned, wsTweaks: [...tuned.wsTweaks, 'foldScale'] } as const;
    const t = compile(kernelOf('pf8', '  qk int8 smooth k\n  mask causal\n'), opts(folded)).artifact.code;
    const body = t.slice(t.indexOf('auto tile = [&]'));
    expect(t).toContain('const float qk_sg = qscale < 0.f ? -1.f : 1.f;');
    expect(t).toContain('const float qk_qs = fabsf(qscale) * qk_sq;');
    expect(body).toContain('const float qs = qs_t == 0.f ? 1e-30f : qs_t;');
    expect(body).toContain('s[j][x] = qk_s32_f32_signed(si[j][x], qk_sg);');
    expect(body).not.toContain('* ts;');
    expect(body).not.toContain('s[j][e] * qscale'); // the element step keeps the raw sums
    expect(body).toContain('ex2_ftz(fmaf(s[j][2 * r], qs, nb))');
    // The overlapped consumers fold in the softmax lambda, where S lands.
    const f = compile(
      kernelOf('of8', '  qk int8\n  mask causal\n'),
      opts({ ...fa3, wsTweaks: [...fa3.wsTweaks, 'foldScale'] }),
    ).artifact.code;
    const softmax = f.slice(f.indexOf('auto softmax = [&]'));
    expect(softmax.indexOf('qk_s32_f32_signed(__float_as_int(s[j][x]), qk_sg)')).toBeGreaterThan(0);
    expect(softmax.indexOf('const float qs = ')).toBeLessThan(softmax.indexOf('fmaf(s[j][2 * r], qs, nb)'));
    // A score modifier keeps the scaled scores (foldScale applies to q·k alone), as on the float kernel.
    const capped = compile(kernelOf('sc8', '  qk int8\n  score 30.0 * tanh(score / 30.0)\n'), opts(folded))
      .artifact.code;
    expect(capped).toContain('s[j][x] = qk_s32_f32(si[j][x]) * ts;');
    expect(capped).not.toContain('qk_s32_f32_signed');
  });

  it('the launcher runs the pre-pass (key sums with smooth k) before the attention', () => {
    const pre = launcher.indexOf('qk8_prepass(a, stream, &qk8)');
    const attn = launcher.indexOf('attnc_s8_attention<<<');
    expect(pre).toBeGreaterThan(0);
    expect(attn).toBeGreaterThan(pre);
    expect(launcher).toContain('tma[0], tma[1], tma[2], qk8.sq, qk8.sk);');
    expect(code).toContain('qk8_key_sums<<<');
    expect(code).toContain('const size_t pb = 4 * (size_t)a.B * a.Hkv * nch * D;');
    const plain = compile(kernelOf('p8', '  qk int8\n'), opts(ws)).artifact.code;
    expect(plain).toContain('const size_t pb = 0;');
  });
});

// qk_s32_f32, cut from the emitted code and built for the host, against (float) x over every sum
// D = 128 products of codes in [-127, 127] can give (and the first values past it, which it
// must not be used for: the static_assert's bound is where it stops being exact).
describe('qk int8 on the wgmma-ws engine: the s32 to f32 conversion', () => {
  it('is (float) x for every |x| <= 128 * 127 * 127, and not past 2^22 + 1', async () => {
    const code = compile(kernelOf('cv', '  qk int8\n'), opts(ws)).artifact.code;
    const at = code.indexOf('__device__ __forceinline__ float qk_s32_f32(int x) {');
    expect(at).toBeGreaterThan(0);
    const helper = code.slice(at, code.indexOf('\n}\n', at) + 3);
    expect(code.slice(code.lastIndexOf('static_assert', at), at)).toContain('D * 127 * 127 < (1 << 22)');
    const dir = scratchDir('int8qk-cvt');
    const main = [
      '#include <cstdio>',
      '#include <cstring>',
      '#define __device__',
      '#define __forceinline__ inline',
      'static float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }',
      helper,
      'int main() {',
      '  const int lim = 128 * 127 * 127;',
      '  long bad = 0;',
      '  for (int x = -lim; x <= lim; ++x) bad += qk_s32_f32(x) != (float)x;',
      '  const int past = (1 << 22) + 1; // 2^22 itself still comes out exact',
      '  std::printf("%ld %d\\n", bad, qk_s32_f32(past) != (float)past);',
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'cvt.cpp'), main);
    const exe = join(dir, 'cvt');
    expectOk(await run('g++', ['-O2', join(dir, 'cvt.cpp'), '-o', exe]), 'g++ cvt.cpp');
    const r = await run(exe, []);
    expectOk(r, exe);
    expect(r.stdout.trim()).toBe('0 1');
  }, 120_000);
});

// Whole artifacts in one translation unit: full (smooth k), causal, the LANGUAGE.md sliding
// window (a runtime param: per-tile classification), f16 and Dv = 64, ping-pong and fa3 consumers with the tweaks
// (ping-pong with foldScale too);
// and `pv e4m3` (int8qk-pv-wgmma.ts): full with smooth v (serial), causal on ping-pong consumers
// with the tweaks the fp8 tile takes.
describe('qk int8 on the wgmma-ws engine compiles with nvcc', () => {
  it('builds for sm_90a without warnings or spills', async () => {
    const dir = scratchDir('int8qk-wgmma');
    const arts = [
      compile(kernelOf('q8_full', '  qk int8 smooth k\n'), opts(ws)),
      compile(kernelOf('q8_causal', '  qk int8\n  mask causal\n'), opts(ws)),
      compile(sage, opts(ws)),
      compile(
        kernelOf('q8_f16_dv64', '  qk int8 smooth k\n  mask causal\n'),
        opts(ws, { dtype: 'f16', valueDim: 64 }),
      ),
      compile(kernelOf('q8_tuned', '  qk int8 smooth k\n  mask causal\n'), opts(tuned)),
      compile(kernelOf('q8_fa3_causal', '  qk int8 smooth k\n  mask causal\n'), opts(fa3)),
      compile(kernelOf('q8_fa3_full', '  qk int8 smooth k\n'), opts({ ...fa3, blockK: 128 })),
      compile(
        kernelOf('q8_fold_causal', '  qk int8 smooth k\n  mask causal\n'),
        opts({ ...tuned, wsTweaks: [...tuned.wsTweaks, 'foldScale'] }),
      ),
    ];
    const pvArts = [
      compile(kernelOf('pv_full', '  qk int8 smooth k\n  pv e4m3 smooth v\n'), opts(ws)),
      compile(
        kernelOf('pv_causal', '  qk int8 smooth k\n  pv e4m3\n  mask causal\n'),
        opts({ ...ws, wsConsumers: 'pingpong', wsTweaks: ['fastExp', 'regs240'] }),
      ),
    ];
    const tu = join(dir, 'int8qk.cu');
    writeFileSync(tu, [...arts, ...pvArts].map((a) => a.artifact.code).join('\n'));
    const flags = ['-arch=sm_90a', '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-c'];
    const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'int8qk.o')]);
    expectOk(r, `nvcc ${tu}`);
    expect(r.stderr).not.toContain('C7508'); // setmaxnreg ignored
    expect(r.stderr).not.toContain('C7519'); // warpgroup.arrive injected between wgmmas
    const lines = r.stderr.split('\n');
    const props = lines.flatMap((l, i) =>
      /Function properties for \S*(attention|qk8_quantize|qk8_key_sums|pv8_quantize|pv8_value_stats)/.test(l)
        ? [lines[i + 1] ?? '']
        : [],
    );
    // Attention, quantize and key sums per artifact (every one has the kernel); V's two with pv e4m3.
    expect(props.length).toBe(3 * arts.length + 5 * pvArts.length);
    for (const line of props) expect(line).toMatch(/ 0 bytes spill stores, 0 bytes spill loads/);
  }, 600_000);
});
