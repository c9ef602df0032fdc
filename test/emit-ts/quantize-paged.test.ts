// The emitted module's quantize(device, cache, args) of a paged quantized cache
// (src/codegen/emit-ts-quantize.ts): typed (blockTable, maxPages, pages), and on lavapipe it fills
// pools in a random page order bit for bit as src/quant's quantize scattered by pageQuantCache, in
// two appends (through a table longer than [B, maxPages] too); a page id outside the pools, a
// capacity below Nk and a table shorter than [B, maxPages] are errors naming them.
import { describe, expect, it } from 'vitest';
import { checkedFormats } from '../../src/quant/format.js';
import type { CacheSizes, QuantCache } from '../../src/quant/layout.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import {
  appendRange,
  emptyPool,
  expectedPool,
  firstTokens,
  randomPages,
} from '../quant/paged-quantize-support.js';
import { emitSource, importModule, typecheck } from './support.js';

interface QuantizeModule {
  quantize(device: GPUDevice, cache: 'k' | 'v', args: Record<string, unknown>): void;
}

const source = `attention pq() {
  cache paged 8
  store k int4 scale f16 per channel group 4 zero f16 recent 3 f16
  store v int8 scale f16 per token group 8
  mask causal
}
`;

function view(t: Uint32Array | { data: ArrayBufferView }): Uint8Array {
  const a = t instanceof Uint32Array ? t : t.data;
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function upload(device: GPUDevice, data: Uint8Array): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const buf = device.createBuffer({
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const padded = new Uint8Array(size);
  padded.set(data);
  device.queue.writeBuffer(buf, 0, padded);
  return buf;
}

async function read(device: GPUDevice, src: GPUBuffer, bytes: number): Promise<Uint8Array> {
  const dst = device.createBuffer({
    size: src.size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const e = device.createCommandEncoder();
  e.copyBufferToBuffer(src, 0, dst, 0, src.size);
  device.queue.submit([e.finish()]);
  await dst.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(dst.getMappedRange()).slice(0, bytes);
  dst.unmap();
  return out;
}

describe('emitted quantize() of a paged cache', () => {
  it('types the block table, max pages and pool pages (TS, and JS + .d.ts)', async () => {
    const t = await emitSource(source, 'ts', { headDim: 16 });
    const ts = t.files['pq.ts']!;
    expect(ts).toContain('readonly blockTable: Int32Array;');
    expect(ts).toContain('readonly maxPages: number;');
    expect(ts).toContain('readonly pages: number;');
    expect(typecheck(t.files)).toEqual([]);
    const j = await emitSource(source, 'js', { headDim: 16 });
    const use = [
      "import { quantize, type QuantizeArgsK } from './pq.js';",
      'export function fill(d: GPUDevice, k: QuantizeArgsK): void {',
      "  quantize(d, 'k', k);",
      '}',
    ].join('\n');
    expect(typecheck({ 'pq.d.ts': j.files['pq.d.ts']!, 'use.ts': use })).toEqual([]);
  }, 120_000);

  it('fills shuffled pools on lavapipe bit for bit in two appends, and names bad arguments', async () => {
    const device = await getDevice();
    const { files, compiled } = await emitSource(source, 'js', { headDim: 16 });
    const mod = await importModule<QuantizeModule>('pq', files['pq.js']!);
    const formats = checkedFormats(compiled.decl);
    const s: CacheSizes = { B: 2, Hkv: 2, Nk: 37, D: 16 };
    const pages = randomPages(s.B, s.Nk, 8, rng(3));
    for (const cache of ['k', 'v'] as const) {
      const f = formats[cache]!;
      const x = randomNormal(s.B * s.Hkv * s.Nk * s.D, rng(cache === 'k' ? 1 : 2));
      const pool = emptyPool(f, s, pages, undefined);
      const buffers: Record<string, GPUBuffer> = {};
      for (const [name, t] of Object.entries(pool)) buffers[name] = upload(device, view(t));
      // V's table is one made for a larger batch, as engines allocate them: a third row of -1s,
      // refused if it were read, that quantize leaves alone (rows past B are unused).
      const junkRow = new Array<number>(pages.maxPages).fill(-1);
      const table = cache === 'v' ? Int32Array.from([...pages.blockTable, ...junkRow]) : pages.blockTable;
      const paging = { blockTable: table, maxPages: pages.maxPages, pages: pages.pages };
      for (const [N0, N1] of [
        [0, 21],
        [21, s.Nk],
      ] as const) {
        const { start, n } = appendRange(f, N0, N1);
        const x1 = upload(device, view({ data: firstTokens(x, s, N1) }));
        mod.quantize(device, cache, {
          ...buffers,
          ...paging,
          x: x1,
          sizes: { B: s.B, Hkv: s.Hkv, Nk: N1 },
          start,
          n,
        });
        const want = expectedPool(f, x, s, N1, pages, undefined) as unknown as Record<
          string,
          QuantCache['codes']
        >;
        for (const [name, t] of Object.entries(want)) {
          const w = view(t);
          const got = await read(device, buffers[name]!, w.byteLength);
          expect([cache, N1, name, Buffer.from(got).equals(Buffer.from(w))]).toEqual([cache, N1, name, true]);
        }
      }
      const args = {
        ...buffers,
        ...paging,
        x: upload(device, new Uint8Array(16)),
        sizes: { B: 2, Hkv: 2, Nk: 37 },
      };
      const bad = Int32Array.from(pages.blockTable);
      bad[1] = pages.pages;
      expect(() => mod.quantize(device, cache, { ...args, blockTable: bad, start: 0, n: 1 })).toThrow(
        `pq: quantize: blockTable[0][1] = ${pages.pages} is not a page of the pools (${pages.pages} pages)`,
      );
      expect(() =>
        mod.quantize(device, cache, {
          ...args,
          maxPages: 4,
          blockTable: pages.blockTable.slice(0, 8),
          start: 0,
          n: 1,
        }),
      ).toThrow("pq: quantize: the block table's 4 pages of 8 rows hold fewer than Nk = 37 tokens");
      const want = `i32[B=2, maxPages=${pages.maxPages}] (at least ${2 * pages.maxPages} elements, an Int32Array)`;
      expect(() => mod.quantize(device, cache, { ...args, blockTable: [1, 2], start: 0, n: 1 })).toThrow(
        `pq: quantize: blockTable: expected ${want}, got a plain Array of 2 elements`,
      );
      // A table shorter than [B, maxPages] is refused, naming both lengths.
      const shorter = pages.blockTable.slice(0, 2 * pages.maxPages - 1);
      expect(() => mod.quantize(device, cache, { ...args, blockTable: shorter, start: 0, n: 1 })).toThrow(
        `pq: quantize: blockTable: expected ${want}, got Int32Array of ${shorter.length} elements`,
      );
    }
  }, 120_000);
});
