// Decode timings of the WGSL benchmark (run.mjs): causal, one query row per head, H / Hkv query
// heads over f32 K/V of Nk keys, D = 128, in decode mode (split-KV + lse merge), reported as GB/s
// of K+V read. The coop engine runs its own decode module (src/codegen/wgsl/decode-coop*.ts),
// whose knobs can be swept: each of --decode-threads, --decode-lanes, --decode-chunk,
// --decode-rows, --decode-split, --decode-prefetch (0/1) takes a comma list, and every combination is checked against the
// reference (decode mode forced, several splits) and then timed. Knobs not given keep those the
// module was rendered with (sweptModules); bench/wgsl/decode-dry.mjs builds the same sweep for
// quantized caches without a GPU (this timed path runs the f32 cache). The timed output itself is
// compared with a float64 reference at the timed shape (--decode-verify 0 turns that off).
// --decode-repeat R runs the knob sets R times, every other time in reverse order (a point that
// reads fast only once is then visible as such).
import { compareArrays } from '../../dist/src/runtime/compare.js';
import { referenceAttention } from '../../dist/src/runtime/reference.js';
import { createKernel } from '../../dist/src/runtime/webgpu.js';
import { steadyMs } from './steady.mjs';
import {
  coopDecodeRetuneProblem,
  renderedCoopDecodeTuning,
  retuneCoopDecode,
} from '../../dist/src/codegen/wgsl/decode-coop.js';

const KNOBS = [
  ['threads', '--decode-threads'],
  ['lanes', '--decode-lanes'],
  ['chunk', '--decode-chunk'],
  ['rows', '--decode-rows'],
  ['splitKeys', '--decode-split'],
  ['prefetch', '--decode-prefetch'],
];

/** The coop decode knob sets to run: the cartesian product of the options given (else the defaults). */
export function decodeSweep(option) {
  let sets = [{}];
  for (const [knob, flag] of KNOBS) {
    const list = option(flag, undefined);
    if (list === undefined) continue;
    const values = list.split(',').map(Number);
    const least = knob === 'prefetch' ? 0 : 1;
    if (values.some((x) => !Number.isSafeInteger(x) || x < least))
      throw new Error(`${flag}: expected a comma list of integers from ${least}, got "${list}"`);
    sets = sets.flatMap((s) => values.map((x) => ({ ...s, [knob]: x })));
  }
  return sets;
}

/**
 * The sweep's modules of a compiled coop artifact: each knob set over the knobs its decode module
 * was rendered with (a quantized cache's 'wide16' module may have fewer lanes than the defaults),
 * with the re-tuned artifact, or `problem` where the module cannot take the set. Wide code loads
 * keep the lanes they were rendered for: another lane count is compiled anew through
 * `compileWithLanes(lanes)` (Schedule.coopDecodeLanes; without it, such a set is a problem).
 * No GPU needed: bench/wgsl/decode-dry.mjs builds and validates them for every cache format.
 */
export function sweptModules(artifact, sweep, compileWithLanes) {
  const byLanes = new Map();
  const baseFor = (lanes) => {
    const fixed = artifact.decode.coop.codeLanes;
    if (lanes === undefined || fixed === undefined || lanes === fixed || !compileWithLanes) return artifact;
    if (!byLanes.has(lanes)) byLanes.set(lanes, compileWithLanes(lanes));
    return byLanes.get(lanes);
  };
  return sweep.map((knobs) => {
    const base = baseFor(knobs.lanes);
    const tuning = { ...renderedCoopDecodeTuning(base.decode), ...knobs };
    const problem = coopDecodeRetuneProblem(base.decode, tuning);
    if (problem) return { knobs, tuning, problem };
    return { knobs, tuning, artifact: { ...base, decode: retuneCoopDecode(base.decode, tuning) } };
  });
}

const describeTuning = (t) =>
  `t${t.threads} l${t.lanes} c${t.chunk} r${t.rows} s${t.splitKeys}${t.prefetch ? ' pf' : ''}`;

/** Decode mode forced on a small shape with several splits, against the float64 reference. */
export async function checkDecode(device, artifact, fill, H, Hkv, D, splitKeys) {
  const Nk = 3 * splitKeys + 17;
  const shape = { B: 1, H, Hkv, Nq: 1, Nk };
  const inputs = { ...shape, q: fill(H * D, 1), k: fill(Hkv * Nk * D, 2), v: fill(Hkv * Nk * D, 3) };
  const kernel = await createKernel(device, artifact, { decode: 'always' });
  try {
    const res = await kernel.run(inputs);
    if (!(res.decodeSplits > 1))
      throw new Error(`decode check: ${res.decodeSplits ?? 0} splits, expected several`);
    const ref = referenceAttention({ ...inputs, Hq: H, D, Dv: D }, { mask: (_b, _h, q, k) => q >= k });
    const o = compareArrays(res.out, ref.out, ref.outScale);
    const l = compareArrays(res.lse, ref.lse, 1);
    const err = Math.max(o.relError, l.relError);
    if (!(err <= 1e-4) || o.nanCount > 0) throw new Error(`decode: rel. error ${err} vs reference`);
    return err;
  } finally {
    kernel.destroy();
  }
}

/**
 * Times decode for each engine (and, for the coop engine, each knob set of the sweep); pushes a
 * row per (engine, knobs, Nk). `ctx` carries run.mjs's helpers.
 */
export async function runDecode(ctx) {
  const {
    device,
    limits,
    rows,
    engines,
    sizes,
    spec,
    compileFor,
    check,
    reps,
    attempt,
    report,
    fill,
    sweep,
    repeat = 1,
    verify = true,
  } = ctx;
  const [H, Hkv] = sizes.decodeH;
  if (!(Number.isSafeInteger(repeat) && repeat >= 1))
    throw new Error(`--decode-repeat: expected a positive integer, got ${repeat}`);
  const D = 128;
  // Inputs once per Nk (64M floats each of K and V at 128K), shared by every engine and knob set.
  const inputsFor = new Map();
  const inputsAt = (Nk) => {
    if (!inputsFor.has(Nk)) {
      const kv = Hkv * Nk * D;
      inputsFor.set(Nk, { B: 1, H, Hkv, Nq: 1, Nk, q: fill(H * D, 1), k: fill(kv, 2), v: fill(kv, 3) });
    }
    return inputsFor.get(Nk);
  };
  const expected = new Map();
  const expectedAt = (Nk) => {
    if (!expected.has(Nk)) expected.set(Nk, decodeReference(inputsAt(Nk), D));
    return expected.get(Nk);
  };
  const order = (r) => (r % 2 === 1 ? [...sweep].reverse() : sweep);
  for (let r = 0; r < repeat; r++)
    for (const engine of engines) {
      const coop = engine.startsWith('coop');
      if (r > 0 && !coop) continue;
      for (const knobs of coop ? order(r) : [{}]) {
        const what = { kind: 'decode', kernel: 'causal', engine, D };
        await attempt(rows, what, async () => {
          let artifact = compileFor(spec, D, engine, limits);
          await check(device, spec, artifact, D);
          let tuning;
          if (coop && artifact.decode) {
            const withLanes = (lanes) => compileFor(spec, D, engine, limits, { coopDecodeLanes: lanes });
            const [swept] = sweptModules(artifact, [knobs], withLanes);
            if (swept.problem) throw new Error(`decode knobs ${JSON.stringify(knobs)}: ${swept.problem}`);
            ({ tuning, artifact } = swept);
          }
          const splitKeys = artifact.decode?.splitKeys ?? 0;
          const relError = splitKeys
            ? await checkDecode(device, artifact, fill, 4, 1, D, splitKeys)
            : undefined;
          const kernel = await createKernel(device, artifact, { decode: 'auto' });
          try {
            for (const Nk of sizes.decodeNk) {
              const kv = Hkv * Nk * D;
              const inputs = inputsAt(Nk);
              let ms;
              // Correctness at the timed shape through the runtime (one run), then steady-state
              // timing through the emitted module (steady.mjs: no re-upload between launches).
              const verified =
                verify && r === 0 ? verifyDecode(await kernel.run(inputs), expectedAt(Nk)) : undefined;
              const steady = await steadyMs(device, artifact, inputs, { launches: 20, rounds: reps });
              ms = steady.ms;
              const splits = steady.decodeSplits; // undefined or 0: not in decode mode
              rows.push({
                ...what,
                N: Nk,
                repeat: r,
                ...(verified !== undefined ? { verified } : {}),
                H,
                Hkv,
                ms,
                gbps: (2 * kv * 4) / ms / 1e6,
                relError,
                splits,
                ...(tuning ? { schedule: describeTuning(tuning), tuning } : {}),
              });
              report(rows.at(-1));
            }
          } finally {
            kernel.destroy();
          }
        });
      }
    }
}

/**
 * The decode result in float64: one query row per head at position Nk - 1 (causal: every key
 * allowed), query head h on kv head h / (H / Hkv). About 1e9 multiply-adds at Nk = 128K.
 */
export function decodeReference(inputs, D) {
  const { H, Hkv, Nk, q, k, v } = inputs;
  const out = new Float64Array(H * D);
  const s = new Float64Array(Nk);
  const scale = Math.fround(1 / Math.sqrt(D));
  for (let h = 0; h < H; h++) {
    const base = Math.floor(h / (H / Hkv)) * Nk * D;
    let m = -Infinity;
    for (let j = 0; j < Nk; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[h * D + d] * k[base + j * D + d];
      s[j] = scale * dot;
      if (s[j] > m) m = s[j];
    }
    let l = 0;
    const o = out.subarray(h * D, (h + 1) * D);
    for (let j = 0; j < Nk; j++) {
      const p = Math.exp(s[j] - m);
      l += p;
      for (let d = 0; d < D; d++) o[d] += p * v[base + j * D + d];
    }
    for (let d = 0; d < D; d++) o[d] /= l;
  }
  return out;
}

/** Max abs error of the run's output over max |reference| (throws past 1e-4: a wrong result is not timed). */
function verifyDecode(res, expected) {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(res.out[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
    if (Number.isNaN(res.out[i])) err = Infinity;
  }
  const rel = err / scale;
  if (!(rel <= 1e-4))
    throw new Error(`decode at the timed shape: rel. error ${rel} vs the float64 reference`);
  return rel;
}
