// Schedule.wsTweaks (codegen/cuda/wgmma-ws-tweaks.ts): FlashAttention-3's mainloop details as
// switches of the wgmma-ws engine. Each switch shows up in the emitted code as promised and only
// when asked (untweaked kernels are byte-identical: scripts/emit-sample.mjs and the goldens), bad
// lists are refused by name, and the combinations bench/cuda/tune-list.mjs times build for sm_90a
// with no spills and no serialized wgmma. Numerics: bench/cuda/run-table.sh on the H200 (the CPU
// emulator cannot run wgmma or TMA).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCuda, wgmmaWsSharedBytes } from '../../src/codegen/cuda/index.js';
import { wsDenseTweaks } from '../../src/codegen/cuda/schedule-rules.js';
import { compile } from '../../src/compile.js';
import type { Schedule, WsTweak } from '../../src/ir/kernel.js';
import { expectOk, meta, run, scratchDir, sassOnly } from './support.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const base = { engine: 'wgmma-ws', blockQ: 128, blockK: 128, threads: 384, stages: 2 } as const;

const kernelOf = (file: string, schedule: Partial<Schedule>, headDim = 128) =>
  compile(readStdlib(file), { target: 'cuda', file: stdlibPath(file), headDim, dtype: 'bf16', schedule })
    .kernel;
const codeOf = (file: string, schedule: Partial<Schedule>, headDim = 128): string =>
  renderCuda(kernelOf(file, schedule, headDim), meta).code;
const tweaked = (wsTweaks: readonly WsTweak[], extra: Partial<Schedule> = {}) => ({
  ...base,
  ...extra,
  wsTweaks,
});

/** The consumer branch of the attention kernel (after the producer's; before the decode kernels). */
function consumer(code: string): string {
  const start = code.indexOf('regs_inc<');
  const end = code.indexOf('__global__', start);
  return code.slice(start, end < 0 ? undefined : end);
}

describe('wgmma-ws tweaks: emitted structure', () => {
  const plain = codeOf('full.attn', base);

  it('none of the tweaked helpers or barriers without wsTweaks', () => {
    for (const text of ['ex2_ftz', 'full_v', 'empty_k', 'wg_qk_z', 'wg_pv128', '__any_sync', 'pk[kv]'])
      expect(plain).not.toContain(text);
    expect(codeOf('full.attn', tweaked([]))).toBe(plain);
  });

  it('splitKv: K and V complete and are released on their own barriers', () => {
    for (const mode of ['serial', 'fa3'] as const) {
      const code = codeOf('causal.attn', tweaked(['splitKv'], { wsConsumers: mode }));
      expect(code).toContain('mbar_expect_tx(&full_bar[st], BK * D * (int)sizeof(T));');
      expect(code).toContain('mbar_expect_tx(&full_v[st], BK * DV * (int)sizeof(T));');
      expect(code).toContain('if (wrapped) mbar_wait(&empty_k[st], ph ^ 1u);');
      expect(code).toMatch(/tma_kv_panels<DV, BK>\(Vs[^;]*&full_v\[st\]\);/);
      expect(code).toContain('mbar_wait(&full_v[st], ph);');
      // K goes back right after its S lands, before the softmax.
      const c = consumer(code);
      const release = c.indexOf('mbar_arrive(&empty_k[st]);');
      expect(release).toBeGreaterThan(-1);
      expect(release).toBeLessThan(c.indexOf(mode === 'serial' ? 'exp2f(' : 'softmax_tile(kt, kt_full'));
    }
    // Two more mbarriers per stage.
    const s = { ...base, headDim: 128, valueDim: 128, summaryBlock: 64 };
    expect(wgmmaWsSharedBytes({ ...s, wsTweaks: ['splitKv'] }) - wgmmaWsSharedBytes(s)).toBe(16 * 2);
  });

  it('fastExp: every exp2 is one ex2.approx.ftz', () => {
    for (const mode of ['serial', 'fa3'] as const) {
      const c = consumer(codeOf('full.attn', tweaked(['fastExp'], { wsConsumers: mode })));
      expect(c).toContain('ex2_ftz(s[j][2 * r] - base)');
      expect(c).not.toContain('exp2f(');
    }
    expect(codeOf('full.attn', tweaked(['fastExp']))).toContain('ex2.approx.ftz.f32');
  });

  it('lazyRescale: the max moves only by more than 8, and O is rescaled only when some row moved', () => {
    for (const mode of ['serial', 'overlap'] as const) {
      const c = consumer(codeOf('full.attn', tweaked(['lazyRescale'], { wsConsumers: mode })));
      expect(c).toContain('const float mnew = mx > m[r] + 8.f ? mx : m[r];');
      expect(c).toMatch(
        /if \(__any_sync\(0xffffffffu, alpha\[0\] != 1\.f \|\| alpha\[1\] != 1\.f\)\) \{\s+#pragma unroll\s+for \(int n = 0; n < DV \/ 8; \+\+n\) \{\s+o\[n\]\[0\] \*= alpha\[0\];/,
      );
    }
  });

  it('zeroInit: the first k step overwrites S, no zeroing pass', () => {
    for (const mode of ['serial', 'overlap'] as const) {
      const c = consumer(codeOf('full.attn', tweaked(['zeroInit'], { wsConsumers: mode })));
      expect(c).toContain('wg_qk_z(s, ');
      expect(c).toContain(', ks > 0);');
      expect(c).not.toContain('s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f');
    }
    const code = codeOf('full.attn', tweaked(['zeroInit']));
    expect(code).toContain('void wg_qk_z(float (&d)[16][4], uint64_t a, uint64_t db, int acc) {');
    expect(code).toContain('m64n128k16.f32.bf16.bf16');
  });

  it('pvN128: one m64n128k16 per k step, V panels a BK·128-byte LBO apart', () => {
    const code = codeOf('full.attn', tweaked(['pvN128'], { blockK: 176 }));
    expect(code).toContain('wg_pv128(o, pa, desc128(Vb + kv * 16 * 64, BK * 128));');
    expect(consumer(code)).not.toContain('wg_pv<');
    expect(code).toMatch(
      /wgmma\.mma_async\.sync\.aligned\.m64n128k16\.f32\.bf16\.bf16 \{[^}]*\}, \{%64, %65, %66, %67\}/,
    );
  });

  it('packFirst: P is packed whole before the P·V wgmmas', () => {
    const c = consumer(codeOf('full.attn', tweaked(['packFirst'], { blockK: 176 })));
    const pack = c.indexOf('pk[kv][3] = pack2(');
    expect(pack).toBeGreaterThan(-1);
    expect(pack).toBeLessThan(c.indexOf('wg_pv<0>(o, pk[kv]'));
    expect(c).not.toContain('const unsigned pa[4]');
  });

  it('regs240: setmaxnreg 24 / 240', () => {
    const code = codeOf('full.attn', tweaked(['regs240']));
    expect(code).toContain('regs_dec<24>();');
    expect(code).toContain('regs_inc<240>();');
  });

  it('foldScale: the raw max, scaled once per row, and one FFMA per probability', () => {
    for (const mode of ['serial', 'fa3'] as const) {
      const c = consumer(codeOf('causal.attn', tweaked(['foldScale'], { wsConsumers: mode })));
      expect(c).toContain('const float x = s[j][e]; // raw: foldScale');
      expect(c).not.toContain('* qscale');
      expect(c).toContain('mx = fmaxf(m[r], mx * qs);');
      expect(c).toContain('s[j][2 * r] = exp2f(fmaf(s[j][2 * r], qs, nb));');
      // A negative scale negates this warpgroup's Q rows once, before any S = Q·Kᵀ.
      expect(c.indexOf('v.x ^= 0x80008000u;')).toBeLessThan(c.indexOf('wg_qk('));
      expect(c).toContain('const float qs = qscale == 0.f ? 1e-30f : fabsf(qscale);');
    }
    // With a score modifier the element step is more than a scale: foldScale leaves it be.
    const softcap = consumer(codeOf('softcap.attn', tweaked(['foldScale'])));
    expect(softcap).toContain('const float x = s[j][e] * qscale;');
    expect(softcap).not.toContain('qs, nb');
  });

  it('rescaleInTurn: O takes alpha between issuing the next S and this P·V', () => {
    const c = consumer(codeOf('full.attn', tweaked(['rescaleInTurn'], { wsConsumers: 'fa3' })));
    const loop = c.slice(c.indexOf('issue_qk(s, st2);'));
    const scale = loop.indexOf('o[n][0] *= alpha[0];');
    expect(scale).toBeGreaterThan(-1);
    expect(scale).toBeLessThan(loop.indexOf('issue_pv(p, st);'));
    // ... and no longer after P·V retires.
    expect(loop.slice(loop.indexOf('mbar_arrive(&empty_bar[st]);'))).not.toContain('*= alpha');
  });
});

describe('wgmma-ws tweaks: refused by name', () => {
  const refuses = (schedule: Partial<Schedule>, message: RegExp, file = 'causal.attn', headDim = 128) =>
    expect(() => kernelOf(file, schedule, headDim)).toThrow(message);

  it('unknown, duplicated or mismatched tweaks', () => {
    refuses(tweaked(['fast' as WsTweak]), /unknown wsTweaks fast; known: splitKv, fastExp/);
    refuses(tweaked(['fastExp', 'fastExp']), /wsTweaks lists a tweak twice/);
    refuses(tweaked(['splitKv'], { wsProducerWalk: true }), /splitKv does not combine with wsProducerWalk/);
    refuses(tweaked(['rescaleInTurn']), /rescaleInTurn needs wsConsumers overlap or fa3/);
    refuses(tweaked(['packFirst'], { wsConsumers: 'fa3' }), /packFirst is for the serial consumers/);
    refuses(tweaked(['pvN128']), /pvN128 needs valueDim 128/, 'causal.attn', 64);
    refuses(
      { engine: 'wgmma', wsTweaks: ['fastExp'] },
      /tune the wgmma-ws engine; the schedule asks for wgmma/,
    );
  });

  it('splitKv over a fused quantized cache, whose tiles the producer converts whole', () => {
    const source = 'attention q8() {\n  store kv int8 scale f32 per token\n  mask causal\n}';
    const quantized = (wsTweaks: WsTweak[]) =>
      compile(source, {
        target: 'cuda',
        headDim: 128,
        schedule: { ...base, wsTweaks, quantPrefill: 'fused' },
      });
    expect(quantized(['fastExp']).kernel.schedule.engine).toBe('wgmma-ws');
    expect(() => quantized(['splitKv'])).toThrow(/wsTweaks splitKv needs bf16\/f16 K and V/);
  });

  it('wsTweaks alone asks for the wgmma-ws engine', () => {
    expect(kernelOf('causal.attn', { wsTweaks: ['fastExp'] }).schedule.engine).toBe('wgmma-ws');
  });
});

// The dense default (schedule-preferred.ts wsDense): masks the consumers classify, at D = 128, take
// FlashAttention-3's consumers with the tweak set that won on the H200 (issue 13 item 5).
const denseFiles = [
  'full.attn',
  'causal.attn',
  'sliding_window.attn',
  'prefix_lm.attn',
  'softcap.attn',
  'alibi.attn',
  'sink_calibration.attn',
];
const byDefault = (
  file: string,
  headDim = 128,
  dtype: 'bf16' | 'f16' = 'bf16',
  schedule?: Partial<Schedule>,
) =>
  compile(readStdlib(file), {
    target: 'cuda',
    file: stdlibPath(file),
    headDim,
    dtype,
    ...(schedule ? { schedule } : {}),
  });

describe('wgmma-ws dense default', () => {
  const dense = { ...base, wsConsumers: 'fa3', wsTweaks: wsDenseTweaks };

  it('masks the consumers classify, at D = 128, bf16 and f16: FlashAttention-3 consumers with the tweak set', () => {
    for (const dtype of ['bf16', 'f16'] as const)
      for (const file of denseFiles)
        expect(byDefault(file, 128, dtype).artifact.schedule, `${file} ${dtype}`).toMatchObject(dense);
    expect([...wsDenseTweaks]).toEqual([
      'splitKv',
      'fastExp',
      'lazyRescale',
      'zeroInit',
      'pvN128',
      'rescaleInTurn',
      'foldScale',
    ]);
  });

  it('not at D = 64, not where a wgmma-ws field, tiles or quantized K/V are asked', () => {
    const plain = (s: Schedule) => {
      expect(s.engine).toBe('wgmma-ws');
      expect(s.wsTweaks).toBeUndefined();
    };
    plain(byDefault('full.attn', 64).artifact.schedule);
    expect(byDefault('full.attn', 64).artifact.schedule.blockK).toBe(176);
    const serial = byDefault('full.attn', 128, 'bf16', { wsConsumers: 'serial' }).artifact.schedule;
    plain(serial);
    expect(serial.blockK).toBe(176);
    plain(byDefault('causal.attn', 128, 'bf16', { blockK: 128 }).artifact.schedule);
    expect(
      byDefault('causal.attn', 128, 'bf16', { wsTweaks: ['fastExp'] }).artifact.schedule.wsTweaks,
    ).toEqual(['fastExp']);
    // An explicit engine still takes the dense default.
    expect(byDefault('causal.attn', 128, 'bf16', { engine: 'wgmma-ws' }).artifact.schedule).toMatchObject(
      dense,
    );
    const q8 = 'attention q8() {\n  store kv int8 scale f32 per token\n  mask causal\n}';
    // Fused quantized prefill: the producer converts; staged (the default) runs the float twin,
    // whose schedule is the dense one.
    plain(
      compile(q8, { target: 'cuda', headDim: 128, schedule: { quantPrefill: 'fused' } }).artifact.schedule,
    );
    expect(compile(q8, { target: 'cuda', headDim: 128 }).artifact.schedule).toMatchObject(dense);
    // Per-key hoists (heavy_hitter's kept[]) would spill 8 bytes in these consumers.
    plain(byDefault('heavy_hitter.attn').artifact.schedule);
    // Sinks + window (round 17): the dense default with ballot scans; document: the producer's walk
    // with FlashAttention-3 consumers and every tweak but splitKv, which the walk does not take.
    expect(byDefault('sink_window.attn').artifact.schedule).toMatchObject({ ...dense, tileScan: 'ballot' });
    const doc = byDefault('document.attn').artifact.schedule;
    expect(doc).toMatchObject({ wsConsumers: 'fa3', wsProducerWalk: true });
    expect(doc.wsTweaks).toEqual(dense.wsTweaks.filter((t) => t !== 'splitKv'));
  });

  it('foldScale with a negative scale: the Q rows are negated once, fenced and barriered, before any S', () => {
    for (const file of ['full.attn', 'causal.attn']) {
      const c = consumer(byDefault(file).artifact.code);
      // The guard is the runtime scale (a kernel argument, uniform): negative only.
      const guard = c.indexOf('if (qscale < 0.f) {');
      expect(guard, file).toBeGreaterThan(-1);
      const negate = c.slice(guard, c.indexOf('const float qs = ', guard));
      // Every 16-bit element of this warpgroup's 64 rows, both 64-wide panels: all four words.
      for (const w of ['x', 'y', 'z', 'w']) expect(negate).toContain(`v.${w} ^= 0x80008000u;`);
      expect(negate).toContain('for (int p = 0; p < D / 64; ++p)');
      expect(negate).toContain('(warp / 4) * 64 * 64');
      expect(negate).toContain('for (int i = tid % 128; i < 64 * 64 / 8; i += 128)');
      // Visible to wgmma (async proxy) and to the whole warpgroup before its first S = Q·Kᵀ.
      expect(negate.indexOf('proxy_fence();')).toBeLessThan(negate.indexOf('bar.sync %0, 128;'));
      expect(negate).toContain('"r"(5 + warp / 4)');
      expect(c.indexOf('mbar_wait(qbar, 0);')).toBeLessThan(guard);
      expect(guard).toBeLessThan(c.indexOf('wg_qk_z('));
      // |scale| in the FFMA; 0 kept off 0 (a masked -inf must not become NaN), the max scaled once.
      expect(c).toContain('const float qs = qscale == 0.f ? 1e-30f : fabsf(qscale);');
      expect(c).toContain('mx = fmaxf(m[r], mx * qs);');
      expect(c).toContain('ex2_ftz(fmaf(s[j][2 * r], qs, nb))');
      expect(c).not.toContain('* qscale');
    }
    // Named barriers 5 and 6 are the warpgroups' own: no other barrier of the kernel uses them.
    const code = byDefault('full.attn').artifact.code;
    expect(code.match(/bar\.sync [56]\b/g)).toBeNull();
    expect(code).toContain('bar.sync 1, %0;');
    // A score modifier keeps the multiply (softcap sees scale · q·k): no negation there.
    const softcap = consumer(byDefault('softcap.attn').artifact.code);
    expect(softcap).not.toContain('qscale < 0.f');
    expect(softcap).toContain('const float x = s[j][e] * qscale;');
  });

  it('the defaults build for sm_90a (bf16, f16) with no spills and no serialized wgmma', async () => {
    const dir = scratchDir('ws-dense-default');
    // Every dense default in bf16, and the unmasked and causal ones in f16.
    const builds = [
      ...denseFiles.map((file) => [file, 'bf16'] as const),
      ['full.attn', 'f16'] as const,
      ['causal.attn', 'f16'] as const,
    ];
    const parts = builds.map(([file, dtype]) => {
      const { kernel } = byDefault(file, 128, dtype);
      // The decode variant is the same whatever the prefill engine: mma.test.ts and decode.test.ts
      // build it (here it would be half the nvcc time).
      return renderCuda({ ...kernel, decodeVariant: false, name: `${kernel.name}_${dtype}_dd` }, meta).code;
    });
    const tu = join(dir, 'dense.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = [...sassOnly('sm_90a'), '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
    const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'dense.cubin')]);
    expectOk(r, `nvcc ${tu}`);
    for (const code of ['C7508', 'C7519', 'C7520', 'C7510']) expect(r.stderr).not.toContain(code);
    const lines = r.stderr.split('\n');
    const spills = lines.flatMap((l, i) =>
      /Function properties for \w+_dd_attention/.test(l) ? [lines[i + 1] ?? ''] : [],
    );
    expect(spills.length).toBe(builds.length);
    for (const line of spills) expect(line).toMatch(/ 0 bytes spill stores, 0 bytes spill loads/);
  }, 900_000);
});

// The tweak combinations bench/cuda/tune-list.mjs times, in one translation unit: no warnings,
// no spills, no serialized wgmma (C7520), and no warpgroup.arrive injected into the serial tile's
// P·V once P is packed first (C7519).
describe('wgmma-ws tweaks compile with nvcc', () => {
  it('serial and FlashAttention-3 consumers with every tweak, full and causal', async () => {
    const dir = scratchDir('ws-tweaks');
    const serial: WsTweak[] = ['splitKv', 'fastExp', 'lazyRescale', 'zeroInit', 'pvN128', 'packFirst'];
    const fa3: WsTweak[] = ['splitKv', 'fastExp', 'lazyRescale', 'zeroInit', 'pvN128', 'rescaleInTurn'];
    const cases: [string, Partial<Schedule>][] = [
      ['full.attn', tweaked([...serial, 'regs240'], { blockK: 176 })],
      ['causal.attn', tweaked(serial, { stages: 3 })],
      ['full.attn', tweaked([...fa3, 'regs240'], { wsConsumers: 'fa3', blockK: 160 })],
      ['causal.attn', tweaked([...fa3, 'foldScale'], { wsConsumers: 'fa3', stages: 3 })],
      ['causal.attn', tweaked(fa3, { wsConsumers: 'overlap' })],
      // One P register set: the overlap alone fits 176-key tiles in 240 registers (fa3 spills there).
      ['full.attn', tweaked([...fa3, 'regs240', 'foldScale'], { wsConsumers: 'overlap', blockK: 176 })],
      ['document.attn', tweaked(serial)],
      // Ping-pong turns: without packFirst every wgmma of this one is serialized (C7520).
      ['full.attn', tweaked([...serial, 'regs240', 'foldScale'], { blockK: 176, wsConsumers: 'pingpong' })],
    ];
    const parts = cases.map(([file, schedule], i) => {
      const kernel = kernelOf(file, schedule);
      return renderCuda({ ...kernel, decodeVariant: false, name: `${kernel.name}_t${i}` }, meta).code;
    });
    const tu = join(dir, 'tweaks.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = [...sassOnly('sm_90a'), '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
    const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'tweaks.cubin')]);
    expectOk(r, `nvcc ${tu}`);
    for (const code of ['C7508', 'C7519', 'C7520', 'C7510']) expect(r.stderr).not.toContain(code);
    const lines = r.stderr.split('\n');
    const spills = lines.flatMap((l, i) =>
      /Function properties for \w+_attention/.test(l) ? [lines[i + 1] ?? ''] : [],
    );
    expect(spills.length).toBe(cases.length);
    for (const line of spills) expect(line).toMatch(/ 0 bytes spill stores, 0 bytes spill loads/);
  }, 900_000);
});
