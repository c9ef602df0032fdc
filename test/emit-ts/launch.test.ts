// Engine-grade launches of emitted modules (issue #12 item 6): buffer arguments as
// { buffer, offset, size } ranges of larger buffers, prepared launches updated in place
// (sizes, offsets, params), and encode loops that allocate nothing. Run on lavapipe, compared
// with the dense float64 reference (and, for ranges, bit for bit with whole buffers).
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import {
  emitStdlib,
  importModule,
  inputsFor,
  referenceFor,
  type Case,
  type Emitted,
  type GeneratedKernel,
  type GeneratedModule,
} from './support.js';

const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const MAP_READ = 0x1;
const TOL = 1e-5;

let device: GPUDevice;
let align: number;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  device = await getDevice();
  align = device.limits.minStorageBufferOffsetAlignment;
});
afterEach(() => {
  for (const b of made.splice(0)) b.destroy();
});

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function buffer(size: number): GPUBuffer {
  const b = device.createBuffer({
    size: alignUp(Math.max(16, size), 4),
    usage: STORAGE | COPY_SRC | COPY_DST,
  });
  made.push(b);
  return b;
}

function upload(data: Float32Array | Int32Array, into = buffer(data.byteLength), offset = 0): GPUBuffer {
  if (data.byteLength > 0)
    device.queue.writeBuffer(into, offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return into;
}

async function read(src: GPUBuffer, offset: number, n: number): Promise<Float32Array> {
  const dst = device.createBuffer({ size: alignUp(Math.max(16, 4 * n), 4), usage: MAP_READ | COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, dst, 0, 4 * n);
  device.queue.submit([enc.finish()]);
  await dst.mapAsync(1);
  const out = new Float32Array(dst.getMappedRange().slice(0, 4 * n));
  dst.destroy();
  return out;
}

function run(launch: { encode(e: GPUCommandEncoder): void }): void {
  const encoder = device.createCommandEncoder();
  launch.encode(encoder);
  device.queue.submit([encoder.finish()]);
}

function expectAgrees(
  got: { out: Float32Array; lse: Float32Array },
  ref: { out: ArrayLike<number>; lse: ArrayLike<number>; outScale: number },
  what: string,
): void {
  const out = compareArrays(got.out, ref.out, ref.outScale);
  const lse = compareArrays(got.lse, ref.lse, 1);
  expect(out.nanCount + lse.nanCount, `NaN, ${what}`).toBe(0);
  expect(out.relError, `out, ${what}`).toBeLessThanOrEqual(TOL);
  expect(lse.relError, `lse, ${what}`).toBeLessThanOrEqual(TOL);
}

async function kernelOf(e: Emitted): Promise<GeneratedKernel> {
  const mod = await importModule<GeneratedModule>(
    e.compiled.artifact.name,
    e.files[`${e.compiled.artifact.name}.js`]!,
  );
  return mod.createKernel(device);
}

/** Counts device.createBuffer calls while `body` runs. */
async function buffersMadeBy(body: () => unknown): Promise<number> {
  const original = device.createBuffer;
  let n = 0;
  device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
    n++;
    return original.call(this, d);
  } as GPUDevice['createBuffer'];
  try {
    await body();
  } finally {
    device.createBuffer = original;
  }
  return n;
}

describe('buffer arguments as { buffer, offset, size }', () => {
  it('ranges of two large buffers give the bits whole buffers give', async () => {
    const e = await emitStdlib('sliding_window', 'js');
    const kernel = await kernelOf(e);
    const c: Case = { B: 1, H: 4, Hkv: 2, Nq: 40, Nk: 70, params: { window: 9 } };
    const qkv = inputsFor(e.compiled, c);
    const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
    const nOut = qkv.q.length;
    const nLse = c.B * c.H * c.Nq;
    // Whole buffers.
    const whole = {
      q: upload(qkv.q),
      k: upload(qkv.k),
      v: upload(qkv.v),
      out: buffer(4 * nOut),
      lse: buffer(4 * nLse),
    };
    run(kernel.prepare({ ...whole, sizes, params: c.params }));
    // q, k, v packed into one buffer at aligned offsets (inputs may share); out and lse in another.
    const at = { q: align };
    const atK = alignUp(at.q + qkv.q.byteLength, align);
    const atV = alignUp(atK + qkv.k.byteLength, align);
    const inputs = buffer(atV + qkv.v.byteLength + align);
    upload(qkv.q, inputs, at.q);
    upload(qkv.k, inputs, atK);
    upload(qkv.v, inputs, atV);
    const atOut = 2 * align;
    const atLse = alignUp(atOut + 4 * nOut, align);
    const outputs = buffer(atLse + 4 * nLse + 8);
    const launch = kernel.prepare({
      q: { buffer: inputs, offset: at.q, size: qkv.q.byteLength },
      k: { buffer: inputs, offset: atK, size: qkv.k.byteLength },
      v: { buffer: inputs, offset: atV }, // to the end of the buffer
      out: { buffer: outputs, offset: atOut, size: 4 * nOut },
      lse: { buffer: outputs, offset: atLse, size: 4 * nLse },
      sizes,
      params: c.params,
    });
    device.pushErrorScope('validation');
    run(launch);
    expect(await device.popErrorScope()).toBeNull();
    const ranged = { out: await read(outputs, atOut, nOut), lse: await read(outputs, atLse, nLse) };
    const plain = { out: await read(whole.out, 0, nOut), lse: await read(whole.lse, 0, nLse) };
    expect(ranged.out).toEqual(plain.out);
    expect(ranged.lse).toEqual(plain.lse);
    expectAgrees(ranged, referenceFor(e.compiled, c, qkv), 'ranges');
    launch.destroy();
    kernel.destroy();
  });

  it('bad ranges: every problem named, by argument', async () => {
    const e = await emitStdlib('causal', 'js');
    const mod = await importModule<GeneratedModule>('causal', e.files['causal.js']!);
    const kernel = await mod.createKernel(device);
    const D = 32;
    const sizes = { B: 1, H: 1, Hkv: 1, Nq: 4, Nk: 4 };
    const big = buffer(4 * align);
    const outs = buffer(4 * align);
    const issuesOf = (args: object): readonly string[] => {
      try {
        kernel.prepare({ ...args, sizes });
      } catch (err) {
        expect(err).toBeInstanceOf(mod.KernelInputError);
        return (err as InstanceType<GeneratedModule['KernelInputError']>).issues;
      }
      throw new Error('expected a KernelInputError');
    };
    expect(
      issuesOf({
        q: { buffer: big, offset: 4 },
        k: { buffer: big, offset: 1.5 },
        v: { buffer: big, offset: 8 * align },
        out: { buffer: outs, offset: 0, size: 4 * align + 4 },
        lse: { buffer: 'nope' },
      }),
    ).toEqual([
      `buffer "q": offset 4 is not a multiple of the device's minStorageBufferOffsetAlignment (${align})`,
      'buffer "k": offset: expected a byte count (an integer >= 0), got number 1.5',
      `buffer "v": offset ${8 * align} is past the end of the GPUBuffer (${4 * align} bytes)`,
      `buffer "out": offset 0 + size ${4 * align + 4} runs past the end of the GPUBuffer (${4 * align} bytes)`,
      'buffer "lse": expected a GPUBuffer or { buffer, offset?, size? } holding f32[B=1, H=1, Nq=4], got { buffer: string nope }',
    ]);
    const need = 4 * 4 * D;
    expect(
      issuesOf({
        q: { buffer: big, offset: align, size: need - 4 },
        k: { buffer: big, size: need + 2 },
        v: big,
        out: { buffer: outs, offset: 0, size: need },
        lse: { buffer: outs, offset: 0, size: 16 },
      }),
    ).toEqual([
      `buffer "q": f32[B=1, H=1, Nq=4, D=32] needs ${need} bytes, the binding has ${need - 4} (offset ${align} into a GPUBuffer of ${4 * align})`,
      `buffer "k": storage bindings need a size that is a multiple of 4, the binding has ${need + 2} (offset 0 into a GPUBuffer of ${4 * align})`,
      `buffer "lse": bytes [0, 16) overlap "out"'s [0, ${need}) of the same GPUBuffer; outputs sharing a GPUBuffer need { buffer, offset, size } ranges that do not overlap`,
    ]);
    expect(issuesOf({ q: big, k: big, v: big, out: { buffer: big, offset: 2 * align }, lse: outs })).toEqual([
      'buffer "out": the same GPUBuffer is passed as "q"; an output needs a buffer no input reads',
      'buffer "out": the same GPUBuffer is passed as "k"; an output needs a buffer no input reads',
      'buffer "out": the same GPUBuffer is passed as "v"; an output needs a buffer no input reads',
    ]);
    kernel.destroy();
  });
});

describe('prepared launches: update() and allocation-free encode', () => {
  const MAX_NK = 96;
  const docs = (n: number) => Int32Array.from({ length: n }, (_, i) => Math.floor(i / 13));

  it('update() changes sizes (growing summary scratch), offsets and back to defaults', async () => {
    const e = await emitStdlib('document', 'js');
    const kernel = await kernelOf(e);
    const D = 32;
    // A KV cache of MAX_NK rows (B = Hkv = 1: a launch of Nk rows reads its first Nk).
    const full = inputsFor(e.compiled, { B: 1, H: 2, Hkv: 1, Nq: 8, Nk: MAX_NK });
    const doc = docs(MAX_NK);
    const bufs = {
      q: upload(full.q),
      k: upload(full.k),
      v: upload(full.v),
      doc: upload(doc),
      out: buffer(4 * full.q.length),
      lse: buffer(4 * 2 * 8),
    };
    const check = async (c: Case, what: string) => {
      const slice = { q: full.q, k: full.k.subarray(0, c.Nk * D), v: full.v.subarray(0, c.Nk * D) };
      const ref = referenceFor(e.compiled, { ...c, tensors: { doc: doc.subarray(0, c.Nk) } }, slice);
      const got = { out: await read(bufs.out, 0, full.q.length), lse: await read(bufs.lse, 0, 16) };
      expectAgrees(got, ref, what);
    };
    const base = { B: 1, H: 2, Hkv: 1, Nq: 8 };
    const launch = kernel.prepare({ ...bufs, sizes: { ...base, Nk: 20 } });
    run(launch);
    await check({ ...base, Nk: 20 }, 'prepared, Nk = 20');
    // Nk 20 -> 80: the document summary grows (one buffer), nothing else is made.
    expect(await buffersMadeBy(() => launch.update({ sizes: { Nk: 80 } }))).toBe(1);
    run(launch);
    await check({ ...base, Nk: 80 }, 'updated, Nk = 80');
    expect(await buffersMadeBy(() => launch.update({ sizes: { Nk: 50 }, qOffset: 5, kOffset: -3 }))).toBe(0);
    run(launch);
    await check({ ...base, Nk: 50, qOffset: 5, kOffset: -3 }, 'Nk = 50, qOffset 5, kOffset -3');
    launch.update({ qOffset: undefined, kOffset: undefined, sizes: { Nk: MAX_NK } });
    run(launch);
    await check({ ...base, Nk: MAX_NK }, 'back to default offsets, Nk = MAX_NK');
    launch.destroy();
    kernel.destroy();
  });

  it('update() changes params; a refused update names the argument and leaves the launch as it was', async () => {
    const e = await emitStdlib('sliding_window', 'js');
    const mod = await importModule<GeneratedModule>('sliding_window', e.files['sliding_window.js']!);
    const kernel = await mod.createKernel(device);
    const c: Case = { B: 1, H: 2, Hkv: 1, Nq: 24, Nk: 24, params: { window: 4 } };
    const qkv = inputsFor(e.compiled, c);
    const bufs = {
      q: upload(qkv.q),
      k: upload(qkv.k),
      v: upload(qkv.v),
      out: buffer(4 * qkv.q.length),
      lse: buffer(4 * 48),
    };
    const sizes = { B: 1, H: 2, Hkv: 1, Nq: 24, Nk: 24 };
    const launch = kernel.prepare({ ...bufs, sizes, params: c.params });
    const result = async () => ({
      out: await read(bufs.out, 0, qkv.q.length),
      lse: await read(bufs.lse, 0, 48),
    });
    launch.update({ params: { window: 11 }, scale: 0.25 });
    run(launch);
    const ref11 = referenceFor(e.compiled, { ...c, params: { window: 11 } }, qkv);
    // The reference at scale 0.25 = the default 1/sqrt(32) on q scaled by 0.25 * sqrt(32).
    const qScaled = qkv.q.map((x) => x * 0.25 * Math.sqrt(32));
    expectAgrees(
      await result(),
      referenceFor(e.compiled, { ...c, params: { window: 11 } }, { ...qkv, q: qScaled }),
      'window 11, scale 0.25',
    );
    launch.update({ scale: undefined });
    run(launch);
    expectAgrees(await result(), ref11, 'window 11, default scale');
    const refused = (changes: object): readonly string[] => {
      try {
        launch.update(changes);
      } catch (err) {
        expect(err).toBeInstanceOf(mod.KernelInputError);
        return (err as InstanceType<GeneratedModule['KernelInputError']>).issues;
      }
      throw new Error('expected a KernelInputError');
    };
    expect(refused({ sizes: { Nk: 40 } })).toEqual([
      'buffer "k": f32[B=1, Hkv=1, Nk=40, D=32] needs 5120 bytes, the bound range has 3072; prepare a launch with a larger buffer',
      'buffer "v": f32[B=1, Hkv=1, Nk=40, Dv=32] needs 5120 bytes, the bound range has 3072; prepare a launch with a larger buffer',
    ]);
    expect(refused({ params: { window: 2.5 } })).toEqual([
      'param "window" (i32): expected an integer in [-2147483648, 2147483647], got number 2.5',
    ]);
    expect(refused({ q: bufs.k })).toEqual([
      'update "q": a launch\'s buffers are fixed when it is prepared; update takes sizes, params, qOffset, kOffset, scale, kvCache',
    ]);
    run(launch);
    expectAgrees(await result(), ref11, 'after refused updates: unchanged');
    launch.destroy();
    expect(() => launch.encode(device.createCommandEncoder())).toThrow('encode on a destroyed launch');
    kernel.destroy();
  });

  it('encode loops allocate nothing: prepared.encode, and kernel.encode of the same launch', async () => {
    const e = await emitStdlib('document', 'js');
    const kernel = await kernelOf(e);
    const c: Case = { B: 1, H: 2, Hkv: 1, Nq: 16, Nk: 40 };
    const qkv = inputsFor(e.compiled, c);
    const doc = docs(40);
    const bufs = {
      q: upload(qkv.q),
      k: upload(qkv.k),
      v: upload(qkv.v),
      doc: upload(doc),
      out: buffer(4 * qkv.q.length),
      lse: buffer(4 * 32),
    };
    const args = { ...bufs, sizes: { B: 1, H: 2, Hkv: 1, Nq: 16, Nk: 40 } };
    const launch = kernel.prepare(args);
    const loop = (encode: (enc: GPUCommandEncoder) => void) => () => {
      for (let step = 0; step < 5; step++) {
        const encoder = device.createCommandEncoder();
        encode(encoder);
        device.queue.submit([encoder.finish()]);
      }
    };
    expect(await buffersMadeBy(loop((enc) => launch.encode(enc)))).toBe(0);
    kernel.encode(device.createCommandEncoder(), args); // the first encode of these arguments makes its launch
    expect(await buffersMadeBy(loop((enc) => kernel.encode(enc, { ...args })))).toBe(0);
    expect(await buffersMadeBy(() => launch.update({ sizes: { Nk: 30 } }))).toBe(0);
    const ref = referenceFor(e.compiled, { ...c, tensors: { doc } }, qkv);
    expectAgrees(
      { out: await read(bufs.out, 0, qkv.q.length), lse: await read(bufs.lse, 0, 32) },
      ref,
      'after the loops',
    );
    launch.destroy();
    kernel.destroy();
  });

  it('decode mode: few rows over a long KV run split-KV (scratch made once, grown by update); more rows switch back', async () => {
    const e = await emitStdlib('document', 'js');
    const kernel = await kernelOf(e);
    const D = 32;
    const [H, maxNq, maxNk] = [2, 40, 3000];
    const full = inputsFor(e.compiled, { B: 1, H, Hkv: 1, Nq: maxNq, Nk: maxNk });
    const doc = Int32Array.from({ length: maxNk }, (_, i) => Math.floor(i / 700));
    const bufs = {
      q: upload(full.q),
      k: upload(full.k),
      v: upload(full.v),
      doc: upload(doc),
      out: buffer(4 * full.q.length),
      lse: buffer(4 * H * maxNq),
    };
    // B = Hkv = 1: a launch of Nq rows and Nk keys reads the first H * Nq rows of q, Nk of k and v.
    const check = async (Nq: number, Nk: number, what: string) => {
      const c: Case = { B: 1, H, Hkv: 1, Nq, Nk, tensors: { doc: doc.subarray(0, Nk) } };
      const slice = {
        q: full.q.subarray(0, H * Nq * D),
        k: full.k.subarray(0, Nk * D),
        v: full.v.subarray(0, Nk * D),
      };
      const got = { out: await read(bufs.out, 0, H * Nq * D), lse: await read(bufs.lse, 0, H * Nq) };
      expectAgrees(got, referenceFor(e.compiled, c, slice), what);
    };
    const launch = kernel.prepare({ ...bufs, sizes: { B: 1, H, Hkv: 1, Nq: 4, Nk: 1500 } });
    expect(launch.decodeSplits).toBe(2);
    run(launch);
    await check(4, 1500, 'decode, 2 splits');
    // The doc summary and the split scratch grow: two buffers, nothing else.
    expect(await buffersMadeBy(() => launch.update({ sizes: { Nk: 3000 } }))).toBe(2);
    expect(launch.decodeSplits).toBe(3);
    run(launch);
    await check(4, 3000, 'decode, 3 splits');
    expect(await buffersMadeBy(() => launch.update({ sizes: { Nk: 2500 } }))).toBe(0);
    launch.update({ sizes: { Nq: maxNq } });
    expect(launch.decodeSplits).toBe(0);
    run(launch);
    await check(maxNq, 2500, 'main path, Nq = 40');
    const res = await kernel.dispatch({
      q: full.q.subarray(0, H * 3 * D),
      k: full.k,
      v: full.v,
      doc,
      sizes: { B: 1, H, Hkv: 1, Nq: 3, Nk: maxNk },
    });
    const c: Case = { B: 1, H, Hkv: 1, Nq: 3, Nk: maxNk, tensors: { doc } };
    expectAgrees(
      res as { out: Float32Array; lse: Float32Array },
      referenceFor(e.compiled, c, { ...full, q: full.q.subarray(0, H * 3 * D) }),
      'dispatch, decode',
    );
    launch.destroy();
    kernel.destroy();
  });
});

describe('ranges fuzz: a KernelInputError, or a launch Dawn accepts', () => {
  const runs = Number(process.env.ATTNC_PROPERTY_RUNS ?? 60);

  it(`${runs} random offsets and sizes of q, k, out and lse`, async () => {
    const e = await emitStdlib('causal', 'js');
    const mod = await importModule<GeneratedModule>('causal_fuzz', e.files['causal.js']!);
    const kernel = await mod.createKernel(device);
    const sizes = { B: 1, H: 2, Hkv: 1, Nq: 5, Nk: 9 };
    const big = buffer(16 * align);
    const outs = buffer(16 * align);
    const lses = buffer(16 * align);
    const v = buffer(9 * 32 * 4);
    const offset = fc.oneof(
      { weight: 4, arbitrary: fc.nat(7).map((i) => i * align) },
      { weight: 1, arbitrary: fc.oneof(fc.nat(9 * align), fc.constantFrom(-align, 0.5, NaN)) },
    );
    const size = fc.option(
      fc.oneof(
        fc.nat(8 * align),
        fc.nat(2 * align).map((x) => x * 4),
      ),
      {
        nil: undefined,
        freq: 2,
      },
    );
    const range = (buf: GPUBuffer) =>
      fc.record({ offset, size }).map(({ offset, size }) => ({
        buffer: buf,
        offset,
        ...(size === undefined ? {} : { size }),
      }));
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        range(big),
        range(big),
        range(outs),
        fc.oneof(range(lses), range(outs)),
        async (q, k, out, lse) => {
          device.pushErrorScope('validation');
          let refused = false;
          try {
            const launch = kernel.prepare({ q, k, v, out, lse, sizes });
            const encoder = device.createCommandEncoder();
            launch.encode(encoder);
            device.queue.submit([encoder.finish()]);
            launch.destroy();
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(mod.KernelInputError);
            refused = true;
          }
          const dawn = await device.popErrorScope();
          expect(
            dawn?.message ?? null,
            JSON.stringify({ q, k, out, lse }, (key, x) => (key === 'buffer' ? undefined : x)),
          ).toBeNull();
          if (!refused) accepted++;
        },
      ),
      // Whole buffers from offset 0 first: a draw can refuse every case (small sizes are likely),
      // and the count below needs at least one accepted launch to mean anything.
      {
        numRuns: runs,
        examples: [
          [
            { buffer: big, offset: 0 },
            { buffer: big, offset: 0 },
            { buffer: outs, offset: 0 },
            { buffer: lses, offset: 0 },
          ],
        ],
      },
    );
    expect(accepted).toBeGreaterThan(0);
    kernel.destroy();
  }, 300_000);
});
