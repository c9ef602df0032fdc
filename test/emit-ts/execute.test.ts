// Emitted modules run under the `webgpu` package (Dawn; lavapipe on CI): transpiled by the
// TypeScript compiler (or emitted as JS), imported, createKernel(device).dispatch / encode /
// prepare, and compared with the dense float64 reference at relative error <= 1e-5.
import { describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import {
  customSource,
  dispatchArgs,
  emitSource,
  emitStdlib,
  importModule,
  importTs,
  inputsFor,
  referenceFor,
  type Case,
  type Emitted,
  type GeneratedModule,
} from './support.js';

const TOL = 1e-5;

async function load(e: Emitted): Promise<GeneratedModule> {
  const name = e.compiled.artifact.name;
  const ts = e.files[`${name}.ts`];
  if (ts !== undefined) return importTs<GeneratedModule>(name, ts);
  return importModule<GeneratedModule>(name, e.files[`${name}.js`]!);
}

function expectAgrees(
  res: { out: Float32Array; lse?: Float32Array },
  ref: { out: ArrayLike<number>; lse: ArrayLike<number>; outScale: number },
  what: string,
): void {
  const out = compareArrays(res.out, ref.out, ref.outScale);
  expect(out.nanCount, `NaN in out, ${what}`).toBe(0);
  expect(out.relError, `out, ${what}`).toBeLessThanOrEqual(TOL);
  if (res.lse) {
    const lse = compareArrays(res.lse, ref.lse, 1);
    expect(lse.nanCount, `NaN in lse, ${what}`).toBe(0);
    expect(lse.relError, `lse, ${what}`).toBeLessThanOrEqual(TOL);
  }
}

async function dispatchCase(e: Emitted, mod: GeneratedModule, c: Case): Promise<void> {
  const kernel = await mod.createKernel(await getDevice());
  try {
    const qkv = inputsFor(e.compiled, c);
    const res = await kernel.dispatch(dispatchArgs(c, qkv));
    expectAgrees(
      res,
      referenceFor(e.compiled, c, qkv),
      `${e.compiled.artifact.name} ${JSON.stringify({ ...c, tensors: undefined })}`,
    );
  } finally {
    kernel.destroy();
  }
}

function docs(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => Math.floor(i / 23) + (i > 50 ? 1 : 0));
}

const gqa = { B: 2, H: 4, Hkv: 2, Nq: 45, Nk: 70 } as const;

describe('emitted modules agree with the reference (dispatch, rel. error <= 1e-5)', () => {
  it('document: summary pass before attention, GQA, Nq != Nk', async () => {
    const e = await emitStdlib('document');
    const mod = await load(e);
    await dispatchCase(e, mod, { ...gqa, tensors: { doc: docs(gqa.Nk) } });
  });

  it('sink_calibration: f32 tensor [heads], int param, offsets', async () => {
    const e = await emitStdlib('sink_calibration');
    const gain = Float32Array.from([0.5, 1, 2, 4]);
    await dispatchCase(e, await load(e), {
      ...gqa,
      tensors: { gain },
      params: { sinks: 3 },
      qOffset: 10,
      kOffset: -5,
    });
  });

  it('softcap (f32 param) and sliding_window (int param, default and given)', async () => {
    const softcap = await emitStdlib('softcap');
    await dispatchCase(softcap, await load(softcap), { ...gqa, params: { cap: 2.5 } });
    const sw = await emitStdlib('sliding_window');
    const mod = await load(sw);
    await dispatchCase(sw, mod, { ...gqa, params: { window: 9 } });
    await dispatchCase(sw, mod, { B: 1, H: 2, Hkv: 1, Nq: 33, Nk: 33 });
  });

  it('custom: required param, bool param, tensor shaped by a param', async () => {
    const e = await emitSource(customSource);
    const mod = await load(e);
    const gain = Float32Array.from([0.3, -0.2, 0.1]);
    await dispatchCase(e, mod, { ...gqa, params: { n: 3, flag: false }, tensors: { gain } });
    await dispatchCase(e, mod, { ...gqa, params: { n: 3 }, tensors: { gain } });
  });

  it('empty launches: Nq = 0 gives empty outputs; Nk = 0 gives out = 0, lse = -inf', async () => {
    const e = await emitStdlib('document');
    const kernel = await (await load(e)).createKernel(await getDevice());
    const D = e.compiled.artifact.schedule.headDim;
    const none = await kernel.dispatch({
      ...{ q: new Float32Array(0), k: new Float32Array(9 * D), v: new Float32Array(9 * D) },
      ...{ doc: new Int32Array(9), sizes: { B: 1, H: 1, Hkv: 1, Nq: 0, Nk: 9 } },
    });
    expect([none.out.length, none.lse?.length]).toEqual([0, 0]);
    const empty = await kernel.dispatch({
      ...{ q: new Float32Array(3 * D).fill(1), k: new Float32Array(0), v: new Float32Array(0) },
      ...{ doc: new Int32Array(0), sizes: { B: 1, H: 1, Hkv: 1, Nq: 3, Nk: 0 } },
    });
    expect([...empty.out].every((x) => x === 0)).toBe(true);
    expect([...empty.lse!]).toEqual([-Infinity, -Infinity, -Infinity]);
    kernel.destroy();
  });

  it('--emit js runs the same', async () => {
    const e = await emitStdlib('document', 'js');
    await dispatchCase(e, await load(e), { B: 1, H: 2, Hkv: 2, Nq: 20, Nk: 64, tensors: { doc: docs(64) } });
  });
});

describe('encode and prepare: GPUBuffers the caller owns', () => {
  const STORAGE = 0x80;
  const COPY_SRC = 0x4;
  const COPY_DST = 0x8;
  const MAP_READ = 0x1;

  function upload(device: GPUDevice, data: Float32Array): GPUBuffer {
    const buf = device.createBuffer({
      size: Math.max(16, data.byteLength),
      usage: STORAGE | COPY_DST | COPY_SRC,
    });
    device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    return buf;
  }

  async function read(device: GPUDevice, src: GPUBuffer, n: number): Promise<Float32Array> {
    const dst = device.createBuffer({ size: src.size, usage: MAP_READ | COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, dst, 0, src.size);
    device.queue.submit([enc.finish()]);
    await dst.mapAsync(1);
    const out = new Float32Array(dst.getMappedRange().slice(0, 4 * n));
    dst.destroy();
    return out;
  }

  it('two launches with different params in one submit; a prepared launch replayed', async () => {
    const device = await getDevice();
    const e = await emitStdlib('sliding_window');
    const kernel = await (await load(e)).createKernel(device);
    const c: Case = { B: 1, H: 4, Hkv: 2, Nq: 40, Nk: 70 };
    const qkv = inputsFor(e.compiled, c);
    const D = e.compiled.artifact.schedule.headDim;
    const [q, k, v] = [upload(device, qkv.q), upload(device, qkv.k), upload(device, qkv.v)];
    const nOut = c.B * c.H * c.Nq * D;
    const outs = [0, 1, 2].map(() => upload(device, new Float32Array(nOut)));
    const lses = [0, 1, 2].map(() => upload(device, new Float32Array(c.B * c.H * c.Nq)));
    const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
    const windows = [4, 25, 7];
    const prepared = kernel.prepare({
      q,
      k,
      v,
      out: outs[2],
      lse: lses[2],
      sizes,
      params: { window: windows[2] },
    });
    for (let step = 0; step < 2; step++) {
      const encoder = device.createCommandEncoder();
      // Each launch has its own uniforms, so both windows hold although they share one submit.
      kernel.encode(encoder, { q, k, v, out: outs[0], lse: lses[0], sizes, params: { window: windows[0] } });
      kernel.encode(encoder, { q, k, v, out: outs[1], lse: lses[1], sizes, params: { window: windows[1] } });
      prepared.encode(encoder);
      device.queue.submit([encoder.finish()]);
    }
    for (let i = 0; i < 3; i++) {
      const ref = referenceFor(e.compiled, { ...c, params: { window: windows[i]! } }, qkv);
      const res = {
        out: await read(device, outs[i]!, nOut),
        lse: await read(device, lses[i]!, c.B * c.H * c.Nq),
      };
      expectAgrees(res, ref, `launch ${i} (window ${windows[i]})`);
    }
    prepared.destroy();
    kernel.destroy();
    for (const b of [q, k, v, ...outs, ...lses]) b.destroy();
  });
});

describe('input validation names the buffer and its expected shape', () => {
  const sizes = { B: 1, H: 2, Hkv: 1, Nq: 5, Nk: 7 };

  async function errorOf(run: () => Promise<unknown>): Promise<Error & { issues?: string[] }> {
    try {
      await run();
    } catch (e) {
      return e as Error;
    }
    throw new Error('expected an error');
  }

  it('wrong lengths, wrong arrays, missing tensors, bad params and sizes; all at once', async () => {
    const e = await emitStdlib('document');
    const mod = await load(e);
    const kernel = await mod.createKernel(await getDevice());
    const D = 32;
    const q = new Float32Array(1 * 2 * 5 * D);
    const k = new Float32Array(7 * D);
    let err = await errorOf(() =>
      kernel.dispatch({ q, k: new Float32Array(6 * D), v: k, doc: new Int32Array(7), sizes }),
    );
    expect(err).toBeInstanceOf(mod.KernelInputError);
    expect(err.message).toContain(
      'input "k": expected f32[B=1, Hkv=1, Nk=7, D=32] (224 elements, a Float32Array), got Float32Array of 192 elements',
    );

    err = await errorOf(() => kernel.dispatch({ q, k, v: k, doc: new Float32Array(7), sizes, extra: 1 }));
    expect(err.issues).toEqual([
      'argument "extra": the kernel has no such argument (known: q, k, v, doc, sizes, params, qOffset, kOffset, scale, kvCache)',
      'tensor "doc": expected i32[Nk=7] (7 elements, an Int32Array), got Float32Array of 7 elements',
    ]);

    err = await errorOf(() => kernel.dispatch({ q, k, v: k, sizes, params: { window: 3 }, qOffset: 1.5 }));
    expect(err.message).toContain('param "window": the kernel has no such param (known: none)');
    expect(err.message).toContain('qOffset: expected an i32 (integer), got number 1.5');

    err = await errorOf(() =>
      kernel.dispatch({ q, k, v: k, doc: new Int32Array(7), sizes: { ...sizes, H: 3, Hkv: 2 } }),
    );
    expect(err.message).toContain('H (3) must be a multiple of Hkv (2)');

    // D is compiled in (32 here): buffers sized for D 64 would pass the length checks, so a
    // sizes.D is refused rather than dropped.
    err = await errorOf(() =>
      kernel.dispatch({ q, k, v: k, doc: new Int32Array(7), sizes: { ...sizes, D: 64 } }),
    );
    expect(err.message).toContain('size "D": the kernel has no such size (known: B, H, Hkv, Nq, Nk)');

    const encoder = (await getDevice()).createCommandEncoder();
    err = await errorOf(async () => kernel.encode(encoder, { q, sizes }));
    expect(err.message).toMatch(
      /buffer "q": expected a GPUBuffer or \{ buffer, offset\?, size\? \} holding f32\[B=1, H=2, Nq=5, D=32\], got Float32Array/,
    );
    expect(err.message).toContain('buffer "lse": expected a GPUBuffer');
    kernel.destroy();
    err = await errorOf(() => kernel.dispatch({ q, k, v: k, doc: new Int32Array(7), sizes }));
    expect(err.message).toContain('was destroyed');
  });

  it('params: missing required, wrong types', async () => {
    const e = await emitSource(customSource);
    const kernel = await (await load(e)).createKernel(await getDevice());
    const q = new Float32Array(2 * 5 * 32);
    const k = new Float32Array(7 * 32);
    const base = { q, k, v: k, gain: new Float32Array(3), sizes };
    let err = await errorOf(() => kernel.dispatch(base));
    expect(err.message).toContain('param "n": missing (i32, no default)');
    err = await errorOf(() => kernel.dispatch({ ...base, params: { n: 2.5, flag: 1 } }));
    expect(err.issues).toEqual([
      'param "n" (i32): expected an integer in [-2147483648, 2147483647], got number 2.5',
      'param "flag" (bool): expected true or false, got number 1',
    ]);
    err = await errorOf(() => kernel.dispatch({ ...base, params: { n: 4 } }));
    expect(err.message).toContain(
      'tensor "gain": expected f32[n=4] (4 elements, a Float32Array), got Float32Array of 3 elements',
    );
    kernel.destroy();
  });
});
