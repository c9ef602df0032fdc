// The emitted module refuses what the runtime refuses, in the runtime's words: params that would
// wrap or saturate (one rule, src/runtime/params.ts), offsets whose positions leave int32, a
// missing arguments object, and GPUBuffers a bind group cannot take (no STORAGE usage, mapped,
// too small, an output aliasing another argument) — each a KernelInputError naming the argument,
// thrown by encode itself rather than logged by Dawn at submit (issue #9 items 3, 4, 13).
import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { paramProblem, positionProblem, spanProblem } from '../../src/runtime/params.js';
import { InputError, validateRun } from '../../src/runtime/validate.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { emitSource, importModule, type GeneratedKernel, type GeneratedModule } from './support.js';

const source = `attention vals(window: int = 4, cap: f32 = 50.0, flag: bool = false) {
  score cap * tanh(score / cap)
  mask (flag || causal) && q - k < window
}
`;
const D = 16;
const sizes = { B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8 };
const host = () => ({ q: new Float32Array(8 * D), k: new Float32Array(8 * D), v: new Float32Array(8 * D) });

let mod: GeneratedModule;
let kernel: GeneratedKernel;
let device: GPUDevice;
beforeAll(async () => {
  const e = await emitSource(source, 'js', { headDim: D });
  mod = await importModule<GeneratedModule>('vals', e.files['vals.js']!);
  device = await getDevice();
  kernel = await mod.createKernel(device);
});

async function issuesOf(run: () => unknown): Promise<readonly string[]> {
  try {
    await run();
  } catch (e) {
    expect(e).toBeInstanceOf(mod.KernelInputError);
    return (e as InstanceType<GeneratedModule['KernelInputError']>).issues;
  }
  throw new Error('expected a KernelInputError');
}

describe('params: the runtime rule, the runtime words', () => {
  const f32Max = 3.4028234663852886e38;
  const values: unknown[] = [
    7,
    -0,
    1.5,
    1e40,
    -1e40,
    2 ** 31,
    -(2 ** 31),
    -(2 ** 31) - 1,
    4294967298,
    NaN,
    Infinity,
    f32Max,
    f32Max + 2 ** 103,
    1e-50,
    true,
    false,
    '3',
    null,
    {},
    [1],
  ];
  it.each(['window', 'cap', 'flag'] as const)('%s', async (name) => {
    const dtype = name === 'window' ? 'i32' : name === 'cap' ? 'f32' : 'bool';
    for (const value of values) {
      // A bad scale makes every call fail, so accepted params show as no issue of their own.
      const issues = await issuesOf(() =>
        kernel.dispatch({ ...host(), sizes, params: { [name]: value }, scale: 'x' }),
      );
      const own = issues.filter((m) => m.startsWith('param'));
      const want = paramProblem(name, dtype, value);
      expect(own, `${name} = ${String(value)}`).toEqual(want === undefined ? [] : [want]);
    }
  });
});

describe('positions stay inside int32', () => {
  it('qOffset 2147483644 with Nq = 8 is refused as the runtime refuses it', async () => {
    const args = { ...host(), sizes, qOffset: 2147483644, kOffset: 2147483640 };
    const want = positionProblem('qOffset', 2147483644, 8, 'Nq')!;
    expect(await issuesOf(() => kernel.dispatch(args))).toEqual([want]);
    const artifact = compile(source, { target: 'wgsl', headDim: D }).artifact;
    expect(() => validateRun(artifact, { ...args, ...sizes })).toThrow(new InputError([want]));
  });

  it('q - k leaving int32 is refused as the runtime refuses it', async () => {
    const args = { ...host(), sizes, qOffset: 2000000000, kOffset: -2000000000 };
    const want = spanProblem(2000000000, 8, -2000000000, 8)!;
    expect(want).toMatch(/q - k ranges over/);
    expect(await issuesOf(() => kernel.dispatch(args))).toEqual([want]);
    const artifact = compile(source, { target: 'wgsl', headDim: D }).artifact;
    expect(() => validateRun(artifact, { ...args, ...sizes })).toThrow(new InputError([want]));
  });

  it('params must be an object (an array was silently the defaults)', async () => {
    expect(await issuesOf(() => kernel.dispatch({ ...host(), sizes, params: [] }))).toEqual([
      'params: expected an object, got a plain Array of 0 elements',
    ]);
  });

  it('null is no default: refused like any other non-integer', async () => {
    const args = { ...host(), sizes, qOffset: null, kOffset: 1, scale: null };
    expect(await issuesOf(() => kernel.dispatch(args))).toEqual([
      'qOffset: expected an i32 (integer), got null',
      'scale: expected a finite number within f32 range, got null',
    ]);
  });

  it('kOffset likewise; the last positions that fit run', async () => {
    expect(await issuesOf(() => kernel.dispatch({ ...host(), sizes, kOffset: 2147483641 }))).toEqual([
      positionProblem('kOffset', 2147483641, 8, 'Nk'),
    ]);
    const res = await kernel.dispatch({ ...host(), sizes, qOffset: 2147483640, kOffset: 2147483640 });
    expect(res.out).toHaveLength(8 * D);
  });
});

describe('arguments that are not an object', () => {
  it.each([null, undefined, 5, 'q', [1]])('dispatch(%o)', async (args) => {
    expect(await issuesOf(() => kernel.dispatch(args as object))).toEqual([
      expect.stringMatching(/^dispatch\(args\): expected an object of buffers, sizes and params, got /),
    ]);
  });

  it('encode and prepare name the bad argument', async () => {
    const encoder = device.createCommandEncoder();
    const buf = () => device.createBuffer({ size: 8 * D * 4, usage: 0x80 });
    expect(await issuesOf(() => kernel.encode(encoder, null as unknown as object))).toEqual([
      'encode(encoder, args): expected an object of buffers, sizes and params, got null',
    ]);
    expect(await issuesOf(() => kernel.prepare(7 as unknown as object))).toEqual([
      'prepare(args): expected an object of buffers, sizes and params, got number 7',
    ]);
    expect(await issuesOf(() => kernel.encode(null as unknown as GPUCommandEncoder, {}))).toEqual([
      'encode(encoder, args): expected a GPUCommandEncoder, got null',
    ]);
    const prepared = kernel.prepare({ q: buf(), k: buf(), v: buf(), out: buf(), lse: buf(), sizes });
    expect(await issuesOf(() => prepared.encode({} as GPUCommandEncoder))).toEqual([
      'prepared.encode(encoder): expected a GPUCommandEncoder, got an object',
    ]);
    prepared.destroy();
  });
});

describe('encode: GPUBuffers a bind group can take', () => {
  const STORAGE = 0x80;
  const COPY_DST = 0x8;
  const made: GPUBuffer[] = [];
  const buffer = (size: number, usage = STORAGE | COPY_DST, mapped = false): GPUBuffer => {
    const b = device.createBuffer({ size, usage, mappedAtCreation: mapped });
    made.push(b);
    return b;
  };
  const good = () => ({
    q: buffer(8 * D * 4),
    k: buffer(8 * D * 4),
    v: buffer(8 * D * 4),
    out: buffer(8 * D * 4),
    lse: buffer(8 * 4),
    sizes,
  });

  it('accepts good buffers and Dawn reports nothing', async () => {
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    kernel.encode(encoder, good());
    device.queue.submit([encoder.finish()]);
    expect(await device.popErrorScope()).toBeNull();
  });

  it('refuses a buffer without STORAGE usage (Dawn logged it after encode returned)', async () => {
    const encoder = device.createCommandEncoder();
    expect(
      await issuesOf(() => kernel.encode(encoder, { ...good(), q: buffer(8 * D * 4, COPY_DST) })),
    ).toEqual([
      'buffer "q": the GPUBuffer lacks STORAGE usage (usage 0x8); create it with GPUBufferUsage.STORAGE',
    ]);
  });

  it('refuses a mapped buffer, a short one and an output aliasing an input, all at once', async () => {
    const g = good();
    const issues = await issuesOf(() =>
      kernel.prepare({ ...g, k: buffer(8 * D * 4, STORAGE, true), lse: buffer(16), out: g.v }),
    );
    expect(issues).toEqual([
      'buffer "k": the GPUBuffer is mapped; unmap it before encoding',
      'buffer "lse": f32[B=1, H=1, Nq=8] needs 32 bytes, the GPUBuffer has 16',
      'buffer "out": the same GPUBuffer is passed as "v"; an output needs a buffer no input reads',
    ]);
    for (const b of made) b.destroy();
  });

  it('names the device limit when a tensor needs more than one binding can hold', async () => {
    const max = device.limits.maxStorageBufferBindingSize;
    const Nk = Math.floor(max / (D * 4)) + 1; // K needs just over the limit
    const issues = await issuesOf(() => kernel.prepare({ ...good(), sizes: { ...sizes, Nk } }));
    expect(issues).toContain(
      `buffer "k": f32[B=1, Hkv=1, Nk=${Nk}, D=${D}] needs ${Nk * D * 4} bytes; the device binds at most ${max} per buffer (maxStorageBufferBindingSize): launch fewer heads or batches at a time`,
    );
    for (const b of made) b.destroy();
  });
});
