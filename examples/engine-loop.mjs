// An engine-style loop around generated kernel modules: 4 layers of attention with different masks
// and params, GQA (4 query heads over 2 kv heads), tensors kept on the GPU between layers (layer
// l's output is layer l+1's queries), and one submit per step. The kernels come from
// `attnc compile --emit js --shared-runtime`, generated here into examples/build/engine/ (three
// kernel modules and the one attnc-runtime.js they import); at run time the loop uses only them and
// the `webgpu` package (Dawn). attnc's dense reference checks every layer at the end.
//
//   npm run build && node scripts/with-gpu.mjs node examples/engine-loop.mjs [--steps N] [--tokens N]
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { create } from 'webgpu';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const values = flags();
const steps = positiveInt('steps', values.steps, 5);
const T = positiveInt('tokens', values.tokens, 256);
const [B, H, Hkv, D] = [1, 4, 2, 32];
const sizes = { B, H, Hkv, Nq: T, Nk: T };

// 1. Generate the modules (an engine would do this at build time and commit or bundle them).
const outDir = join(root, 'examples/build/engine');
for (const name of ['sliding_window', 'softcap', 'document']) {
  const args = ['compile', `stdlib/${name}.attn`, '--target', 'wgsl', '--emit', 'js', '--shared-runtime'];
  args.push('--dim', String(D));
  execFileSync(process.execPath, [join(root, 'dist/src/cli/main.js'), ...args, '--out', outDir], {
    cwd: root,
  });
}
const load = (name) => import(pathToFileURL(join(outDir, `${name}.js`)).href);
const modules = {
  sliding_window: await load('sliding_window'),
  softcap: await load('softcap'),
  document: await load('document'),
};

// 2. A device straight from Dawn (`gpu` stays referenced: Dawn tears down with it).
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter: run through `node scripts/with-gpu.mjs`');
const device = await adapter.requestDevice();

const rand = mulberry32(1);
const normal = (n) =>
  Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(6.283185 * rand()));
const doc = Int32Array.from({ length: T }, (_, i) => Math.floor((i * 5) / T)); // 5 packed documents
const layers = [
  { kernel: 'sliding_window', params: { window: 16 } },
  { kernel: 'softcap', params: { cap: 20 } },
  { kernel: 'document', tensors: { doc } },
  { kernel: 'sliding_window', params: { window: 64 } },
];

// 3. GPU residency: inputs uploaded once; each layer's out/lse buffers stay on the GPU.
const STORAGE = 0x80,
  COPY_SRC = 0x4,
  COPY_DST = 0x8,
  MAP_READ = 0x1;
const gpuBuffer = (data) => {
  const buf = device.createBuffer({
    size: Math.max(16, data.byteLength),
    usage: STORAGE | COPY_SRC | COPY_DST,
  });
  device.queue.writeBuffer(buf, 0, data);
  return buf;
};
const x0 = normal(B * H * T * D);
const x0Buf = gpuBuffer(x0);
const kernels = {};
for (const [name, mod] of Object.entries(modules)) kernels[name] = await mod.createKernel(device);
let q = x0Buf;
for (const layer of layers) {
  layer.k = normal(B * Hkv * T * D);
  layer.v = normal(B * Hkv * T * D);
  layer.q = q;
  const bufs = {
    q,
    k: gpuBuffer(layer.k),
    v: gpuBuffer(layer.v),
    out: gpuBuffer(new Float32Array(B * H * T * D)),
    lse: gpuBuffer(new Float32Array(B * H * T)),
  };
  for (const [name, data] of Object.entries(layer.tensors ?? {})) bufs[name] = gpuBuffer(data);
  layer.bufs = bufs;
  // Bound once (uniforms, summary scratch, bind group); encoded every step, allocating nothing. A
  // launch whose sizes change per step (decode) calls layer.launch.update({ sizes: { Nk } }) between
  // submits; buffers may also be { buffer, offset, size } ranges of one large allocation.
  layer.launch = kernels[layer.kernel].prepare({
    ...bufs,
    sizes,
    ...(layer.params ? { params: layer.params } : {}),
  });
  q = bufs.out;
}

// 4. The loop: all layers in one command buffer, one submit per step.
const times = [];
for (let step = 0; step < steps; step++) {
  const t0 = performance.now();
  const encoder = device.createCommandEncoder({ label: `step ${step}` });
  for (const layer of layers) layer.launch.encode(encoder);
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  times.push(performance.now() - t0);
  console.log(`step ${step}: ${times.at(-1).toFixed(1)} ms (${layers.length} layers, 1 submit)`);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(
  `median step ${sorted[sorted.length >> 1].toFixed(1)} ms; B=${B} H=${H} Hkv=${Hkv} T=${T} D=${D}`,
);

// 5. Check: each layer's output against the dense reference, on the queries it actually read.
const { checkSource } = await import(pathToFileURL(join(root, 'dist/src/index.js')).href);
const { referenceAttention, declPredicates, compareArrays } = await import(
  pathToFileURL(join(root, 'dist/src/runtime/index.js')).href
);
let ok = true;
let input = x0;
for (const [i, layer] of layers.entries()) {
  const mod = modules[layer.kernel];
  const [out, lse] = [await read(layer.bufs.out), await read(layer.bufs.lse)];
  const { decl } = checkSource(mod.source);
  const params = { ...Object.fromEntries(decl.defaults), ...layer.params };
  const tensors = Object.fromEntries(
    Object.entries(layer.tensors ?? {}).map(([n, d]) => [n, { data: d, shape: [T] }]),
  );
  const pred = declPredicates(decl.decl, { params, tensors, sizes: { ...sizes, D } });
  const ref = referenceAttention(
    { q: input, k: layer.k, v: layer.v, B, Hq: H, Hkv, Nq: T, Nk: T, D, Dv: D },
    pred,
  );
  const [eo, el] = [compareArrays(out, ref.out, ref.outScale), compareArrays(lse, ref.lse, 1)];
  const good = eo.nanCount + el.nanCount === 0 && eo.relError <= 1e-5 && el.relError <= 1e-5;
  ok &&= good;
  const args = layer.params
    ? Object.entries(layer.params).map(([k, v]) => `${k}=${v}`)
    : Object.keys(layer.tensors);
  const what = `${layer.kernel} ${args.join(' ')}`;
  console.log(
    `layer ${i} (${what}): ${good ? 'agrees with' : 'DISAGREES with'} the reference: out ${eo.relError.toExponential(2)}, lse ${el.relError.toExponential(2)}`,
  );
  input = out;
}
process.exit(ok ? 0 : 1);

async function read(src) {
  const dst = device.createBuffer({ size: src.size, usage: MAP_READ | COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(src, 0, dst, 0, src.size);
  device.queue.submit([encoder.finish()]);
  await dst.mapAsync(1);
  const data = new Float32Array(dst.getMappedRange().slice(0));
  dst.destroy();
  return data;
}

/** --steps and --tokens; an unknown or malformed flag is a one-line usage message and exit 2. */
function flags() {
  try {
    const options = { steps: { type: 'string' }, tokens: { type: 'string' } };
    return parseArgs({ options }).values;
  } catch (e) {
    console.error(`engine-loop: ${e.message.split('\n')[0]} (usage: --steps N --tokens N)`);
    process.exit(2);
  }
}

/** A flag's value as a positive integer, or a usage message and exit 2 (before any GPU work). */
function positiveInt(name, text, fallback) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (/^\d+$/.test(text) && Number.isSafeInteger(n) && n > 0) return n;
  console.error(`engine-loop: --${name} expects a positive integer, got \`${text}\``);
  process.exit(2);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
