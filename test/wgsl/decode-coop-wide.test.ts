// Wide code loads of the coop decode module (Schedule.coopDecodeCodes, src/codegen/wgsl/dequant-run.ts)
// on lavapipe: a lane owns a contiguous run of channels and loads its codes as vec4<u32> (or
// vec2<u32> / u32) words. Bit for bit first (`mask q == k` at Nq = Nk ≤ 16: each output row is one
// V row times 1, so the run's values must equal the reference's dequantized values exactly), then
// attention over int8, e4m3, int4 and KIVI int2 caches at decode shapes (GQA 4 and 1, Nk not a
// multiple of a step or split) against referenceStoredDecl, including widths whose rows do not split
// into whole runs (the word-per-vec4 fallback) and a quantized K beside a float V.
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { renderedCoopDecodeTuning, retuneCoopDecode } from '../../src/codegen/wgsl/decode-coop.js';
import type { CoopDecodeTuning } from '../../src/codegen/wgsl/decode-coop-tuning.js';
import { compile, type Compiled } from '../../src/compile.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { checkedFormats } from '../../src/quant/format.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceDequantize, referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { lightCoopDecode } from '../support/light-decode.js';

type Codes = NonNullable<Schedule['coopDecodeCodes']>;

/** Generous: lavapipe compiles each module with LLVM (seconds; minutes on a loaded machine). */
const TIMEOUT = 600_000;

async function compileWide(source: string, D: number, Dv: number, codes: Codes): Promise<Compiled> {
  const c = compile(source, {
    target: 'wgsl',
    file: 'wide.attn',
    headDim: D,
    valueDim: Dv,
    limits: deviceLimits(await getDevice()),
    schedule: { wgslEngine: 'coop', coopDecodeCodes: codes },
  });
  expect(c.artifact.decode).toBeDefined();
  return c;
}

/** The views a decode module loads codes through (k_codes4, v_buf, … or none). */
function codeViews(c: Compiled): { k?: string; v?: string } {
  const code = c.artifact.decode!.artifact.code;
  const view = (w: 'k' | 'v'): string | undefined => {
    if (!code.includes(`fn ${w}_dequant_run(`)) return undefined;
    const m = new RegExp(`let dq_w0 = (${w}_codes[24]|${w}_buf)\\[`).exec(
      code.slice(code.indexOf(`fn ${w}_dequant_run(`)),
    );
    return m?.[1];
  };
  return { k: view('k'), v: view('v') };
}

describe('wide code loads: V rows bit for bit', () => {
  // Dv = 32: 'wide16' gives int8 and e4m3 2 lanes (a vec4<u32> each), int4 one lane (a
  // vec4<u32>); 'wide' gives 8 lanes of one word (e5m2, int8). Dv = 128: int2 over 8 lanes of one word.
  // (int2 through a vec2<u32>: lavapipe took 60–100 s to compile that module; the vec2 view is
  // covered by e4m3 below and int2's 2-bit fields by the u32 runs.)
  const cases: readonly [string, Codes, string, number][] = [
    ['store v int8 scale f32 per token', 'wide16', 'v_codes4', 32],
    ['store v e4m3 scale f16 per token group 4 norm f32 recent 2 bf16', 'wide16', 'v_codes4', 32],
    ['store v int4 scale f16 per channel group 3 zero f16', 'wide16', 'v_codes4', 32],
    ['store v int2 scale f16 per token group 16 zero f16 recent 3 f16', 'wide', 'v_buf', 128],
    ['store v e5m2 scale f32 per channel', 'wide', 'v_buf', 32],
    ['store v int8 scale f16 per channel group 5 zero f16', 'wide', 'v_buf', 32],
  ];
  for (const [store, codes, view, Dv] of cases)
    it(
      `${store} (${codes}: ${view}, Dv ${Dv})`,
      async () => {
        const s = { B: 2, H: 2, Hkv: 1, Nq: 13, Nk: 13, D: 32, Dv };
        const c = await compileWide(`attention t() {\n  ${store}\n  mask q == k\n}`, s.D, s.Dv, codes);
        expect(codeViews(c).v).toBe(view);
        const formats = checkedFormats(c.decl);
        const rand = rng(5);
        const made = randomStoredInputs(formats, s, rand);
        // Fewer invocations (lightCoopDecode): the lanes, whose loads are the point, stay those rendered.
        const gpu = await createKernel(await getDevice(), lightCoopDecode(c.artifact), {
          debug: true,
          decode: 'always',
        });
        try {
          const q = new Float32Array(s.B * s.H * s.Nq * s.D).map(() => rand() - 0.5);
          const k = new Float32Array(s.B * s.Hkv * s.Nk * s.D).map(() => rand() - 0.5);
          const res = await gpu.run({ ...s, q, k, v: new Float32Array(0), caches: made.caches });
          const vals = referenceDequantize(formats.v!, made.caches.v!, { B: s.B, Hkv: 1, Nk: s.Nk, D: s.Dv });
          const expected = new Float32Array(res.out.length);
          for (let b = 0; b < s.B; b++)
            for (let h = 0; h < s.H; h++)
              expected.set(
                vals.subarray(b * s.Nk * s.Dv, (b + 1) * s.Nk * s.Dv),
                (b * s.H + h) * s.Nq * s.Dv,
              );
          const bad = expected.findIndex(
            (x, i) => !Object.is(x, res.out[i]) && !(x === 0 && res.out[i] === 0),
          );
          expect(bad, `[${bad}] kernel ${res.out[bad]}, reference ${expected[bad]}`).toBe(-1);
        } finally {
          gpu.destroy();
        }
      },
      TIMEOUT,
    );
});

interface AttnCase {
  name: string;
  store: string;
  codes: Codes;
  D: number;
  group: number;
  Hkv: number;
  Nk: number;
  /** The views the module must load K and V codes through (undefined: the fallback). */
  views: { k?: string; v?: string };
  /** Knobs re-tuned after rendering (the lanes stay those the wide loads were made for). */
  tuning?: Partial<CoopDecodeTuning>;
}

const KIVI =
  'store k int2 scale f16 per channel group 32 zero f16 recent 16 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 16 f16';

const attnCases: readonly AttnCase[] = [
  // int8 at D = 64: 'wide' keeps 8 lanes, 8 bytes (a vec2<u32>) a lane; 'wide16' 4 lanes, 16 bytes.
  {
    name: 'int8',
    store: 'store kv int8 scale f16 per token',
    codes: 'wide16',
    D: 64,
    group: 4,
    Hkv: 1,
    Nk: 377,
    views: { k: 'k_codes4', v: 'v_codes4' },
    tuning: { threads: 32, splitKeys: 64, prefetch: 1 }, // 4 lanes: 8 groups, 16 keys a step
  },
  {
    name: 'e4m3',
    store: 'store kv e4m3 scale f16 per token',
    codes: 'wide',
    D: 64,
    group: 1,
    Hkv: 2,
    Nk: 203,
    views: { k: 'k_codes2', v: 'v_codes2' },
  },
  {
    name: 'int4',
    store: 'store kv int4 scale f16 per token group 32 zero f16',
    codes: 'wide16',
    D: 64,
    group: 4,
    Hkv: 1,
    Nk: 300,
    views: { k: 'k_codes4', v: 'v_codes4' },
  },
  // KIVI at D = 128 as the H200 bench runs it: 8 lanes of one code word each.
  {
    name: 'KIVI int2',
    store: KIVI,
    codes: 'wide',
    D: 128,
    group: 4,
    Hkv: 1,
    Nk: 290,
    views: { k: 'k_buf', v: 'v_buf' },
  },
  // D = 24 (6 vec4 columns over 8 lanes): no whole runs; the word-per-vec4 fallback (its module is
  // byte-identical to the knob-off one: decode-coop-wide-golden.test.ts).
  {
    name: 'int8 fallback',
    store: 'store kv int8 scale f16 per token',
    codes: 'wide',
    D: 24,
    group: 1,
    Hkv: 2,
    Nk: 150,
    views: {},
  },
  // A quantized K beside a float V: K's runs, V's strided columns.
  {
    name: 'int8 K, f32 V',
    store: 'store k int8 scale f32 per token',
    codes: 'wide16',
    D: 32,
    group: 4,
    Hkv: 1,
    Nk: 333,
    views: { k: 'k_codes4' },
  },
];

/**
 * The artifact with its decode module re-tuned by `t` over the knobs it was rendered with; without
 * `t`, at fewer invocations (lightCoopDecode: the lanes and their code loads stay those rendered).
 */
function retuned(c: Compiled, t: Partial<CoopDecodeTuning> | undefined): Artifact {
  if (!t) return lightCoopDecode(c.artifact);
  const decode = c.artifact.decode!;
  const full = { ...renderedCoopDecodeTuning(decode), ...t };
  return { ...c.artifact, decode: retuneCoopDecode(decode, full) };
}

describe('wide code loads: decode attention agrees with the reference', () => {
  for (const a of attnCases)
    it(
      `${a.name} (${a.codes}), D ${a.D}, GQA ${a.group}, Nk ${a.Nk}`,
      async () => {
        const source = `attention t() {\n  ${a.store}\n  mask causal\n}`;
        const c = await compileWide(source, a.D, a.D, a.codes);
        expect(codeViews(c)).toEqual(a.views);
        const s = { B: 2, H: a.Hkv * a.group, Hkv: a.Hkv, Nq: 1, Nk: a.Nk };
        const rand = rng(a.Nk);
        const formats = checkedFormats(c.decl);
        const stored = randomStoredInputs(formats, { ...s, D: a.D, Dv: a.D }, rand);
        const q = new Float32Array(s.B * s.H * a.D).map(() => rand() * 2 - 1);
        const empty = new Float32Array(0);
        const v = formats.v ? empty : new Float32Array(s.B * s.Hkv * s.Nk * a.D).map(() => rand() * 2 - 1);
        const gpu = await createKernel(await getDevice(), retuned(c, a.tuning), {
          debug: true,
          decode: 'always',
        });
        try {
          const res = await gpu.run({ ...s, q, k: empty, v, caches: stored.caches });
          if (a.tuning?.splitKeys) expect(res.decodeSplits).toBe(Math.ceil(s.Nk / a.tuning.splitKeys));
          const inp = { q, k: empty, v, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: 1, Nk: s.Nk, D: a.D, Dv: a.D };
          const env = { params: {}, tensors: {}, sizes: { ...s, D: a.D } };
          const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
          const out = compareArrays(res.out, ref.out, ref.outScale);
          expect(out.nanCount).toBe(0);
          expect(out.relError).toBeLessThan(1e-5);
          expect(compareArrays(res.lse!, ref.lse, 1).relError).toBeLessThan(1e-5);
        } finally {
          gpu.destroy();
        }
      },
      TIMEOUT,
    );
});
