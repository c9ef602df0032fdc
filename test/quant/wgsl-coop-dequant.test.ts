// Quantized K/V caches on the WGSL coop engine and its decode module (lavapipe): the vec4 stage of
// co_kv and decode's key steps dequantize 4 channels at a time through <k|v>_dequant4
// (src/codegen/wgsl/dequant-vec4.ts: one code word and one shared scale read per 4 channels, the
// values lane by lane those of <k|v>_dequant in dequant.ts). Bit for bit first (`mask q == k`: each output row is one
// staged V row times 1), then attention over random formats × granularities × shapes (GQA,
// Nq ≠ Nk, ragged groups, recent windows, salient tokens, decode mode) against referenceStoredDecl.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/ir/kernel.js';
import { compile, type Compiled } from '../../src/compile.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceDequantize, referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { formatArb } from './arbitrary.js';
import { storeStatement, withFlaggedSalient } from './format-source.js';

async function compileCoop(
  source: string,
  D: number,
  Dv: number,
  schedule: Partial<Schedule> = {},
): Promise<Compiled> {
  const device = await getDevice();
  const c = compile(source, {
    target: 'wgsl',
    file: 'quant.attn',
    headDim: D,
    valueDim: Dv,
    limits: deviceLimits(device),
    schedule: { wgslEngine: 'coop', ...schedule },
  });
  expect(c.kernel.schedule.wgslEngine).toBe('coop');
  return c;
}

const fixed: readonly string[] = [
  'store v int8 scale f32 per token',
  'store v int4 scale f16 per channel group 3 zero f16',
  'store v int2 scale f16 per channel group 5 zero f16 recent 6 f16',
  'store v e5m2 scale f16 per channel',
  'store v e4m3 scale f32 per token group 4 norm f32 recent 2 bf16',
  'store v int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
];

describe('WGSL coop engine: dequantizing K/V stage', () => {
  for (const store of fixed)
    it(`stages the reference's values bit for bit: ${store}`, async () => {
      const s = { B: 2, H: 2, Hkv: 1, Nq: 21, Nk: 21, D: 8, Dv: 12 };
      const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
      const c = await compileCoop(`attention t(${params}) {\n  ${store}\n  mask q == k\n}`, s.D, s.Dv);
      expect(c.artifact.code).not.toContain('v_buf4');
      const formats = checkedFormats(c.decl);
      const rand = rng(11);
      const made = randomStoredInputs(formats, s, rand);
      const marks = made.salient.sal;
      const tensors: Record<string, Int32Array> = marks ? { sal: marks.data } : {};
      const gpu = await createKernel(await getDevice(), c.artifact, { debug: true, decode: 'never' });
      try {
        const q = new Float32Array(s.B * s.H * s.Nq * s.D).map(() => rand() - 0.5);
        const k = new Float32Array(s.B * s.Hkv * s.Nk * s.D).map(() => rand() - 0.5);
        const res = await gpu.run({ ...s, q, k, v: new Float32Array(0), caches: made.caches, tensors });
        const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: s.Dv };
        const vals = referenceDequantize(formats.v!, made.caches.v!, sizes, marks);
        // Query row i of head h sees key i of kv head 0 alone: out[b, h, i] = v[b, 0, i].
        const expected = new Float32Array(res.out.length);
        for (let b = 0; b < s.B; b++)
          for (let h = 0; h < s.H; h++)
            expected.set(vals.subarray(b * s.Nk * s.Dv, (b + 1) * s.Nk * s.Dv), (b * s.H + h) * s.Nq * s.Dv);
        const bad = expected.findIndex((x, i) => !Object.is(x, res.out[i]) && !(x === 0 && res.out[i] === 0));
        expect(bad, `[${bad}] kernel ${res.out[bad]}, reference ${expected[bad]}`).toBe(-1);
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
      Nk: fc.integer({ min: 0, max: 40 }),
      D4: fc.integer({ min: 1, max: 5 }),
      Dv4: fc.integer({ min: 1, max: 5 }),
      decode: fc.boolean(),
      seed: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(formatArb, formatArb, shape, async (kf, vf, s) => {
        await agreesWithReference(withFlaggedSalient(kf), withFlaggedSalient(vf), s);
      }),
      // Few runs: each compiles two coop pipelines on lavapipe (~20 s); ATTNC_QUANT_GPU_RUNS for more.
      { numRuns: Number(process.env.ATTNC_QUANT_GPU_RUNS ?? 4) },
    );
  }, 600_000);

  // P in registers (coopPShuffle, four lanes: the subgroupShuffle path) over dequantized K/V
  // tiles (P·V bounded by the tile's keys there), with a 5-key tail tile of 8 (37 keys).
  it('P in registers agrees over a quantized cache (int4 K, int8 V with zero points and recent tokens, a tail tile)', async () => {
    // Seed 14: `store k int4 scale f32 per token group 16 zero f16 norm f32 recent 3 f16`,
    // `store v int8 scale f32 per token zero f32 norm f16 recent 2 bf16`.
    const [kf, vf] = fc.sample(formatArb, { numRuns: 2, seed: 14 });
    const s: Case = { B: 2, Hkv: 2, group: 2, Nq: 9, Nk: 37, D4: 4, Dv4: 3, decode: false, seed: 5 };
    const schedule: Partial<Schedule> = {
      blockQ: 16,
      blockK: 8,
      threads: 32,
      coopPShuffle: true,
      coopUnroll: true,
      coopFma: true,
      subgroups: true,
    };
    expect(await agreesWithReference(kf!, vf!, s, schedule)).toBe(true);
  }, 120_000);
});

interface Case {
  B: number;
  Hkv: number;
  group: number;
  Nq: number;
  Nk: number;
  D4: number;
  Dv4: number;
  decode: boolean;
  seed: number;
}

/** Whether the kernel ran (past the device's storage-buffer limit it is not run). */
async function agreesWithReference(
  kf: QuantFormat,
  vf: QuantFormat,
  s: Case,
  schedule: Partial<Schedule> = {},
): Promise<boolean> {
  const salient = [kf, vf].some((f) => f.kind === 'int' && f.salient);
  const params = salient ? 'sal: i32[batch, kv_heads, kv]' : '';
  const source = `attention t(${params}) {\n  ${storeStatement('k', kf)}\n  ${storeStatement('v', vf)}\n  mask causal\n}`;
  const [D, Dv] = [4 * s.D4, 4 * s.Dv4];
  const c = await compileCoop(source, D, Dv, schedule);
  const H = s.Hkv * s.group;
  const sizes = { B: s.B, H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  const rand = rng(s.seed);
  const stored = randomStoredInputs(checkedFormats(c.decl), { ...sizes, D, Dv }, rand);
  const q = new Float32Array(s.B * H * s.Nq * D).map(() => rand() * 2 - 1);
  const device = await getDevice();
  const art = s.decode && c.artifact.decode ? c.artifact.decode.artifact : c.artifact;
  // Past the device's storage-buffer limit a run says so (wgsl-dequant.test.ts covers that).
  if (
    art.bindings.filter((b) => b.role !== 'uniforms').length > device.limits.maxStorageBuffersPerShaderStage
  )
    return false;
  const gpu = await createKernel(device, c.artifact, { debug: true, decode: s.decode ? 'always' : 'never' });
  try {
    const empty = new Float32Array(0);
    const marks = stored.salient.sal;
    const tensors: Record<string, Int32Array> = marks ? { sal: marks.data } : {};
    const res = await gpu.run({ ...sizes, q, k: empty, v: empty, caches: stored.caches, tensors });
    const inp = { q, k: empty, v: empty, B: s.B, Hq: H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv };
    const envTensors: EvalEnv['tensors'] = marks
      ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } }
      : {};
    const ref = referenceStoredDecl(
      c.decl,
      inp,
      { params: {}, tensors: envTensors, sizes: { ...sizes, D } },
      stored.caches,
    );
    const what = `\n${source}\n${JSON.stringify(s)}`;
    const out = compareArrays(res.out, ref.out, ref.outScale);
    expect(out.nanCount, what).toBe(0);
    expect(out.relError, what).toBeLessThan(1e-5);
    expect(compareArrays(res.lse!, ref.lse, 1).relError, what).toBeLessThan(1e-5);
    return true;
  } finally {
    gpu.destroy();
  }
}
