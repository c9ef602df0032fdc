// Round 7 coop decode timing (issue 11): where the time goes (split pass vs merge pass) and which
// knob set reads K+V fastest, every variant side by side in one process.
//
//   npm run build && node scripts/with-gpu.mjs node bench/wgsl/round7-decode.mjs --out FILE [--quick]
//     [--variants default,mc8,l16:c4,...] [--nk 131072,32768] [--rounds 5]
//
// A variant is the coop decode module re-tuned (decode-coop-tuning.ts): tokens t<threads>
// l<lanes> c<chunk> r<rows> s<splitKeys> pf mc<mergeCols> mt<mergeThreads>, colon-separated over
// the defaults ('default' alone: the defaults). Each variant is checked first: decode forced on a
// small shape with several splits (decode.mjs's checkDecode), and its output at every timed shape
// against the float64 reference (a variant that fails is not timed). Then:
//   - inputs uploaded once per Nk and shared by every variant (the earlier sweeps re-uploaded 1 GiB
//     per knob set, the GPU idled and dropped its clocks: repeats of one setting read 545–1,425 GB/s);
//   - a warm-up of ≥ 400 ms of back-to-back launches before the first timed submit;
//   - rounds: each round times every variant once (order reversed every other round), one submit
//     of enough launches for ~30 ms each; per submit the wall time and, with timestamp-query, the
//     GPU time of each launch's compute pass (timestampWrites on the pass the emitted module
//     records), summed; the median over rounds is reported;
//   - each variant also as split pass only and merge pass only (phased(): the same launch, a pass's
//     grid switched off by a param; the merge merges the real partials its last split left), so
//     split + merge ≈ full says where the time goes.
import { writeFileSync } from 'node:fs';
import { compile } from '../../dist/src/compile.js';
import { renderedCoopDecodeTuning, retuneCoopDecode } from '../../dist/src/codegen/wgsl/decode-coop.js';
import { deviceLimits, getDevice } from '../../dist/src/runtime/webgpu.js';
import { checkDecode, decodeReference } from './decode.mjs';
import { fill, upload } from './inputs.mjs';
import { loadModule } from './steady.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const quick = args.includes('--quick');
const out = option('--out', undefined);
const D = 128;
const [H, Hkv] = quick ? [8, 2] : [32, 8];
const nks = (option('--nk', undefined)?.split(',') ?? (quick ? ['4096'] : ['131072', '32768'])).map(Number);
const rounds = Number(option('--rounds', quick ? 2 : 5));
const variantSpecs = option('--variants', 'default,mc8,mc4').split(',');
const TARGET_SUBMIT_MS = quick ? 5 : 30;
const WARM_MS = quick ? 50 : 400;
// split_on, merge_on: see phased().
const SOURCE = 'attention causal(split_on: int = 1, merge_on: int = 1) {\n  mask causal\n}\n';

const KNOB_TOKENS = {
  t: 'threads',
  l: 'lanes',
  c: 'chunk',
  r: 'rows',
  s: 'splitKeys',
  mc: 'mergeCols',
  mt: 'mergeThreads',
};

/** 'l16:c4:mc8' → knobs over the defaults. */
function parseVariant(spec, defaults) {
  const t = { ...defaults };
  if (spec === 'default') return t;
  for (const tok of spec.split(':')) {
    if (tok === 'pf') {
      t.prefetch = 1;
      continue;
    }
    const m = /^(mc|mt|t|l|c|r|s)(\d+)$/.exec(tok);
    if (!m) throw new Error(`variant "${spec}": unknown token "${tok}"`);
    t[KNOB_TOKENS[m[1]]] = Number(m[2]);
  }
  return t;
}

/**
 * The artifact with its decode passes switchable: the split grid times the int param split_on, the
 * merge grid times merge_on (SOURCE declares both, default 1, read by nothing else). One prepared
 * launch then runs both passes, or one: launch.update({ params }) keeps its scratch, so the merge
 * alone merges the partials of the launch's last split.
 */
function phased(artifact) {
  const d = artifact.decode;
  const on = { attention_split: 'split_on', attention_merge: 'merge_on' };
  const entryPoints = d.artifact.entryPoints.map((ep) =>
    on[ep.name] ? { ...ep, grid: [`(${ep.grid[0]}) * ${on[ep.name]}`, ep.grid[1], ep.grid[2]] } : ep,
  );
  return { ...artifact, decode: { ...d, artifact: { ...d.artifact, entryPoints } } };
}
const PHASES = {
  full: { split_on: 1, merge_on: 1 },
  split: { split_on: 1, merge_on: 0 },
  merge: { split_on: 0, merge_on: 1 },
};

const device = await getDevice();
const limits = deviceLimits(device);
const timestamps = device.features.has('timestamp-query');
const base = compile(SOURCE, {
  target: 'wgsl',
  file: 'causal.attn',
  headDim: D,
  limits,
  wgslEngine: 'coop',
}).artifact;
if (!base.decode) throw new Error('the coop causal kernel has no decode variant');
const defaults = renderedCoopDecodeTuning(base.decode);
console.log(
  `round7 decode: H ${H} / Hkv ${Hkv}, D ${D}, Nk ${nks.join(', ')}, ${rounds} rounds, timestamps ${timestamps ? 'yes' : 'no'}`,
);

const rows = [];
const save = () => {
  if (out)
    writeFileSync(
      out,
      JSON.stringify({ date: new Date().toISOString(), H, Hkv, D, timestamps, rows }, null, 2) + '\n',
    );
};

/** Variants that compile and pass the small-shape check, each with its three artifacts. */
const variants = [];
for (const spec of variantSpecs) {
  try {
    const tuning = parseVariant(spec, defaults);
    const full = { ...base, decode: retuneCoopDecode(base.decode, tuning) };
    const relError = await checkDecode(device, full, fill, 4, 1, D, tuning.splitKeys);
    variants.push({ spec, tuning, relError, artifact: phased(full) });
  } catch (e) {
    const error = String(e?.message ?? e).split('\n')[0];
    rows.push({ spec, error });
    console.log(`FAILED ${spec}: ${error}`);
  }
}
save();

/** A proxy encoder for the emitted module's encode(): each compute pass gets timestamp writes. */
function timedEncoder(encoder, querySet) {
  let next = 0;
  return {
    beginComputePass(descriptor = {}) {
      const i = next;
      next += 2;
      return encoder.beginComputePass({
        ...descriptor,
        timestampWrites: { querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 },
      });
    },
    get queries() {
      return next;
    },
  };
}

/** One submit of n launches: wall ms per launch and (timestamps) GPU ms per launch, passes summed. */
async function submit(launch, n) {
  const encoder = device.createCommandEncoder();
  let gpuMs;
  if (timestamps) {
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const timed = timedEncoder(encoder, querySet);
    for (let i = 0; i < n; i++) launch.encode(timed);
    encoder.resolveQuerySet(querySet, 0, timed.queries, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, 8 * timed.queries);
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wallMs = (performance.now() - t0) / n;
    await read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    let ns = 0n;
    for (let i = 0; i + 1 < timed.queries; i += 2) ns += t[i + 1] - t[i];
    gpuMs = Number(ns) / 1e6 / n;
    [querySet, resolve, read].forEach((x) => x.destroy());
    return { wallMs, gpuMs };
  }
  for (let i = 0; i < n; i++) launch.encode(encoder);
  const t0 = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return { wallMs: (performance.now() - t0) / n, gpuMs };
}

/** out of the last launch, read back. */
async function readOut(buffer, floats) {
  const read = device.createBuffer({
    size: 4 * floats,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, read, 0, 4 * floats);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const x = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  read.destroy();
  return x;
}

function relErrorVs(got, expected) {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return err / scale;
}

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
};

/**
 * The adapter's read ceiling on the same buffers: a plain WGSL kernel that streams K then V as
 * vec4 (four independent loads in flight per invocation, grid-stride) into per-invocation sums.
 * What a decode could at best read through Dawn/Vulkan here, as the matmul is prefill's ceiling.
 */
const READ_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = arrayLength(&src);
  let stride = nwg.x * 256u;
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  var c = vec4<f32>(0.0);
  var d = vec4<f32>(0.0);
  var i = gid.x;
  for (; i + 3u * stride < n; i += 4u * stride) {
    a += src[i];
    b += src[i + stride];
    c += src[i + 2u * stride];
    d += src[i + 3u * stride];
  }
  for (; i < n; i += stride) { a += src[i]; }
  dst[gid.x] = a + b + c + d;
}`;

function readCeiling(buffers, workgroups) {
  const module = device.createShaderModule({ code: READ_WGSL });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const dst = device.createBuffer({ size: workgroups * 256 * 16, usage: GPUBufferUsage.STORAGE });
  const groups = buffers.map((src) =>
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
      ],
    }),
  );
  return {
    encode(encoder) {
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      for (const g of groups) {
        pass.setBindGroup(0, g);
        pass.dispatchWorkgroups(workgroups);
      }
      pass.end();
    },
    destroy: () => dst.destroy(),
  };
}

const started = performance.now();
for (const Nk of nks) {
  const kv = Hkv * Nk * D;
  const inputs = { B: 1, H, Hkv, Nq: 1, Nk, q: fill(H * D, 1), k: fill(kv, 2), v: fill(kv, 3) };
  const expected = decodeReference(inputs, D);
  const buffers = {
    q: upload(device, inputs.q),
    k: upload(device, inputs.k),
    v: upload(device, inputs.v),
    out: upload(device, new Float32Array(H * D)),
    lse: upload(device, new Float32Array(H)),
  };
  const bytes = 2 * kv * 4;
  const args = { sizes: { B: 1, H, Hkv, Nq: 1, Nk }, ...buffers };
  await device.queue.onSubmittedWorkDone();
  // Every variant's launch, prepared once and verified at this shape.
  const entries = [];
  for (const v of variants) {
    try {
      const kernel = await (await loadModule(v.artifact)).createKernel(device);
      const launch = kernel.prepare(args);
      await submit(launch, 1);
      const verified = relErrorVs(await readOut(buffers.out, H * D), expected);
      if (!(verified <= 1e-4)) throw new Error(`rel. error ${verified} vs the float64 reference at Nk ${Nk}`);
      if (!(launch.decodeSplits > 1)) throw new Error(`not in decode mode at Nk ${Nk}`);
      entries.push({ v, kernel, launch, verified, samples: { full: [], split: [], merge: [] } });
    } catch (e) {
      const error = String(e?.message ?? e).split('\n')[0];
      rows.push({ spec: v.spec, N: Nk, error });
      console.log(`FAILED ${v.spec} Nk=${Nk}: ${error}`);
    }
  }
  if (entries.length === 0) continue;
  // Warm-up: the default's full launch back to back until the clocks are up.
  const first = entries[0].launch;
  const one = (await submit(first, 4)).wallMs;
  const perSubmit = Math.max(4, Math.round(TARGET_SUBMIT_MS / Math.max(one, 0.01)));
  for (const t0 = performance.now(); performance.now() - t0 < WARM_MS;) await submit(first, perSubmit);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...entries].reverse() : entries;
    for (const e of order)
      for (const part of ['full', 'split', 'merge']) {
        const ms = e.samples.full.length ? median(e.samples.full.map((s) => s.wallMs)) : one;
        // After a merge-only submit the next full one starts from the same partials: no difference.
        const n = Math.min(1000, Math.max(4, Math.round(TARGET_SUBMIT_MS / Math.max(ms, 0.005))));
        e.launch.update({ params: PHASES[part] });
        e.samples[part].push(await submit(e.launch, n));
      }
  }
  // The read ceiling at two grid sizes (1 and 8 waves of 8 workgroups per SM on 132 SMs).
  for (const workgroups of [1056, 8448]) {
    try {
      const copy = readCeiling([buffers.k, buffers.v], workgroups);
      const one = await submit(copy, 2);
      const n = Math.max(4, Math.round(TARGET_SUBMIT_MS / Math.max(one.wallMs, 0.005)));
      const samples = [];
      for (let r = 0; r < rounds; r++) samples.push(await submit(copy, n));
      copy.destroy();
      const ms = median(samples.map((x) => (timestamps ? x.gpuMs : x.wallMs)));
      rows.push({
        spec: `read-ceiling-${workgroups}`,
        N: Nk,
        ms,
        gbps: bytes / ms / 1e6,
        wallMs: median(samples.map((x) => x.wallMs)),
        samples,
      });
      console.log(
        `read ceiling ${workgroups} workgroups Nk=${Nk}: ${ms.toFixed(4)} ms ${(bytes / ms / 1e6).toFixed(0)} GB/s`,
      );
    } catch (e) {
      rows.push({ spec: `read-ceiling-${workgroups}`, N: Nk, error: String(e?.message ?? e).split('\n')[0] });
    }
  }
  for (const e of entries) {
    const stat = (part, key) => median(e.samples[part].map((s) => s[key]));
    const ms = stat('full', timestamps ? 'gpuMs' : 'wallMs');
    rows.push({
      spec: e.v.spec,
      tuning: e.v.tuning,
      N: Nk,
      H,
      Hkv,
      splits: e.launch.decodeSplits,
      relError: e.v.relError,
      verified: e.verified,
      ms,
      gbps: bytes / ms / 1e6,
      wallMs: stat('full', 'wallMs'),
      gpuMs: stat('full', 'gpuMs'),
      splitMs: stat('split', timestamps ? 'gpuMs' : 'wallMs'),
      mergeMs: stat('merge', timestamps ? 'gpuMs' : 'wallMs'),
      spreadPct:
        (100 *
          (Math.max(...e.samples.full.map((s) => s.wallMs)) -
            Math.min(...e.samples.full.map((s) => s.wallMs)))) /
        stat('full', 'wallMs'),
      samples: e.samples,
    });
    const x = rows.at(-1);
    console.log(
      `decode ${x.spec.padEnd(22)} Nk=${String(Nk).padEnd(7)} ${x.ms.toFixed(4)} ms ${x.gbps.toFixed(0).padStart(5)} GB/s` +
        `  split ${x.splitMs.toFixed(4)} merge ${x.mergeMs.toFixed(4)} (wall ${x.wallMs.toFixed(4)}, spread ${x.spreadPct.toFixed(0)}%)  ${x.splits} splits`,
    );
    e.launch.destroy();
    e.kernel.destroy();
  }
  save();
  Object.values(buffers).forEach((b) => b.destroy());
}
console.log(`round7 decode done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
save();
process.exit(rows.some((r) => r.error) ? 1 : 0);
