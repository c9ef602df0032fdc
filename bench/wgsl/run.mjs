// WGSL benchmark: the row engine and the coop engine on one adapter, with a register-tiled
// matmul as that adapter's ceiling, all in one process. Correctness first: every kernel is
// checked against the dense float64 reference on a small shape before anything is timed.
//
//   npm run build && node scripts/with-gpu.mjs node bench/wgsl/run.mjs [--quick] [--out file.json]
//     [--engines row,coop,coop:64x16x64] [--reps 3] [--only causal,full] [--no-decode] [--no-prefill]
//     [--decode-threads 128] [--decode-lanes 32] [--decode-chunk 4] [--decode-rows 4] [--decode-split 512]
//
// The --decode-* options set knobs of the coop engine's decode module (comma lists are swept:
// every combination is checked against the reference, then timed); see bench/wgsl/decode.mjs.
//
// Uses only dist/, node_modules/webgpu (through dist's device) and node built-ins, so it runs on a
// GPU machine that has Node and the webgpu package and nothing else. Attention times are steady
// state (bench/wgsl/steady.mjs: inputs uploaded once, launches back to back in one submit, wall
// time per launch): runtime run() re-uploads every input per call and the idle GPU drops its clocks.
import { writeFileSync } from 'node:fs';
import { compile } from '../../dist/src/compile.js';
import { COOP_FLAG_KNOBS } from '../../dist/src/codegen/wgsl/coop-geometry.js';
import { compareArrays } from '../../dist/src/runtime/compare.js';
import { referenceAttention } from '../../dist/src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../../dist/src/runtime/webgpu.js';
import { decodeSweep, runDecode } from './decode.mjs';
import { fill } from './inputs.mjs';
import { runMatmul } from './matmul.mjs';
import { steadyMs } from './steady.mjs';
import { kernels } from './kernels.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const quick = flag('--quick');
const out = option('--out', undefined);
const engines = option('--engines', 'row,coop').split(',');
const reps = Number(option('--reps', quick ? 2 : 3));

const list = (name) => option(name, undefined)?.split(',').map(Number);
const sizes0 = quick
  ? { prefillN: [256, 512], dims: [64, 128], heads: 2, decodeNk: [4096], decodeH: [8, 2], matmul: 256 }
  : {
      prefillN: [4096, 16384],
      dims: [64, 128],
      heads: 8,
      decodeNk: [32768, 131072],
      decodeH: [32, 8],
      matmul: 4096,
    };
// --n, --dims, --heads, --decode-nk and --decode-h narrow or change the shapes.
const sizes = {
  ...sizes0,
  prefillN: list('--n') ?? sizes0.prefillN,
  dims: list('--dims') ?? sizes0.dims,
  heads: Number(option('--heads', sizes0.heads)),
  decodeNk: list('--decode-nk') ?? sizes0.decodeNk,
  decodeH: list('--decode-h') ?? sizes0.decodeH,
};

/**
 * An engine name with optional knobs: 'row', 'coop' (the schedule's choice for the device) or
 * 'coop:64x16x128' (blockQ x blockK x threads; a trailing 'x0' turns subgroup reductions off),
 * followed by ':l8' (coopLanes), ':sg0' (no subgroups) or a tag of COOP_FLAG_KNOBS (':kv2' for
 * coopSplitKv, ':pf' coopPrefetch, ':qg' coopQGlobal, ':db' coopDoubleKv, ':qd' coopQDescending,
 * ':fma' coopFma, ':ur' coopUnroll, ':sp' coopChunkSpan, ':ps' coopPShuffle, ':hi'
 * coopHeadsInner, ':sh' coopSgHoist), e.g. 'coop:64x16x256:l8:kv2'.
 */
const knobOfTag = new Map(Object.entries(COOP_FLAG_KNOBS).map(([knob, tag]) => [tag, knob]));

function engineSchedule(engine) {
  const [name, ...knobs] = engine.split(':');
  const schedule = {};
  for (const knob of knobs) {
    if (/^\d+x\d+x\d+(x0)?$/.test(knob)) {
      const [blockQ, blockK, threads, sg] = knob.split('x').map(Number);
      Object.assign(schedule, { blockQ, blockK, threads }, sg === 0 ? { subgroups: false } : {});
    } else if (/^l\d+$/.test(knob)) schedule.coopLanes = Number(knob.slice(1));
    else if (knobOfTag.has(knob)) schedule[knobOfTag.get(knob)] = true;
    else if (knob === 'sg0') schedule.subgroups = false;
    else throw new Error(`engine "${engine}": unknown knob "${knob}"`);
  }
  return { name, schedule: Object.keys(schedule).length > 0 ? schedule : undefined };
}

/** `extra`: more schedule overrides (the decode sweep's Schedule.coopDecodeLanes). */
function compileFor(spec, D, engine, limits, extra) {
  const { name, schedule: pinned } = engineSchedule(engine);
  const options = { target: 'wgsl', file: `${spec.name}.attn`, headDim: D, limits, wgslEngine: name };
  const schedule = pinned || extra ? { ...pinned, ...extra } : undefined;
  return compile(spec.source, schedule ? { ...options, schedule } : options).artifact;
}

/** Correctness on a small shape: rel. error of out and lse against the float64 reference. */
async function check(device, spec, artifact, D, t0 = performance.now()) {
  const shape = { B: 1, H: 2, Hkv: 1, Nq: 67, Nk: 67 };
  const tensors = spec.tensors(shape.Nk);
  const params = spec.params(shape.Nk);
  const inputs = {
    ...shape,
    q: fill(2 * 67 * D, 1),
    k: fill(67 * D, 2),
    v: fill(67 * D, 3),
    tensors,
    params,
  };
  const k = await createKernel(device, artifact, { decode: 'never' });
  const readyMs = performance.now() - t0;
  try {
    const res = await k.run(inputs);
    const ref = referenceAttention(
      { ...inputs, Hq: shape.H, D, Dv: D },
      { mask: spec.mask(tensors, params) },
    );
    const o = compareArrays(res.out, ref.out, ref.outScale);
    const l = compareArrays(res.lse, ref.lse, 1);
    const err = Math.max(o.relError, l.relError);
    if (!(err <= 1e-4) || o.nanCount > 0)
      throw new Error(`${artifact.name} D=${D}: rel. error ${err} vs reference`);
    return { relError: err, readyMs };
  } finally {
    k.destroy();
  }
}

/** Steady-state ms per launch (steady.mjs): inputs uploaded once, launches back to back, best of `reps` rounds. */
async function best(artifact, inputs) {
  return (await steadyMs(device, artifact, inputs, { launches: 3, rounds: reps })).ms;
}

const only = option('--only', undefined)?.split(',');
const allRows = [];

/** q, k and v of a prefill shape, filled once and shared by every kernel and engine. */
const qkvCache = new Map();
function qkvFor(N, D, H) {
  const key = `${N}/${D}/${H}`;
  if (!qkvCache.has(key)) {
    if (qkvCache.size >= 2) qkvCache.clear(); // 16K x 8 heads x 128 is 64 MB a tensor
    const n = H * N * D;
    qkvCache.set(key, { B: 1, H, Hkv: H, Nq: N, Nk: N, q: fill(n, 1), k: fill(n, 2), v: fill(n, 3) });
  }
  return qkvCache.get(key);
}

async function prefill(device, limits, rows) {
  for (const spec of kernels.filter((k) => !only || only.includes(k.name))) {
    for (const D of sizes.dims) {
      for (const engine of engines) {
        await attempt(rows, { kind: 'prefill', kernel: spec.name, engine, D }, async () => {
          // Compile to pipelines ready (the first pipelines of this code in the process; the
          // driver's disk cache starts empty on a fresh machine): the issue asks for 150 ms.
          const t0 = performance.now();
          const artifact = compileFor(spec, D, engine, limits);
          const err = await check(device, spec, artifact, D, t0);
          const readyMs = err.readyMs;
          {
            for (const N of sizes.prefillN) {
              const H = sizes.heads;
              const tensors = spec.tensors(N);
              const params = spec.params(N);
              const inputs = { ...qkvFor(N, D, H), tensors, params };
              const ms = await best(artifact, inputs);
              const flops = 4 * H * D * spec.pairs(N, tensors, params);
              const s = artifact.schedule;
              rows.push({
                kind: 'prefill',
                kernel: spec.name,
                engine,
                N,
                D,
                H,
                ms,
                tflops: flops / ms / 1e9,
                relError: err.relError,
                readyMs,
                schedule:
                  `${s.blockQ}x${s.blockK}/${s.threads}${s.subgroups ? ' sg' : ''}` +
                  `${s.coopLanes ? ` l${s.coopLanes}` : ''}` +
                  Object.entries(COOP_FLAG_KNOBS)
                    .map(([knob, tag]) => (s[knob] ? ` ${tag}` : ''))
                    .join(''),
              });
              report(rows.at(-1));
            }
          }
        });
      }
    }
  }
}

/**
 * Runs one kernel's check and timings; a failure (wrong result, a pipeline the device refuses) is
 * recorded as a row with `error` and printed, and the benchmark goes on with the next kernel.
 */
async function attempt(rows, what, body) {
  try {
    await body();
  } catch (e) {
    const error = String(e?.message ?? e).split('\n')[0];
    rows.push({ ...what, error });
    console.log(`FAILED ${what.kind} ${what.kernel} ${what.engine} D=${what.D}: ${error}`);
  }
}

/** Writes the rows so far to --out (after every row: a run cut short by a time limit keeps them). */
function save() {
  if (!out) return;
  const result = { date: new Date().toISOString(), quick, timing, limits, rows: allRows };
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
}

function report(r) {
  save();
  const rate = r.tflops !== undefined ? `${r.tflops.toFixed(3)} TFLOP/s` : `${r.gbps.toFixed(1)} GB/s`;
  const shape = r.kind === 'decode' ? `Nk=${r.N} H=${r.H}/${r.Hkv}` : `N=${r.N}`;
  console.log(
    `${r.kind.padEnd(8)} ${r.kernel.padEnd(15)} ${String(r.engine).padEnd(6)} D=${String(r.D).padEnd(4)}` +
      ` ${shape.padEnd(20)} ${r.ms.toFixed(3).padStart(10)} ms  ${rate}${r.schedule ? `  [${r.schedule}]` : ''}` +
      (r.readyMs !== undefined ? `  ready ${r.readyMs.toFixed(0)} ms` : '') +
      (r.kind === 'decode' ? (r.splits ? `  ${r.splits} splits` : '  (not in decode mode)') : ''),
  );
}

const device = await getDevice();
const limits = deviceLimits(device);
// Attention kernels: wall time per launch of launches back to back (steady.mjs); the matmul: timestamps.
const timing = 'steady: wall per launch, back to back (matmul: timestamp-query where present)';
console.log(
  `adapter limits: ${limits.maxWorkgroupStorageBytes} B workgroup memory, ${limits.maxInvocations} invocations,` +
    ` subgroups ${limits.subgroups ? 'yes' : 'no'}, f16 ${limits.shaderF16 ? 'yes' : 'no'}; timing: ${timing}`,
);
const rows = allRows;
const started = Date.now();
const matmul = await runMatmul(device, sizes.matmul, reps);
rows.push({
  kind: 'matmul',
  kernel: 'matmul 128x128/8x8',
  engine: '-',
  N: sizes.matmul,
  D: 0,
  ms: matmul.ms,
  tflops: matmul.tflops,
  relError: matmul.relError,
});
report(rows.at(-1));
if (!flag('--no-prefill')) await prefill(device, limits, rows);
if (!flag('--no-decode')) {
  const spec = kernels.find((k) => k.name === 'causal');
  const sweep = decodeSweep(option);
  const ctx = {
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
    repeat: Number(option('--decode-repeat', 1)),
    verify: option('--decode-verify', '1') !== '0',
  };
  await runDecode(ctx);
}
const failed = rows.filter((r) => r.error !== undefined).length;
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s${failed ? `, ${failed} FAILED` : ''}`);
if (out) {
  save();
  console.log(`wrote ${out}`);
}
process.exit(failed ? 1 : 0);
