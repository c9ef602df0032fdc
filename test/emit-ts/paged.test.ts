// Emitted modules over strided and paged K/V caches (docs/LANGUAGE.md "Paged and strided caches"):
// `kvCache` with the CUDA Args' names (k_stride_b …, max_pages) and a paged kernel's `block_table`,
// run by dispatch (host arrays) and encode (the caller's GPUBuffers) against the reference over the
// logical K/V; bad strides, short caches and stray page ids are KernelInputErrors naming them.
import { describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';
import { rng } from '../../src/runtime/inputs.js';
import type { KvCacheLayout, KvSizes } from '../../src/runtime/kv-cache.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { pagedLayout, pagedTable, physicalCache, stridedLayout } from '../support/kv-layouts.js';
import {
  dispatchArgs,
  emitSource,
  importTs,
  inputsFor,
  referenceFor,
  type Case,
  type Emitted,
  type GeneratedModule,
} from './support.js';

const strided = 'attention strided() {\n  mask causal\n}\n';
const paged = (P: number): string => `attention paged() {\n  cache paged ${P}\n  mask causal\n}\n`;
const c: Case = { B: 2, H: 4, Hkv: 2, Nq: 9, Nk: 70 };

async function load(e: Emitted): Promise<GeneratedModule> {
  const name = e.compiled.artifact.name;
  return importTs<GeneratedModule>(name, e.files[`${name}.ts`]!);
}

/** CUDA-named kvCache fields of a layout. */
function kvFields(k: KvCacheLayout, v: KvCacheLayout): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [w, l] of [
    ['k', k],
    ['v', v],
  ] as const) {
    out[`${w}_stride_b`] = l.strides.batch;
    out[`${w}_stride_h`] = l.strides.head;
    out[`${w}_stride_n`] = l.strides.row;
  }
  if (k.kind === 'paged') out.max_pages = k.maxPages;
  return out;
}

interface Placed {
  readonly args: Record<string, unknown>;
  readonly qkv: { q: Float32Array; k: Float32Array; v: Float32Array };
}

/** The case's logical K/V placed in physical caches (NaN where unaddressed) and the dispatch args. */
function place(e: Emitted, kind: 'bnhd' | 'nhd-pages', seed: number): Placed {
  const qkv = inputsFor(e.compiled, { ...c, seed });
  const D = e.compiled.artifact.schedule.headDim;
  const n: KvSizes = { B: c.B, Hkv: c.Hkv, Nk: c.Nk, W: D };
  const r = rng(seed);
  const P = e.compiled.artifact.kvRows?.pageSize;
  const table = P ? pagedTable(c, P, r) : undefined;
  const at = () => (table ? pagedLayout('nhd-pages', n, P!, table) : stridedLayout(kind, n, r, 4));
  const [lk, lv] = [at(), at()];
  const args = {
    ...dispatchArgs(c, { q: qkv.q, k: physicalCache(qkv.k, n, lk), v: physicalCache(qkv.v, n, lv) }),
    kvCache: kvFields(lk.layout, lv.layout),
    ...(table ? { block_table: table.blockTable } : {}),
  };
  return { args, qkv };
}

function expectAgrees(e: Emitted, res: { out: Float32Array }, qkv: Placed['qkv']): void {
  const ref = referenceFor(e.compiled, c, qkv);
  const out = compareArrays(res.out, ref.out, ref.outScale);
  expect(out.nanCount).toBe(0);
  expect(out.relError).toBeLessThanOrEqual(1e-5);
}

describe('emitted modules read strided and paged K/V caches', () => {
  for (const [name, source, kind] of [
    ['BNHD view (strided)', strided, 'bnhd'],
    ['NHD pages of 8 (paged)', paged(8), 'nhd-pages'],
  ] as const)
    it(`${name}: dispatch agrees with the reference`, async () => {
      const e = await emitSource(source, 'ts', { headDim: 16 });
      const kernel = await (await load(e)).createKernel(await getDevice());
      try {
        const p = place(e, kind, 11);
        expectAgrees(e, await kernel.dispatch(p.args), p.qkv);
        if (kind === 'nhd-pages') {
          // A table made for a larger batch, as engines allocate them: its rows past B (-1s,
          // refused if read) are unused.
          const table = p.args.block_table as Int32Array;
          const longer = Int32Array.from([...table, ...new Array<number>(table.length).fill(-1)]);
          expectAgrees(e, await kernel.dispatch({ ...p.args, block_table: longer }), p.qkv);
        }
      } finally {
        kernel.destroy();
      }
    }, 120_000);

  it('documents that a GPU-resident block table is not checked, and where a host one is', async () => {
    const e = await emitSource(paged(16), 'js', { headDim: 16 });
    const dts = e.files['paged.d.ts']!;
    const encodeArgs = dts.slice(dts.indexOf('export interface EncodeArgs'));
    expect(encodeArgs.slice(0, encodeArgs.indexOf('\n}'))).toContain(
      'i32[B, max_pages]: page ids, on the GPU: not checked (a page id outside the pool reads other rows of the buffer or zeros, without an error); dispatch checks a host table',
    );
    const dispatchArgs = dts.slice(dts.indexOf('export interface DispatchArgs'));
    expect(dispatchArgs.slice(0, dispatchArgs.indexOf('\n}'))).toContain(
      'i32[B, max_pages]: page ids, each checked to be a page of the pool; a longer table (rows past B unused) is fine',
    );
  }, 120_000);

  it('encode: the caller’s GPUBuffers hold the pool and the block table', async () => {
    const device = await getDevice();
    const e = await emitSource(paged(16), 'ts', { headDim: 16 });
    const kernel = await (await load(e)).createKernel(device);
    const p = place(e, 'nhd-pages', 5);
    const upload = (x: Float32Array | Int32Array): GPUBuffer => {
      const b = device.createBuffer({ size: Math.max(16, x.byteLength), usage: 0x80 | 0x8 });
      device.queue.writeBuffer(b, 0, x.buffer, x.byteOffset, x.byteLength);
      return b;
    };
    const out = device.createBuffer({ size: c.B * c.H * c.Nq * 16 * 4, usage: 0x80 | 0x4 });
    const read = device.createBuffer({ size: out.size, usage: 0x1 | 0x8 });
    const lse = device.createBuffer({ size: c.B * c.H * c.Nq * 4, usage: 0x80 });
    const bufs = ['q', 'k', 'v', 'block_table'].map((n) => upload(p.args[n] as Float32Array));
    const [q, k, v, block_table] = bufs;
    const encoder = device.createCommandEncoder();
    kernel.encode(encoder, { ...p.args, q, k, v, block_table, out, lse });
    encoder.copyBufferToBuffer(out, 0, read, 0, out.size);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(1);
    expectAgrees(e, { out: new Float32Array(read.getMappedRange().slice(0)) }, p.qkv);
    for (const b of [...bufs, out, read, lse]) b!.destroy();
    kernel.destroy();
  }, 120_000);

  it('bad strides, a short table and a stray page id name the argument (coop: vec4 strides)', async () => {
    const e = await emitSource(paged(8), 'ts', { headDim: 16, wgslEngine: 'coop' });
    expect(e.compiled.artifact.kvRows).toEqual({ align: 4, pageSize: 8 });
    const mod = await load(e);
    const kernel = await mod.createKernel(await getDevice());
    const p = place(e, 'nhd-pages', 3);
    const kv = p.args.kvCache as Record<string, number>;
    const fails = async (args: object, ...words: string[]): Promise<void> => {
      const err = await kernel.dispatch(args).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toBeInstanceOf(mod.KernelInputError);
      for (const w of words) expect(String((err as Error).message)).toContain(w);
    };
    await fails({ ...p.args, kvCache: { ...kv, k_stride_n: 18 } }, 'kvCache.k_stride_n', 'multiple of 4');
    await fails({ ...p.args, kvCache: { ...kv, v_stride_n: 4 } }, 'kvCache.v_stride_n', 'smaller than a row');
    await fails({ ...p.args, kvCache: { ...kv, max_pages: 2 } }, 'kvCache.max_pages', 'fewer than Nk = 70');
    await fails({ ...p.args, kvCache: { ...kv, k_stride: 1 } }, 'kvCache field "k_stride"');
    const table = Int32Array.from(p.args.block_table as Int32Array);
    table[1] = 1000;
    await fails({ ...p.args, block_table: table }, 'block_table[0][1] = 1000 is not a page of "k"');
    await fails({ ...p.args, block_table: undefined }, 'input "block_table"');
    const short = table.slice(0, table.length - 1);
    const want = `(at least ${table.length} elements, an Int32Array), got Int32Array of ${short.length} elements`;
    await fails({ ...p.args, block_table: short }, 'input "block_table": expected i32[B=2, max_pages=', want);
    // encode and prepare bind a GPU-resident table, which cannot be checked: a host table (whose
    // page ids could be) is refused there, pointing at dispatch, rather than taken unchecked.
    const hostTable = 'buffer "block_table": expected a GPUBuffer';
    const encoder = (await getDevice()).createCommandEncoder();
    expect(() => kernel.encode(encoder, { ...p.args, block_table: table })).toThrow(hostTable);
    expect(() => kernel.prepare({ ...p.args, block_table: table })).toThrow('(host arrays go to dispatch)');
    kernel.destroy();
  }, 120_000);
});
