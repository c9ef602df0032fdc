// WGSL decode over quantized K/V caches (issue #10 item 6's WGSL row): B = 4, H = 32, Hkv = 8,
// D = 128, one query, for f16 (or f32, without shader-f16) caches and int8 / fp8 / int4 / int2 (KIVI-style) formats. Correctness
// first, in the same process: each format at Nk = 600 against the reference over the values its
// cache holds; then the timing at the requested Nk on random code words (finite scales), with the
// bytes the kernel reads (every cache tensor, q and out) and GB/s. Usage (after npm run build):
//   node bench/quant-decode-wgsl.mjs [Nk=32768] [repeats=10]
// On the H200 machine, Dawn finds the GPU through Vulkan; the device's storage-buffer binding
// limit bounds Nk (an f16 cache at Nk = 128K is 1 GiB per tensor).
import { compile } from '../dist/src/compile.js';
import { cacheBytes, cacheLayout } from '../dist/src/quant/layout.js';
import { compareArrays } from '../dist/src/runtime/compare.js';
import { rng } from '../dist/src/runtime/inputs.js';
import { referenceAttention } from '../dist/src/runtime/reference.js';
import { storedRun } from '../dist/src/runtime/stored-run.js';
import { createKernel, deviceLimits, getDevice } from '../dist/src/runtime/webgpu.js';

const [Nk = 32768, repeats = 10] = process.argv.slice(2).map(Number);
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
const rows = [];
for (const [name, store] of Object.entries(formats)) {
  const source = `attention q_${name.replace(/\W.*/, '')}() {\n  ${store}\n}`;
  const { artifact, kernel } = compile(source, {
    target: 'wgsl',
    headDim: D,
    dtype,
    limits: deviceLimits(device),
  });
  const gpu = await createKernel(device, artifact, { decode: 'always' });
  try {
    const verdict = await checkSmall(gpu, kernel);
    const timing = await time(gpu, kernel, Nk);
    rows.push({ name, ...verdict, ...timing });
    console.log(
      `${name.padEnd(12)} check ${verdict.ok ? 'ok' : 'FAILED'} (rel ${verdict.rel.toExponential(2)})  ` +
        `${timing.ms.toFixed(3)} ms  ${(timing.bytes / 2 ** 20).toFixed(1)} MiB  ${(timing.bytes / timing.ms / 1e6).toFixed(1)} GB/s`,
    );
  } catch (e) {
    console.log(`${name.padEnd(12)} error: ${e.message}`);
  } finally {
    gpu.destroy();
  }
}
const base = rows.find((r) => r.name === dtype);
if (base)
  for (const r of rows)
    console.log(`${r.name.padEnd(12)} ${(base.ms / r.ms).toFixed(2)}x the ${dtype} cache`);

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

async function time(gpu, kernel, n) {
  const sizes = { B, Hkv, Nk: n, D };
  const rand = rng(2);
  const caches = {};
  let bytes = 2 * B * H * D * elemBytes; // q and out
  const plain = {};
  for (const which of ['k', 'v']) {
    const f = kernel.formats[which];
    if (f.kind !== 'quant') {
      plain[which] = plainArray(B * Hkv * n * D, () => rand() - 0.5);
      bytes += plain[which].byteLength;
      continue;
    }
    const cache = {};
    for (const t of cacheLayout(f.format, sizes)) {
      const len = t.shape.reduce((a, b) => a * b, 1);
      if (t.dtype === 'u32')
        cache[t.name] = Uint32Array.from({ length: len }, () => (rand() * 2 ** 32) >>> 0);
      else if (t.dtype === 'f32') cache[t.name] = { dtype: 'f32', data: new Float32Array(len).fill(1 / 64) };
      else
        cache[t.name] = {
          dtype: t.dtype,
          data: new Uint16Array(len).fill(t.dtype === 'f16' ? 0x2400 : 0x3c80),
        };
    }
    caches[which] = cache;
    bytes += cacheBytes(f.format, sizes);
  }
  const q = plainArray(B * H * D, () => rand() - 0.5);
  const empty = plainArray(0, rand);
  const inputs = { q, k: plain.k ?? empty, v: plain.v ?? empty, B, H, Hkv, Nq: 1, Nk: n, caches };
  let ms = Infinity;
  for (let i = 0; i < repeats; i++) ms = Math.min(ms, (await gpu.run(inputs)).gpuMs ?? Infinity);
  return { ms, bytes };
}
