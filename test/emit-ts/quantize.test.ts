// The emitted module's quantize(device, cache, args) (src/codegen/emit-ts-quantize.ts): it
// type-checks (TS, and JS with its .d.ts) and, on lavapipe, fills stdlib/kivi.attn's caches bit
// for bit as src/quant's quantize; bad arguments are errors naming them.
import { describe, expect, it } from 'vitest';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { cacheLayout, type CacheSizes } from '../../src/quant/layout.js';
import { quantize } from '../../src/quant/quantize.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { checkSource } from '../../src/compile.js';
import { readFileSync } from 'node:fs';
import { emitStdlib, importModule, typecheck } from './support.js';

interface QuantizeModule {
  quantize(device: GPUDevice, cache: 'k' | 'v', args: Record<string, unknown>): void;
}

async function read(device: GPUDevice, src: GPUBuffer): Promise<Uint8Array> {
  const dst = device.createBuffer({
    size: src.size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const e = device.createCommandEncoder();
  e.copyBufferToBuffer(src, 0, dst, 0, src.size);
  device.queue.submit([e.finish()]);
  await dst.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(dst.getMappedRange()).slice();
  dst.unmap();
  return out;
}

function upload(device: GPUDevice, data: ArrayBufferView): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const buf = device.createBuffer({
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const padded = new Uint8Array(size);
  padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  device.queue.writeBuffer(buf, 0, padded);
  return buf;
}

const kiviFormats = () => {
  const checked = checkSource(readFileSync('stdlib/kivi.attn', 'utf8'), 'stdlib/kivi.attn');
  return checkedFormats(checked.decl);
};

describe('emitted quantize()', () => {
  it('type-checks in TS and as JS + .d.ts', async () => {
    const t = await emitStdlib('kivi', 'ts');
    expect(t.files['kivi.ts']).toContain(
      "export function quantize(device: GPUDevice, cache: 'k', args: QuantizeArgsK): void;",
    );
    expect(typecheck(t.files)).toEqual([]);
    const j = await emitStdlib('kivi', 'js');
    const use = [
      "import { quantize, type QuantizeArgsK, type QuantizeArgsV } from './kivi.js';",
      'export function fill(d: GPUDevice, k: QuantizeArgsK, v: QuantizeArgsV): void {',
      "  quantize(d, 'k', k);",
      "  quantize(d, 'v', v);",
      '}',
    ].join('\n');
    expect(typecheck({ 'kivi.d.ts': j.files['kivi.d.ts']!, 'use.ts': use })).toEqual([]);
  }, 120_000);

  it('fills the kivi caches on lavapipe bit for bit as src/quant quantize, and names bad arguments', async () => {
    const device = await getDevice();
    const { files } = await emitStdlib('kivi', 'js');
    const mod = await importModule<QuantizeModule>('kivi', files['kivi.js']!);
    const formats = kiviFormats();
    const s: CacheSizes = { B: 1, Hkv: 2, Nk: 170, D: 32 };
    for (const cache of ['k', 'v'] as const) {
      const f: QuantFormat = formats[cache]!;
      const x = randomNormal(s.B * s.Hkv * s.Nk * s.D, rng(cache === 'k' ? 1 : 2));
      const want = quantize(f, x, s);
      const buffers: Record<string, GPUBuffer> = { x: upload(device, x) };
      for (const t of cacheLayout(f, s))
        buffers[t.name] = upload(device, new Uint8Array(4 * t.shape.reduce((a, b) => a * b, 1)).fill(0xa5));
      mod.quantize(device, cache, { ...buffers, sizes: { B: s.B, Hkv: s.Hkv, Nk: s.Nk }, start: 0, n: s.Nk });
      for (const t of cacheLayout(f, s)) {
        const held = (want as unknown as Record<string, Uint32Array | { data: ArrayBufferView }>)[t.name]!;
        const data = held instanceof Uint32Array ? held : held.data;
        const got = (await read(device, buffers[t.name]!)).slice(0, data.byteLength);
        expect([
          cache,
          t.name,
          Buffer.from(got).equals(Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
        ]).toEqual([cache, t.name, true]);
      }
      expect(() =>
        mod.quantize(device, cache, {
          ...buffers,
          sizes: { B: s.B, Hkv: s.Hkv, Nk: s.Nk },
          start: 100,
          n: 71,
        }),
      ).toThrow('kivi: quantize: rows [100, 171) are not inside the cache of 170 tokens');
      const { codes: _codes, ...noCodes } = buffers;
      expect(() =>
        mod.quantize(device, cache, { ...noCodes, sizes: { B: 1, Hkv: 2, Nk: 170 }, start: 0, n: 1 }),
      ).toThrow('kivi: quantize: codes must be a GPUBuffer');
    }
    expect(() => mod.quantize(device, 'q' as 'k', {})).toThrow(
      'kivi: quantize: cache "q" is not quantized (k, v are)',
    );
  }, 120_000);
});
