// Quantized K/V caches on the WGSL backend (lavapipe): the dequantizing tile load against the
// oracle (src/runtime/reference-quant.ts). Bit for bit first: with `mask q == k` every query row
// sees one key with weight exactly 1, so the output row IS the staged, dequantized V row — over
// random code words (every bit pattern, fp8 NaN/Inf included) and random side tensors. Then
// attention over random formats × granularities × shapes (GQA, Nq ≠ Nk, ragged groups, recent
// windows, decode mode, offsets) beside masks and score modifiers at f32 tolerance against
// referenceStoredDecl.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile, type Compiled } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { cacheBytes, type QuantCache, type StoredFloats } from '../../src/quant/layout.js';
import { runKernel } from '../../src/cli/run-kernel.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { fromF16, toF16 } from '../../src/runtime/f16.js';
import { referenceImportance } from '../../src/runtime/importance-ref.js';
import { randomStoredInputs } from '../../src/runtime/inputs.js';
import { referenceDequantize, referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { formatArb } from './arbitrary.js';
import { storeStatement, withFlaggedSalient } from './format-source.js';

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function compileWgsl(
  source: string,
  D: number,
  Dv: number,
  tile = 8,
  dtype: 'f32' | 'f16' = 'f32',
): Promise<Compiled> {
  const device = await getDevice();
  return compile(source, {
    target: 'wgsl',
    file: 'quant.attn',
    headDim: D,
    valueDim: Dv,
    dtype,
    limits: deviceLimits(device),
    schedule: { blockQ: tile, threads: tile, blockK: tile },
  });
}

/** Every element the same, or both NaN, or a subnormal against a zero of its sign (flushed). */
function bitwiseProblems(actual: Float32Array, expected: Float32Array): string[] {
  const problems: string[] = [];
  const tiny = 2 ** -126;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))) continue;
    if (a === 0 && Math.abs(e) < tiny && Object.is(Math.sign(a), Math.sign(e) || a)) continue;
    if (a === 0 && e === 0) continue; // ±0 after 1·x: the sign of a zero product is not at issue
    problems.push(`[${i}] kernel ${a}, reference ${e}`);
    if (problems.length >= 5) break;
  }
  return problems;
}

/** Random words in every tensor of a cache (each side tensor keeps its dtype's bit patterns). */
function scrambled(c: QuantCache, rand: () => number): QuantCache {
  const words = (a: Uint32Array): Uint32Array => a.map(() => Math.floor(rand() * 2 ** 32));
  // Side tensors stay finite and not too large so that the products stay informative.
  const floats = (t: StoredFloats | undefined): StoredFloats | undefined => {
    if (t === undefined) return undefined;
    if (t.dtype === 'f32') return { dtype: 'f32', data: t.data.map(() => (rand() - 0.5) * 8) };
    // 16-bit patterns with exponents below the top (finite), sign random.
    const data = t.data.map(() => ((rand() < 0.5 ? 0x8000 : 0) | Math.floor(rand() * 0x7800)) >>> 0);
    return { dtype: t.dtype, data } as StoredFloats;
  };
  return {
    codes: words(c.codes),
    ...(c.codesHi ? { codesHi: words(c.codesHi) } : {}),
    ...(c.scale ? { scale: floats(c.scale)! } : {}),
    ...(c.zero ? { zero: floats(c.zero)! } : {}),
    ...(c.norm ? { norm: floats(c.norm)! } : {}),
    ...(c.recent ? { recent: floats(c.recent)! } : {}),
  };
}

const fixed: readonly string[] = [
  'store v int8 scale f32 per token',
  'store v int4 scale f16 per channel group 3 zero f16',
  'store v int2 scale f16 per channel group 5 zero f16 recent 6 f16',
  'store v int4 scale f32 per token group 8 norm f16',
  'store v int2 scale f32 per tensor zero f32 recent 3 bf16',
  'store v e4m3',
  'store v e5m2 scale f16 per channel',
  'store v e4m3 scale f32 per token group 4 norm f32 recent 2 bf16',
  'store v e3m4',
  'store v e3m4 scale f16 per token',
  'store v int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
  'store v int4 scale f32 per token group 8 salient int8 from sal recent 4 f16',
];

describe('WGSL dequantizing K/V loads', () => {
  for (const store of fixed)
    it(`stages the reference's values bit for bit: ${store}`, async () => {
      const s = { B: 2, H: 2, Hkv: 1, Nq: 21, Nk: 21, D: 8, Dv: 13 };
      const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
      const c = await compileWgsl(`attention t(${params}) {\n  ${store}\n  mask q == k\n}`, s.D, s.Dv);
      const formats = checkedFormats(c.decl);
      const rand = rng(7);
      const made = randomStoredInputs(formats, s, rand);
      const cache = scrambled(made.caches.v!, rand);
      const marks = made.salient.sal;
      const tensors: Record<string, Int32Array> = marks ? { sal: marks.data } : {};
      const device = await getDevice();
      const gpu = await createKernel(device, c.artifact, { debug: true });
      try {
        const q = new Float32Array(s.B * s.H * s.Nq * s.D).map(() => rand() - 0.5);
        const k = new Float32Array(s.B * s.Hkv * s.Nk * s.D).map(() => rand() - 0.5);
        const res = await gpu.run({ ...s, q, k, v: new Float32Array(0), caches: { v: cache }, tensors });
        const vals = referenceDequantize(formats.v!, cache, { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: s.Dv }, marks);
        // Query row i of head h reads key i of kv head 0: out[b, h, i] = v[b, 0, i].
        const expected = new Float32Array(res.out.length);
        for (let b = 0; b < s.B; b++)
          for (let h = 0; h < s.H; h++)
            expected.set(vals.subarray(b * s.Nk * s.Dv, (b + 1) * s.Nk * s.Dv), (b * s.H + h) * s.Nq * s.Dv);
        expect(bitwiseProblems(res.out, expected)).toEqual([]);
      } finally {
        gpu.destroy();
      }
    }, 60_000);

  it('attention over random formats, granularities and shapes agrees with the reference', async () => {
    const shape = fc.record({
      B: fc.integer({ min: 1, max: 2 }),
      Hkv: fc.integer({ min: 1, max: 2 }),
      group: fc.integer({ min: 1, max: 2 }),
      Nq: fc.integer({ min: 1, max: 12 }),
      Nk: fc.integer({ min: 0, max: 30 }),
      D: fc.integer({ min: 1, max: 20 }),
      Dv: fc.integer({ min: 1, max: 20 }),
      decode: fc.boolean(),
      importance: fc.boolean(),
      f16: fc.boolean(),
      seed: fc.integer(),
      body: fc.constantFrom(...BODIES),
      qOffset: fc.option(fc.integer({ min: -8, max: 40 }), { nil: undefined }),
      kOffset: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(formatArb, formatArb, shape, async (kf, vf, s) => {
        await agreesWithReference(withFlaggedSalient(kf), withFlaggedSalient(vf), s);
      }),
      { numRuns: Number(process.env.ATTNC_QUANT_GPU_RUNS ?? 8) },
    );
  }, 240_000);

  it('e3m4 K/V (no hardware type anywhere: bit decoding) agree with the reference in decode mode and prefill', async () => {
    const k: QuantFormat = { kind: 'fp8', elem: 'e3m4', scale: { dtype: 'f16', per: { kind: 'token' } } };
    const v: QuantFormat = {
      kind: 'fp8',
      elem: 'e3m4',
      scale: { dtype: 'f32', per: { kind: 'channel', group: 5 } },
    };
    const base = { B: 2, Hkv: 2, group: 2, D: 16, Dv: 12, importance: false, f16: false, seed: 3 };
    await agreesWithReference(k, v, { ...base, Nq: 1, Nk: 70, decode: true });
    await agreesWithReference(k, v, { ...base, Nq: 9, Nk: 23, decode: false, importance: true });
  }, 120_000);
});

describe('attnc run on a kernel with store statements', () => {
  it('runs examples/quant/zipcache.attn (salient flags, importance) against the reference', async () => {
    const source = readFileSync('examples/quant/zipcache.attn', 'utf8');
    const sizes = { B: 2, H: 2, Hkv: 1, Nq: 5, Nk: 70, D: 16 };
    const r = await runKernel(source, {
      ...sizes,
      file: 'zipcache.attn',
      dtype: 'f32',
      params: {},
      seed: 5,
      repeats: 1,
    });
    expect(r.out.relError).toBeLessThan(r.tolerance);
    expect(r.importance!.relError).toBeLessThan(r.tolerance);
  }, 60_000);

  it('runs examples/quant/kivi.attn against the reference and counts the caches bytes', async () => {
    const source = readFileSync('examples/quant/kivi.attn', 'utf8');
    const sizes = { B: 1, H: 4, Hkv: 2, Nq: 3, Nk: 150, D: 16 };
    const r = await runKernel(source, {
      ...sizes,
      file: 'kivi.attn',
      dtype: 'f32',
      params: {},
      seed: 3,
      repeats: 1,
    });
    expect(r.out.relError).toBeLessThan(r.tolerance);
    expect(r.lse!.relError).toBeLessThan(r.tolerance);
    const c = compile(source, { target: 'wgsl', headDim: 16 });
    const f = c.kernel.formats.k;
    if (f.kind !== 'quant') throw new Error('kivi: k is not quantized');
    expect(r.bytes.k).toBe(cacheBytes(f.format, { B: 1, Hkv: 2, Nk: 150, D: 16 }));
  }, 60_000);
});

describe('what quantized caches do not run in yet', () => {
  const store = '  store kv int8 scale f32 per token';

  it('runs listed salient tokens through a flag pre-pass (test/wgsl/salient-list.test.ts)', () => {
    const listed =
      'attention t(s: i32[batch, kv_heads, 4]) {\n  store kv int2 scale f16 per token salient int4 from s\n}';
    const c = compile(listed, { target: 'wgsl' });
    expect(c.artifact.entryPoints[0]!.name).toBe('salient_flags_s');
    expect(c.artifact.bindings.map((b) => b.name)).toContain('s_flags');
  });

  it('runs on the coop engine when asked, through <k|v>_dequant (wgsl-coop-dequant.test.ts)', () => {
    const c = compile(`attention t() {\n${store}\n}`, { target: 'wgsl', schedule: { wgslEngine: 'coop' } });
    expect(c.kernel.schedule.wgslEngine).toBe('coop');
    expect(c.artifact.code).not.toContain('k_buf4');
  });

  it('names a missing or misshapen cache tensor', async () => {
    const s = { B: 1, H: 1, Hkv: 1, Nq: 4, Nk: 4, D: 8, Dv: 8 };
    const c = await compileWgsl(`attention t() {\n${store}\n}`, s.D, s.Dv);
    const gpu = await createKernel(await getDevice(), c.artifact);
    try {
      const q = new Float32Array(32);
      const run = gpu.run({ ...s, q, k: q, v: q, caches: { k: { codes: new Uint32Array(3) } } });
      await expect(run).rejects.toThrow(
        /caches\.k\.codes: expected u32\[1, 1, 4, 2\][\s\S]*caches\.k\.scale/,
      );
    } finally {
      gpu.destroy();
    }
  }, 60_000);
});

interface Case {
  B: number;
  Hkv: number;
  group: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  decode: boolean;
  importance: boolean;
  /** q and out in f16 (the caches keep their formats). */
  f16: boolean;
  seed: number;
  /** The mask (and score) lines; `mask causal` if absent. */
  body?: string;
  qOffset?: number | undefined;
  kOffset?: number | undefined;
}

/**
 * Masks and score modifiers beside the dequantizing loads: windows and sinks (tiles of every
 * class, rows left empty at negative offsets), a soft cap and a position bias.
 */
const BODIES: readonly string[] = [
  'mask causal',
  'mask causal && q - k < 6',
  'score 4.0 * tanh(score / 4.0)\n  mask k < 2 || q - k < 9',
  'score score - float(q - k) * 0.125\n  mask q >= k / 3',
];

async function agreesWithReference(kf: QuantFormat, vf: QuantFormat, s: Case): Promise<void> {
  const salient = [kf, vf].some((f) => f.kind === 'int' && f.salient);
  const params = salient ? 'sal: i32[batch, kv_heads, kv]' : '';
  const stores = `${storeStatement('k', kf)}\n  ${storeStatement('v', vf)}`;
  const importance = s.importance ? '\n  importance normalized' : '';
  const source = `attention t(${params}) {\n  ${stores}${importance}\n  ${s.body ?? 'mask causal'}\n}`;
  let c: Compiled;
  try {
    c = await compileWgsl(source, s.D, s.Dv, 8, s.f16 ? 'f16' : 'f32');
  } catch (e) {
    // Groups the checker refuses for this D (a token group splitting words is fine: it is a
    // multiple of the codes per word by construction) are not this test's subject.
    if (e instanceof CompileError) throw new Error(`${source}\n${e.message}`);
    throw e;
  }
  const H = s.Hkv * s.group;
  const sizes = { B: s.B, H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  const rand = rng(s.seed);
  const stored = randomStoredInputs(checkedFormats(c.decl), { ...sizes, D: s.D, Dv: s.Dv }, rand);
  const q = new Float32Array(s.B * H * s.Nq * s.D).map(() => rand() * 2 - 1);
  // f16 kernels take q as f16 bits; the reference sees the same rounded values.
  if (s.f16) q.set(fromF16(toF16(q)));
  const device = await getDevice();
  // Every cache tensor is a storage buffer: past the device's limit the run says so, naming it.
  const art = s.decode && c.artifact.decode ? c.artifact.decode.artifact : c.artifact;
  const buffers = art.bindings.filter((b) => b.role !== 'uniforms').length;
  if (buffers > device.limits.maxStorageBuffersPerShaderStage) {
    const made = createKernel(device, c.artifact, { decode: s.decode ? 'always' : 'never' });
    const run = made.then((g) => g.run({ ...sizes, q, k: q, v: q }));
    await expect(run).rejects.toThrow(/binds \d+ storage buffers; the device allows/);
    return;
  }
  const gpu = await createKernel(device, c.artifact, { debug: true, decode: s.decode ? 'always' : 'never' });
  try {
    const empty = new Float32Array(0);
    const marks = stored.salient.sal;
    const tensors: Record<string, Int32Array> = marks ? { sal: marks.data } : {};
    const qIn = s.f16 ? toF16(q) : q;
    const offsets = {
      ...(s.qOffset !== undefined ? { qOffset: s.qOffset } : {}),
      ...(s.kOffset !== undefined ? { kOffset: s.kOffset } : {}),
    };
    const res = await gpu.run({
      ...sizes,
      ...offsets,
      q: qIn,
      k: empty,
      v: empty,
      caches: stored.caches,
      tensors,
    });
    const inp = {
      q,
      k: empty,
      v: empty,
      B: s.B,
      Hq: H,
      Hkv: s.Hkv,
      Nq: s.Nq,
      Nk: s.Nk,
      D: s.D,
      Dv: s.Dv,
      ...offsets,
    };
    const envTensors: EvalEnv['tensors'] = marks
      ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } }
      : {};
    const env = { params: {}, tensors: envTensors, sizes: { ...sizes, D: s.D } };
    const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
    const what = `\n${source}\n${JSON.stringify(s)}`;
    const out = compareArrays(res.out, ref.out, ref.outScale);
    expect(out.nanCount, what).toBe(0);
    // An f16 output is rounded to 11 bits.
    expect(out.relError, what).toBeLessThan(s.f16 ? 2e-3 : 1e-5);
    const lse = compareArrays(res.lse!, ref.lse, 1);
    expect(lse.relError, what).toBeLessThan(1e-5);
    if (s.importance) {
      const want = referenceImportance(ref, { B: s.B, Hq: H, Nq: s.Nq, Nk: s.Nk }, 'normalized');
      expect(compareArrays(res.importance!, want).relError, what).toBeLessThan(1e-5);
    }
  } finally {
    gpu.destroy();
  }
}
