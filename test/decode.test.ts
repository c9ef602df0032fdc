// Decode mode on WGSL (split-KV + lse merge, src/codegen/wgsl/decode*.ts): fixed stdlib-style
// programs at decode shapes (Nq 1–16, Nk in the hundreds to thousands, GQA, offsets, empty rows,
// tensor masks, score modifiers, f16), the runtime's auto/always/never choice, and random programs
// against the dense reference.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DECODE_SPLIT_TILES } from '../src/codegen/wgsl/decode-body.js';
import { compile } from '../src/compile.js';
import { printDecl } from '../src/dsl/print.js';
import { getDevice } from '../src/runtime/webgpu.js';
import { checkDecode } from './decode-check.js';
import { arbProgram, type Shape } from './support/arbitraries.js';

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

describe('WGSL decode mode agrees with the reference', () => {
  // One tile per program, 16 and 8 in turn (512- and 256-key splits: one to five of them here; the
  // random programs below draw 8, 16 and 32): the shapes vary at run time over one kernel, where a
  // tile per shape was a new shader each (lavapipe compiles each on its first dispatch).
  for (const [p, [name, source]] of Object.entries(programs).entries()) {
    const tile = p % 2 === 0 ? 16 : 8;
    it(`${name}: Nq 1/4/16 over Nk ~1000, GQA 2:1 and 4:1, tile ${tile}`, async () => {
      for (const [Nq, Nk, Hq, Hkv] of [
        [1, 1000, 4, 2],
        [4, 777, 8, 2],
        [16, 1203, 2, 1],
        [3, 300, 3, 3],
      ] as const) {
        const res = await checkDecode({ source, shape: shape({ Nq, Nk, Hq, Hkv }), tile, seed: Nk });
        expect(res.decodeSplits).toBe(Math.ceil(Nk / (DECODE_SPLIT_TILES * tile)));
      }
    }, 120_000);
  }

  it('offsets: q_offset inside, before and after the keys, k_offset > 0', async () => {
    for (const [qOffset, kOffset] of [
      [500, 0],
      [-40, 0], // every row before every key: causal rows are empty (out 0, lse -inf)
      [2000, 17],
      [250, 300],
    ] as const) {
      await checkDecode({
        source: programs.sliding,
        shape: shape({ Nq: 5, Nk: 900, qOffset, kOffset }),
        tile: 8,
      });
      await checkDecode({
        source: programs.document,
        shape: shape({ Nq: 2, Nk: 640, qOffset, kOffset }),
        tile: 8,
      });
    }
  }, 120_000);

  it('empty rows give out 0 and lse -inf', async () => {
    const res = await checkDecode({
      source: programs.sliding,
      shape: shape({ Nq: 4, Nk: 700, qOffset: -10 }),
      tile: 8,
    });
    expect([...res.out].every((x) => x === 0)).toBe(true);
    expect([...res.lse!].every((x) => x === -Infinity)).toBe(true);
  }, 60_000);

  it('large scores (magnitude 32) do not overflow the merge', async () => {
    await checkDecode({
      source: programs.full,
      shape: shape({ Nq: 2, Nk: 1500, D: 64, Dv: 64 }),
      magnitude: 32,
      tile: 16,
    });
  }, 60_000);

  it('Dv != D, B = 2, many row tiles (GQA 8:1 x 16 rows > blockQ)', async () => {
    await checkDecode({
      source: programs.sinks,
      shape: shape({ B: 2, Nq: 16, Nk: 520, Hq: 8, Hkv: 1, Dv: 24 }),
      tile: 16,
    });
  }, 60_000);

  it('f16 storage', async () => {
    const device = await getDevice();
    if (!device.features.has('shader-f16')) {
      // Without shader-f16 the compile must refuse f16 (the decode path is never reached).
      expect(() =>
        compile(programs.sliding, {
          target: 'wgsl',
          headDim: 16,
          dtype: 'f16',
          limits: { maxWorkgroupStorageBytes: 16384, maxInvocations: 256, shaderF16: false },
        }),
      ).toThrow(/shader-f16/);
      return;
    }
    await checkDecode({
      source: programs.sliding,
      shape: shape({ Nq: 3, Nk: 1000 }),
      dtype: 'f16',
      tile: 16,
    });
    await checkDecode({ source: programs.document, shape: shape({ Nq: 1, Nk: 513 }), dtype: 'f16', tile: 8 });
  }, 60_000);
});

describe('runtime choice of decode mode', () => {
  it('auto takes decode for few queries over a long KV only; never/always force it', async () => {
    const src = programs.sliding;
    const auto = await checkDecode({
      source: src,
      shape: shape({ Nq: 1, Nk: 2000 }),
      mode: 'auto',
      tile: 16,
    });
    expect(auto.decodeSplits).toBe(Math.ceil(2000 / (DECODE_SPLIT_TILES * 16)));
    const many = await checkDecode({
      source: src,
      shape: shape({ Nq: 17, Nk: 2000 }),
      mode: 'auto',
      tile: 16,
    });
    expect(many.decodeSplits).toBeUndefined();
    const short = await checkDecode({
      source: src,
      shape: shape({ Nq: 1, Nk: 200 }),
      mode: 'auto',
      tile: 16,
    });
    expect(short.decodeSplits).toBeUndefined();
    const never = await checkDecode({
      source: src,
      shape: shape({ Nq: 1, Nk: 2000 }),
      mode: 'never',
      tile: 16,
    });
    expect(never.decodeSplits).toBeUndefined();
    // 'always' is correct beyond decode sizes too (Nq > maxNq, a single split, Nk = 0).
    expect((await checkDecode({ source: src, shape: shape({ Nq: 40, Nk: 90 }), tile: 8 })).decodeSplits).toBe(
      1,
    );
    await checkDecode({ source: src, shape: shape({ Nq: 3, Nk: 0 }), tile: 8 });
  }, 120_000);

  it('routed and all-empty kernels carry no decode variant', () => {
    const empty = compile('attention none() {\n  mask false\n}', { target: 'wgsl', headDim: 16 });
    expect(empty.kernel.tiles).toEqual({ kind: 'static', value: 'empty' });
    expect(empty.artifact.decode).toBeUndefined();
    const routed = compile(
      'attention r() {\n  route blocks(16) topk(2) by mean(q) . mean(k)\n  mask causal\n}',
      {
        target: 'wgsl',
        headDim: 16,
      },
    );
    expect(routed.kernel.routing).toBeDefined();
    expect(routed.artifact.decode).toBeUndefined();
    const plain = compile(programs.sliding, { target: 'wgsl', headDim: 16 });
    expect(plain.artifact.decode?.artifact.entryPoints.map((e) => e.name)).toEqual([
      'attention_split',
      'attention_merge',
    ]);
  });
});

const runs = Number(process.env.ATTNC_DECODE_RUNS ?? 30);

describe('random programs at decode shapes', () => {
  it(`${runs} random programs`, async () => {
    const arbDecodeShape = fc
      .record({
        B: fc.integer({ min: 1, max: 2 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        ratio: fc.constantFrom(1, 2, 4),
        Nq: fc.integer({ min: 1, max: 16 }),
        Nk: fc.integer({ min: 1, max: 1500 }),
        D: fc.constantFrom(8, 16, 32),
        qOffset: fc.option(fc.integer({ min: -20, max: 1600 }), { nil: undefined }),
        kOffset: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
      })
      .map(({ ratio, ...s }) => ({ ...s, Hq: s.Hkv * ratio, Dv: s.D }));
    await fc.assert(
      fc.asyncProperty(
        arbProgram(),
        arbDecodeShape,
        fc.integer(),
        fc.constantFrom(8, 16, 32),
        (decl, s, seed, tile) =>
          checkDecode({ source: printDecl(decl), shape: s, seed, tile }).then(() => undefined),
      ),
      { numRuns: runs },
    );
  }, 1_200_000);
});
