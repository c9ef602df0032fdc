// WGSL decode over quantized K/V caches (issue #10 item 6's WGSL row): B = 4, H = 32, Hkv = 8,
// D = 128, one query, for f16 (or f32, without shader-f16) caches and int8 / fp8 / int4 / int2 (KIVI-style) formats. Correctness
// first, in the same process: each format and code-load variant at Nk = 600 against the reference
// over the values its cache holds; then the steady-state timing (inputs uploaded once, back-to-back
// launches of the emitted module's prepared launch) at each requested Nk on random code words
// (finite scales), every variant of a format on the same buffers, with the bytes the kernel reads
// (every cache tensor, q and out) and GB/s. Usage (after npm run build):
//   node bench/quant-decode-wgsl.mjs [Nk=32768[,131072…]] [repeats=10]
// CODES (default off,wide,wide16) picks the coop decode's code loads (Schedule.coopDecodeCodes:
// off = 'words', a 4-byte word per vec4 of channels (the default is 'wide16' since round 10); wide = a lane's run of channels in one load per 16
// bytes; wide16 = fewer lanes where a run would be under 16 bytes); a variant whose module equals
// an earlier one's is not timed twice. OUT set: the rows as JSON in $OUT/quant-decode-wgsl.json.
// On the H200 machine, Dawn finds the GPU through Vulkan; the device's storage-buffer binding
// limit bounds Nk (an f16 cache at Nk = 128K is 1 GiB per tensor).
import { writeFileSync } from 'node:fs';
import { compile } from '../dist/src/compile.js';
import { cacheBytes, cacheLayout } from '../dist/src/quant/layout.js';
import { compareArrays } from '../dist/src/runtime/compare.js';
import { rng } from '../dist/src/runtime/inputs.js';
import { referenceAttention } from '../dist/src/runtime/reference.js';
import { storedRun } from '../dist/src/runtime/stored-run.js';
import { createKernel, deviceLimits, getDevice } from '../dist/src/runtime/webgpu.js';
import { fill, upload } from './wgsl/inputs.mjs';
import { loadModule } from './wgsl/steady.mjs';

const [nkArg = '32768', repeatsArg = '10'] = process.argv.slice(2);
const Nks = nkArg.split(',').map(Number);
const repeats = Number(repeatsArg);
const variants = (process.env.CODES ?? 'off,wide,wide16').split(',');
const B = 4,
  H = 32,
  Hkv = 8,
  D = 128;
const device = await getDevice();
// The plain cache (and q, out) in f16 where the adapter has shader-f16, else f32 (the H200's Dawn
// adapter has no shader-f16); quantized caches need neither.
const dtype = process.env.DTYPE ?? (device.features.has('shader-f16') ? 'f16' : 'f32');
const elemBytes = dtype === 'f16' ? 2 : 4;
/** An input of `len` values from `gen` in the plain dtype (f16 bits or f32). */
const plainArray = (len, gen) =>
  dtype === 'f16'
    ? Uint16Array.from({ length: len }, () => toHalf(gen()))
    : Float32Array.from({ length: len }, gen);
/** The values a plain input holds, as f32 (for the reference). */
const plainValues = (a) => (dtype === 'f16' ? Float32Array.from(a, fromHalf) : a);
const formats = {
  [dtype]: '',
  int8: 'store kv int8 scale f16 per token',
  e4m3: 'store kv e4m3 scale f16 per token',
  int4: 'store kv int4 scale f16 per token group 32 zero f16',
  'int2 (KIVI)':
    'store k int2 scale f16 per channel group 32 zero f16 recent 128 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 128 f16',
};

console.log(`adapter limits: maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}`);
/** Each format's distinct variants: { variant, artifact, kernel, ok, rel } (checked at Nk = 600). */
const built = [];
for (const [name, store] of Object.entries(formats)) {
  const source = `attention q_${name.replace(/\W.*/, '')}() {\n  ${store}\n}`;
  const seen = new Set();
  for (const variant of store ? variants : ['off']) {
    const { artifact, kernel } = compile(source, {
      target: 'wgsl',
      headDim: D,
      dtype,
      limits: deviceLimits(device),
      // The coop engine (a GPU adapter's default; forced so that lavapipe runs the same modules).
      wgslEngine: 'coop',
      schedule: { coopDecodeCodes: variant === 'off' ? 'words' : variant },
    });
    // Modules equal but for the schedule hash in their header are timed once.
    const code = artifact.decode?.artifact.code.replace(/schedule [0-9a-f]+/, '');
    if (seen.has(code)) continue;
    seen.add(code);
    const lanes = artifact.decode?.coop?.tuning.lanes;
    const label = `${name.padEnd(12)} ${variant.padEnd(6)}`;
    const gpu = await createKernel(device, artifact, { decode: 'always' });
    try {
      const verdict = await checkSmall(gpu, kernel);
      console.log(
        `${label} check ${verdict.ok ? 'ok' : 'FAILED'} (rel ${verdict.rel.toExponential(2)}), ${lanes} lanes`,
      );
      built.push({ name, variant, lanes, artifact, kernel, ...verdict });
    } catch (e) {
      console.log(`${label} error: ${e.message}`);
    } finally {
      gpu.destroy();
    }
  }
}

const rows = [];
for (const n of Nks) {
  console.log(`## Nk ${n}`);
  for (const name of Object.keys(formats)) {
    const mine = built.filter((b) => b.name === name && b.ok);
    if (mine.length === 0) continue;
    let inputs;
    try {
      inputs = makeInputs(mine[0].kernel, n);
    } catch (e) {
      console.log(`${name.padEnd(12)} error: ${e.message}`);
      continue;
    }
    for (const b of mine) {
      try {
        const t = await time(b.artifact, inputs, n);
        rows.push({
          name,
          variant: b.variant,
          lanes: Number(b.lanes),
          Nk: n,
          ...t,
          bytes: inputs.bytes,
          rel: b.rel,
        });
        console.log(
          `${name.padEnd(12)} ${b.variant.padEnd(6)} ${t.ms.toFixed(3)} ms  ${(inputs.bytes / 2 ** 20).toFixed(1)} MiB  ` +
            `${(inputs.bytes / t.ms / 1e6).toFixed(1)} GB/s  (${b.artifact.schedule.wgslEngine ?? 'row'} engine, ${b.lanes} lanes, ${t.splits} splits)`,
        );
      } catch (e) {
        console.log(`${name.padEnd(12)} ${b.variant.padEnd(6)} error: ${e.message}`);
      }
    }
    for (const buf of Object.values(inputs.buffers)) buf.destroy();
  }
}

// Summary: ms per variant, and each variant's speed-up over `off` and its ratio to the plain cache.
console.log(
  '\n| format | Nk | ' +
    variants.map((v) => `${v} ms`).join(' | ') +
    ' | best vs off | best vs ' +
    dtype +
    ' |',
);
console.log('| --- | ---: |' + variants.map(() => ' ---: |').join('') + ' ---: | ---: |');
for (const n of Nks) {
  const plain = rows.find((r) => r.name === dtype && r.Nk === n);
  for (const name of Object.keys(formats)) {
    const mine = rows.filter((r) => r.name === name && r.Nk === n);
    if (mine.length === 0) continue;
    const off = mine.find((r) => r.variant === 'off');
    const best = mine.reduce((a, r) => (r.ms < a.ms ? r : a));
    const cell = (v) => {
      const r = mine.find((x) => x.variant === v);
      return r ? `${r.ms.toFixed(3)} (${r.lanes}l)` : '=';
    };
    const vsOff = off ? `${(off.ms / best.ms).toFixed(2)}x (${best.variant})` : '';
    const vsPlain = plain ? `${(plain.ms / best.ms).toFixed(2)}x` : '';
    console.log(`| ${name} | ${n} | ${variants.map(cell).join(' | ')} | ${vsOff} | ${vsPlain} |`);
  }
}
if (process.env.OUT)
  writeFileSync(`${process.env.OUT}/quant-decode-wgsl.json`, JSON.stringify(rows, null, 1));

/** f16 bits of x, truncated (any f16 value will do: the reference reads the same bits back). */
function toHalf(x) {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return sign;
  return sign | (e << 10) | ((u >>> 13) & 0x3ff);
}
function fromHalf(b) {
  const e = (b >> 10) & 31,
    m = b & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return b & 0x8000 ? -v : v;
}

async function checkSmall(gpu, kernel) {
  const n = 600;
  const rand = rng(1);
  const qBits = plainArray(B * H * D, () => rand() * 2 - 1);
  const q = plainValues(qBits);
  const stored = storedRun(kernel.formats, { B, Hkv, Nk: n, D, Dv: D }, rand);
  const plain = (len) => plainArray(len, () => rand() * 2 - 1);
  const kBits = stored.values.k ? plainArray(0, rand) : plain(B * Hkv * n * D);
  const vBits = stored.values.v ? plainArray(0, rand) : plain(B * Hkv * n * D);
  const k = stored.values.k ?? plainValues(kBits);
  const v = stored.values.v ?? plainValues(vBits);
  const res = await gpu.run({ q: qBits, k: kBits, v: vBits, B, H, Hkv, Nq: 1, Nk: n, caches: stored.caches });
  const ref = referenceAttention({ q, k, v, B, Hq: H, Hkv, Nq: 1, Nk: n, D, Dv: D }, {});
  const agree = compareArrays(res.out, ref.out, ref.outScale);
  return { ok: agree.relError < 5e-3 && agree.nanCount === 0, rel: agree.relError };
}

/** u32 words from a fast LCG (Uint32Array.from with a closure takes minutes for a 128K cache). */
function randomWords(len, seed) {
  const a = new Uint32Array(len);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < len; i++) a[i] = x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  return a;
}

/**
 * The inputs of a decode at Nk = n, uploaded once for every variant of a format: the plain cache
 * as random finite values, a quantized one as random code words with finite scales.
 */
function makeInputs(kernel, n) {
  const sizes = { B, Hkv, Nk: n, D };
  let bytes = 2 * B * H * D * elemBytes; // q and out
  const buffers = {};
  let seed = 3;
  for (const which of ['k', 'v']) {
    const f = kernel.formats[which];
    if (f.kind !== 'quant') {
      const words = (B * Hkv * n * D * elemBytes) / 4;
      if (4 * words > device.limits.maxStorageBufferBindingSize)
        throw new Error(
          `the ${dtype} ${which} cache needs ${4 * words} bytes; the device binds at most ${device.limits.maxStorageBufferBindingSize}`,
        );
      // f32 values in [2^-6, 2^-5) (any finite bits will do; f16 pairs likewise finite).
      const w = randomWords(words, seed++).map((x) =>
        dtype === 'f16' ? 0x24002400 | (x & 0x03ff03ff) : 0x3c800000 | (x & 0x7fffff),
      );
      buffers[which] = upload(device, w);
      bytes += w.byteLength;
      continue;
    }
    for (const t of cacheLayout(f.format, sizes)) {
      const len = t.shape.reduce((a, b) => a * b, 1);
      const name = t.name === 'codes' ? which : `${which}_${t.name}`;
      const data =
        t.dtype === 'u32'
          ? randomWords(len, seed++)
          : t.dtype === 'f32'
            ? new Float32Array(len).fill(1 / 64)
            : new Uint16Array(len + (len % 2)).fill(t.dtype === 'f16' ? 0x2400 : 0x3c80);
      buffers[name] = upload(device, data);
    }
    bytes += cacheBytes(f.format, sizes);
  }
  buffers.q = upload(device, new Float32Array(fill(B * H * D, 5)));
  buffers.out = upload(device, new Float32Array(B * H * D));
  buffers.lse = upload(device, new Float32Array(B * H));
  return { buffers, bytes };
}

/**
 * Steady-state ms per launch at Nk = n, the way an engine runs decode (bench/wgsl/steady.mjs's
 * reasoning: run() uploads every input per call, the GPU idles between kernels and drops its
 * clocks): one prepared launch of the emitted module on the uploaded inputs, warm-up, then the best
 * of `repeats` submits of back-to-back launches (~30 ms each), wall time per launch.
 */
async function time(artifact, inputs, n) {
  const mod = await loadModule(artifact);
  const launch = (await mod.createKernel(device)).prepare({
    sizes: { B, H, Hkv, Nq: 1, Nk: n },
    ...inputs.buffers,
  });
  const submit = async (count) => {
    const encoder = device.createCommandEncoder();
    for (let i = 0; i < count; i++) launch.encode(encoder);
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / count;
  };
  const one = await submit(4);
  const count = Math.min(1000, Math.max(4, Math.round(30 / Math.max(one, 0.005))));
  for (const t0 = performance.now(); performance.now() - t0 < 400;) await submit(count);
  let ms = Infinity;
  for (let i = 0; i < repeats; i++) ms = Math.min(ms, await submit(count));
  return { ms, splits: launch.decodeSplits };
}
