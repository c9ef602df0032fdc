// The coop engine's decode module (src/codegen/wgsl/decode-coop*.ts) on WebGPU against the dense
// reference: stdlib-style programs at decode shapes, each lane-sum path (subgroup shuffles, the
// workgroup-memory fallback when a lane group is wider than the adapter's subgroups, and no
// subgroups at all), several knob settings (many small splits, several row tiles, one key per lane
// group), offsets, empty rows, f16, and random programs. Lavapipe's subgroups have 8 invocations:
// lanes ≤ 8 take the shuffles there, lanes 16 and 32 the fallback.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CoopDecodeTuning } from '../../src/codegen/wgsl/decode-coop-tuning.js';
import { compile } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { checkDecode, type DecodeCase } from '../decode-check.js';
import { arbProgram, type Shape } from '../support/arbitraries.js';

const shape = (s: Partial<Shape> & Pick<Shape, 'Nq' | 'Nk'>): Shape => ({
  B: 1,
  Hq: 4,
  Hkv: 2,
  D: 16,
  Dv: 16,
  ...s,
});

const programs = {
  sliding: 'attention sw(window: int = 100) {\n  mask causal && q - k < window\n}',
  sinks:
    'attention sinks(window: int = 64, sinks: int = 4) {\n  mask causal && (q - k < window || k < sinks)\n}',
  document: 'attention document(doc: i32[kv]) {\n  mask doc[q] == doc[k] && causal\n}',
  softcap: 'attention softcap(cap: f32 = 5.0) {\n  score cap * tanh(score / cap)\n  mask causal\n}',
  alibi: 'attention alibi(slopes: f32[heads]) {\n  score score - slopes[h] * float(q - k)\n  mask causal\n}',
  full: 'attention full() {\n}',
  headmask: 'attention headmask() {\n  mask h % 2 == 0 && causal\n}',
};

/** Knob settings: small splits so a few hundred keys give several (and partial last steps). */
const tunings: readonly Partial<CoopDecodeTuning>[] = [
  { threads: 32, chunk: 2, rows: 4, splitKeys: 64, prefetch: 1 }, // next step loaded while this one computes
  { threads: 64, chunk: 1, rows: 3, splitKeys: 80 }, // 16 groups, one key each; ragged row tiles
  { threads: 16, chunk: 2, rows: 16, splitKeys: 128 },
];

/**
 * Knobs for the cases whose point is not the knobs (offsets, empty rows, f16, the merge): 16
 * invocations, 4 lane groups at D = 16. Lavapipe compiles that split entry point in ~4–5 s CPU on a
 * cold Mesa cache, the default 64 invocations (16 groups) in ~10–18 s (test/support/light-decode.ts
 * says what drives it); the default knobs run in the auto-mode case and at D = 64 below.
 */
const light = { threads: 16, splitKeys: 128 };

/** Generous: lavapipe compiles each new module with LLVM (seconds each; minutes on a loaded machine). */
const TIMEOUT = 600_000;

const coop = (c: Omit<DecodeCase, 'engine'>): ReturnType<typeof checkDecode> =>
  checkDecode({ ...c, engine: 'coop' });

/** One decode shape per program, rotating through GQA ratios, Nq and the knob settings. */
const cases = [
  [1, 500, 4, 2],
  [4, 377, 8, 2],
  [16, 203, 2, 1],
] as const;

describe('coop decode agrees with the reference', () => {
  for (const [p, [name, source]] of Object.entries(programs).entries()) {
    const [Nq, Nk, Hq, Hkv] = cases[p % cases.length]!;
    const coopTuning = tunings[p % tunings.length]!;
    it(
      `${name}: Nq ${Nq}, Nk ${Nk}, GQA ${Hq}:${Hkv}, ${JSON.stringify(coopTuning)}`,
      async () => {
        const res = await coop({ source, shape: shape({ Nq, Nk, Hq, Hkv }), seed: Nk, coopTuning });
        expect(res.decodeSplits).toBe(Math.ceil(Nk / coopTuning.splitKeys!));
      },
      TIMEOUT,
    );
  }

  // D = 64 over Dv = 32: lanes 32 own one vec4 of K and some own none of V.
  const laneShape = shape({ Nq: 3, Nk: 300, Hq: 4, Hkv: 1, D: 64, Dv: 32 });
  // 2–4 lane groups (threads 32, 32, 64): the lanes are the point.
  for (const lanes of [8, 16, 32]) {
    it(
      `lane sums over ${lanes} lanes (${lanes <= 8 ? 'shuffles on lavapipe' : 'workgroup-memory fallback on lavapipe'})`,
      async () => {
        await coop({
          source: programs.sinks,
          shape: laneShape,
          coopTuning: { lanes, threads: Math.max(32, 2 * lanes), splitKeys: 128 },
        });
      },
      TIMEOUT,
    );
  }

  it(
    'lane sums without subgroups; D = 24 (lanes with 2 vec4 columns of K, some with none of V)',
    async () => {
      await coop({
        source: programs.sinks,
        shape: laneShape,
        subgroups: false,
        coopTuning: { threads: 32, splitKeys: 64 },
      });
      const odd = shape({ Nq: 2, Nk: 150, D: 24, Dv: 8 });
      await coop({
        source: programs.alibi,
        shape: odd,
        coopTuning: { lanes: 4, threads: 16, splitKeys: 32 },
      });
    },
    TIMEOUT,
  );

  it(
    'fewer invocations than packed rows: every row still writes its partial',
    async () => {
      // A property-test counterexample: 2 invocations, 3 rows; row 2's (m, l) was never written.
      const coopTuning = { lanes: 2, threads: 2, chunk: 1, rows: 3, splitKeys: 8 };
      await coop({
        source: programs.full,
        shape: shape({ Nq: 3, Nk: 1, Hq: 1, Hkv: 1, D: 8, Dv: 8 }),
        coopTuning,
      });
      await coop({
        source: programs.sliding,
        shape: shape({ Nq: 5, Nk: 40, Hq: 2, Hkv: 1, D: 8, Dv: 8 }),
        coopTuning,
      });
    },
    TIMEOUT,
  );

  it(
    'offsets: q_offset inside, before and after the keys, k_offset > 0',
    async () => {
      const coopTuning = light;
      for (const [qOffset, kOffset] of [
        [500, 0],
        [2000, 17],
      ] as const) {
        await coop({
          source: programs.sliding,
          shape: shape({ Nq: 5, Nk: 600, qOffset, kOffset }),
          coopTuning,
        });
      }
      for (const [qOffset, kOffset] of [
        [-40, 0], // every row before every key: causal rows are empty (out 0, lse -inf)
        [250, 300],
      ] as const) {
        await coop({
          source: programs.document,
          shape: shape({ Nq: 2, Nk: 340, qOffset, kOffset }),
          coopTuning,
        });
      }
    },
    TIMEOUT,
  );

  it(
    'empty rows give out 0 and lse -inf; a split empty for all rows is skipped',
    async () => {
      const res = await coop({
        source: programs.sliding,
        shape: shape({ Nq: 4, Nk: 700, qOffset: -10 }),
        coopTuning: light,
      });
      expect([...res.out].every((x) => x === 0)).toBe(true);
      expect([...res.lse!].every((x) => x === -Infinity)).toBe(true);
    },
    TIMEOUT,
  );

  it(
    'large scores (magnitude 32), Dv != D, B = 2, GQA 8:1 × 16 rows over many row tiles',
    async () => {
      await coop({
        source: programs.full,
        shape: shape({ Nq: 2, Nk: 900, D: 64, Dv: 64 }),
        magnitude: 32,
        coopTuning: { splitKeys: 128 },
      });
      await coop({
        source: programs.sinks,
        shape: shape({ B: 2, Nq: 16, Nk: 260, Hq: 8, Hkv: 1, Dv: 24 }),
        coopTuning: { splitKeys: 64, rows: 16 },
      });
    },
    TIMEOUT,
  );

  it(
    'the wide merge (mergeCols): slabs of a row, Dv not a multiple of the slab, empty rows, more subsets than splits',
    async () => {
      // Dv 24 = 6 vec4 columns in slabs of 4: the second slab half empty; 5 splits over 16 subsets.
      await coop({
        source: programs.sinks,
        shape: shape({ B: 2, Nq: 3, Nk: 300, Hq: 4, Hkv: 1, Dv: 24 }),
        coopTuning: { threads: 32, splitKeys: 64, mergeCols: 4, mergeThreads: 64 },
      });
      const res = await coop({
        source: programs.sliding,
        shape: shape({ Nq: 4, Nk: 700, qOffset: -10 }),
        coopTuning: { ...light, mergeCols: 2 },
      });
      expect([...res.out].every((x) => x === 0)).toBe(true);
      expect([...res.lse!].every((x) => x === -Infinity)).toBe(true);
      // One slab per row (cols >= Dv / 4), many splits per subset.
      await coop({
        source: programs.alibi,
        shape: shape({ Nq: 2, Nk: 640, Hq: 4, Hkv: 2 }),
        coopTuning: { splitKeys: 32, threads: 32, mergeCols: 8, mergeThreads: 16 },
      });
    },
    TIMEOUT,
  );

  it(
    'f16 storage',
    async () => {
      const device = await getDevice();
      if (!device.features.has('shader-f16')) {
        expect(() =>
          compile(programs.sliding, {
            target: 'wgsl',
            headDim: 16,
            dtype: 'f16',
            wgslEngine: 'coop',
            limits: { maxWorkgroupStorageBytes: 16384, maxInvocations: 256, shaderF16: false },
          }),
        ).toThrow(/shader-f16/);
        return;
      }
      const coopTuning = light;
      await coop({ source: programs.sliding, shape: shape({ Nq: 3, Nk: 500 }), dtype: 'f16', coopTuning });
      await coop({ source: programs.document, shape: shape({ Nq: 1, Nk: 313 }), dtype: 'f16', coopTuning });
    },
    TIMEOUT,
  );

  it(
    'the runtime takes it in auto mode for few rows over a long KV (default knobs: 256-key splits)',
    async () => {
      const auto = await coop({ source: programs.sliding, shape: shape({ Nq: 1, Nk: 1100 }), mode: 'auto' });
      expect(auto.decodeSplits).toBe(5);
      const short = await coop({ source: programs.sliding, shape: shape({ Nq: 1, Nk: 200 }), mode: 'auto' });
      expect(short.decodeSplits).toBeUndefined();
      // 'always' is correct beyond decode sizes too (Nq > 16, a single split, Nk = 0).
      await coop({ source: programs.sliding, shape: shape({ Nq: 40, Nk: 90 }) });
      await coop({ source: programs.sliding, shape: shape({ Nq: 3, Nk: 0 }) });
    },
    TIMEOUT,
  );
});

const runs = Number(process.env.ATTNC_DECODE_RUNS ?? 6);

describe('coop decode: random programs at decode shapes', () => {
  it(`${runs} random programs`, async () => {
    const arbShape = fc
      .record({
        B: fc.integer({ min: 1, max: 2 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        ratio: fc.constantFrom(1, 2, 4),
        Nq: fc.integer({ min: 1, max: 16 }),
        Nk: fc.integer({ min: 1, max: 700 }),
        D: fc.constantFrom(8, 16, 32),
        qOffset: fc.option(fc.integer({ min: -20, max: 800 }), { nil: undefined }),
        kOffset: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
      })
      .map(({ ratio, ...s }) => ({ ...s, Hq: s.Hkv * ratio, Dv: s.D }));
    const arbTuning = fc
      .record({
        lanes: fc.constantFrom(2, 4, 8, 16),
        groups: fc.constantFrom(1, 2, 4),
        chunk: fc.integer({ min: 1, max: 4 }),
        rows: fc.integer({ min: 1, max: 16 }),
        steps: fc.integer({ min: 1, max: 4 }),
      })
      .map(({ lanes, groups, chunk, rows, steps }) => ({
        lanes,
        threads: lanes * groups,
        chunk,
        rows,
        splitKeys: groups * chunk * steps * 8,
      }));
    await fc.assert(
      fc.asyncProperty(
        arbProgram(),
        arbShape,
        arbTuning,
        fc.integer(),
        fc.boolean(),
        (decl, s, t, seed, sg) =>
          coop({ source: printDecl(decl), shape: s, seed, coopTuning: t, subgroups: sg }).then(
            () => undefined,
          ),
      ),
      { numRuns: runs },
    );
  }, 1_200_000);
});
