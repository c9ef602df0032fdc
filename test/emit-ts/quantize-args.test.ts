// The emitted module's quantize(device, cache, args) against hostile arguments (stdlib/kivi.attn):
// buffers too small for the sizes (WebGPU clamps the writes: a silently wrong cache), without
// STORAGE usage or passed twice (Dawn only logs those at submit), sizes past int32 (they wrapped
// in the u32 uniforms), a misspelt key, a non-object args or device, an inherited cache name.
// Each is an Error naming the argument, thrown before anything is submitted.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkSource } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { cacheLayout, type CacheSizes } from '../../src/quant/layout.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { findAdapter } from '../../src/runtime/device.js';
import { emitSource, emitStdlib, importModule } from './support.js';

interface QuantizeModule {
  quantize(device: unknown, cache: string, args: unknown): void;
}

const s: CacheSizes = { B: 1, Hkv: 2, Nk: 40, D: 32 };
const STORAGE_RW = 0x80 | 0x4 | 0x8;
let device: GPUDevice;
let mod: QuantizeModule;
/** Buffers of exactly the bytes each tensor needs (16-bit tensors packed two to a word). */
let ok: Record<string, unknown>;

const buffer = (size: number, usage = STORAGE_RW): GPUBuffer => device.createBuffer({ size, usage });

beforeAll(async () => {
  device = await getDevice();
  mod = await importModule<QuantizeModule>('kivi_args', (await emitStdlib('kivi', 'js')).files['kivi.js']!);
  const decl = checkSource(readFileSync('stdlib/kivi.attn', 'utf8'), 'stdlib/kivi.attn').decl;
  const f = checkedFormats(decl).k!;
  const buffers: Record<string, GPUBuffer> = { x: buffer(4 * s.B * s.Hkv * s.Nk * s.D) };
  for (const t of cacheLayout(f, s)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    buffers[t.name] = buffer(t.dtype === 'u32' || t.dtype === 'f32' ? 4 * n : Math.ceil(n / 2) * 4);
  }
  ok = { ...buffers, sizes: { B: s.B, Hkv: s.Hkv, Nk: s.Nk }, start: 0, n: s.Nk };
}, 120_000);

/** quantize with `changes` over the good arguments must throw `message`, and submit nothing invalid. */
async function refuses(changes: Record<string, unknown>, message: string): Promise<void> {
  device.pushErrorScope('validation');
  expect(() => mod.quantize(device, 'k', { ...ok, ...changes })).toThrow(`kivi: quantize: ${message}`);
  expect(await device.popErrorScope()).toBeNull();
}

describe('emitted quantize() arguments', () => {
  it('exact buffers pass with no validation error', async () => {
    device.pushErrorScope('validation');
    mod.quantize(device, 'k', ok);
    expect(await device.popErrorScope()).toBeNull();
  });

  it('names a buffer too small for the sizes', async () => {
    await refuses({ codes: buffer(16) }, 'codes: [1, 2, 40, 2] needs 640 bytes, the GPUBuffer has 16');
    await refuses({ x: buffer(1024) }, 'x: [1, 2, 40, 32] needs 10240 bytes, the GPUBuffer has 1024');
    await refuses({ scale: buffer(128) }, 'scale: [1, 2, 2, 32] needs 256 bytes, the GPUBuffer has 128');
    // The recent window is 128 rows whatever Nk is.
    await refuses(
      { recent: buffer(256) },
      'recent: [1, 2, 128, 32] needs 16384 bytes, the GPUBuffer has 256',
    );
  });

  it('names a buffer without STORAGE usage, and one passed for two tensors', async () => {
    await refuses({ x: buffer(16384, 0x8) }, 'x: the GPUBuffer lacks STORAGE usage (usage 0x8)');
    await refuses(
      { zero: ok.scale },
      'zero: the same GPUBuffer is passed as scale; each tensor needs its own buffer',
    );
  });

  it('refuses sizes and rows past int32, which the u32 uniforms would wrap', async () => {
    await refuses(
      { sizes: { B: 2 ** 32, Hkv: 2, Nk: 40 } },
      'sizes.B must be an integer in [0, 2147483647], got 4294967296',
    );
    await refuses({ start: 2 ** 32 + 1 }, 'start must be an integer in [0, 2147483647], got 4294967297');
  });

  it('names a misspelt argument or size instead of taking its default', async () => {
    await refuses(
      { strat: 3 },
      'unknown argument "strat" (known: x, codes, scale, zero, recent, sizes, start, n)',
    );
    await refuses({ sizes: { B: 1, Hkv: 2, Nk: 40, D: 32 } }, 'sizes: unknown size "D" (known: B, Hkv, Nk)');
  });

  it('names a storage-buffer limit the device is below, before caching pipelines that cannot exist', async () => {
    // Salient codes, a normalizer, zero points, a recent window and a block table: 9 storage
    // buffers, one over WebGPU's default. quantize returned, Dawn logged the error, nothing ran.
    const source = `attention z(sal: i32[batch, kv_heads, kv]) {
  cache paged 4
  store k int2 scale f16 per token zero f16 norm f16 salient int4 from sal recent 4 f16
  mask causal
}`;
    const z = await importModule<QuantizeModule>(
      'z_limit',
      (await emitSource(source, 'js', { headDim: 16 })).files['z.js']!,
    );
    const { adapter } = (await findAdapter())!;
    const bare = await adapter.requestDevice(); // the default limits: 8 storage buffers a stage
    const args: Record<string, unknown> = { sizes: { B: 1, Hkv: 1, Nk: 8 }, start: 0, n: 8 };
    Object.assign(args, { blockTable: Int32Array.from([0, 1]), maxPages: 2, pages: 2 });
    for (const name of ['x', 'salient', 'codes', 'codesHi', 'scale', 'zero', 'norm', 'recent'])
      args[name] = bare.createBuffer({ size: 65536, usage: STORAGE_RW });
    bare.pushErrorScope('validation');
    expect(() => z.quantize(bare, 'k', args)).toThrow(
      "z: quantize: the k cache's quantize binds 9 storage buffers, the device allows 8 (request a device with a higher maxStorageBuffersPerShaderStage)",
    );
    expect(await bare.popErrorScope()).toBeNull();
    bare.destroy();
  });

  it('names a device, args or cache that is not one', () => {
    expect(() => mod.quantize(undefined, 'k', ok)).toThrow(
      'kivi: quantize: device: expected a GPUDevice, got undefined',
    );
    expect(() => mod.quantize(device, 'k', null)).toThrow(
      'kivi: quantize: args: expected an object of buffers, sizes, start and n, got null',
    );
    expect(() => mod.quantize(device, 'toString', ok)).toThrow(
      'kivi: quantize: cache "toString" is not quantized (k, v are)',
    );
  });
});
