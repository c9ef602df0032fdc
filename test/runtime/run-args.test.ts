// createKernel(...).run names a bad arguments object instead of failing with a TypeError, and
// refuses wrapped positions before anything reaches the GPU (issue #9 items 3, 13). WebGPU.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { quantize } from '../../src/quant/quantize.js';
import { InputError } from '../../src/runtime/validate.js';
import { createKernel, getDevice, type KernelOptions, type RunInputs } from '../../src/runtime/webgpu.js';

describe('GpuKernel.run arguments', () => {
  it('a missing or non-object inputs argument is an InputError naming it', async () => {
    const artifact = compile('attention c() { mask causal }', { target: 'wgsl', headDim: 16 }).artifact;
    const kernel = await createKernel(await getDevice(), artifact);
    for (const bad of [null, undefined, 3, [1]]) {
      await expect(kernel.run(bad as unknown as RunInputs)).rejects.toThrow(
        /^run\(inputs\): expected an object \{ q, k, v, B, H, Hkv, Nq, Nk, \.\.\. \}, got /,
      );
    }
    const n = 8 * 16;
    const wrapped = kernel.run({
      ...{ q: new Float32Array(n), k: new Float32Array(n), v: new Float32Array(n) },
      ...{ B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8, qOffset: 2147483644, kOffset: 2147483640 },
    });
    await expect(wrapped).rejects.toBeInstanceOf(InputError);
    await expect(wrapped).rejects.toThrow(/^qOffset: query positions \[2147483644, 2147483651\] leave int32/);
    // A grid past the device's per-dimension limit is an input problem, raised before any upload.
    const B = (await getDevice()).limits.maxComputeWorkgroupsPerDimension + 1;
    const big = kernel.run({
      ...{ q: new Float32Array(B * 16), k: new Float32Array(B * 16), v: new Float32Array(B * 16) },
      ...{ B, H: 1, Hkv: 1, Nq: 1, Nk: 1 },
    });
    await expect(big).rejects.toBeInstanceOf(InputError);
    await expect(big).rejects.toThrow(
      `attention: grid [1, 1, ${B}] exceeds ${B - 1} workgroups per dimension`,
    );
    kernel.destroy();
  });

  it('createKernel names a wrong device or artifact (it read "Cannot read properties of null")', async () => {
    const compiled = compile('attention c() { mask causal }', { target: 'wgsl', headDim: 16 });
    const device = await getDevice();
    const create = (d: unknown, a: unknown) => createKernel(d as GPUDevice, a as typeof compiled.artifact);
    await expect(create(device, null)).rejects.toThrow(
      /^createKernel\(device, artifact\): artifact must be an Artifact from compile\(\), got null$/,
    );
    await expect(create(device, compiled)).rejects.toThrow(
      /pass compile\(\.\.\.\)\.artifact, got an object$/,
    );
    await expect(create(null, compiled.artifact)).rejects.toThrow(
      /^createKernel\(device, artifact\): device must be a GPUDevice \(getDevice\(\)\), got null$/,
    );
    await expect(create(compiled.artifact, device)).rejects.toThrow(/device must be a GPUDevice/);
  });

  it('createKernel names bad options (decode: "nope" ran as "auto"; Decode was dropped)', async () => {
    const artifact = compile('attention c() { mask causal }', { target: 'wgsl', headDim: 16 }).artifact;
    const device = await getDevice();
    const create = (options: unknown) => createKernel(device, artifact, options as KernelOptions);
    await expect(create({ decode: 'nope' })).rejects.toThrow(
      'createKernel(device, artifact, options): decode must be "auto", "always" or "never", got string nope',
    );
    await expect(create({ debug: 'yes' })).rejects.toThrow(
      'createKernel(device, artifact, options): debug must be true or false, got string yes',
    );
    await expect(create({ Decode: 'never' })).rejects.toThrow(
      'createKernel(device, artifact, options): unknown option "Decode"; did you mean "decode"?',
    );
    await expect(create(null)).rejects.toThrow(
      'createKernel(device, artifact, options): options must be an object { debug?, decode? }, got null',
    );
    for (const ok of [undefined, {}, { decode: 'never', debug: false }]) (await create(ok)).destroy();
  });

  it('a param or tensor beside q/k/v, or a misspelt key, is named instead of dropped', async () => {
    // These ran with window = 8 (the default) and returned its answer without a word.
    const source =
      'attention w(window: int = 8, doc: i32[kv]) { mask causal && q - k < window && doc[q] == doc[k] }';
    const artifact = compile(source, { target: 'wgsl', headDim: 16 }).artifact;
    const kernel = await createKernel(await getDevice(), artifact);
    const n = 8 * 16;
    const base = {
      ...{ q: new Float32Array(n), k: new Float32Array(n), v: new Float32Array(n) },
      ...{ B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8, tensors: { doc: new Int32Array(8) } },
    };
    const misplaced = { ...base, window: 2, doc: new Int32Array(8), param: { window: 2 } } as RunInputs;
    await expect(kernel.run(misplaced)).rejects.toThrow(
      new InputError([
        '"window" is a param of kernel "w": pass it as params: { window: … }',
        '"doc" is a tensor of kernel "w": pass it as tensors: { doc: … }',
        'run(inputs): unknown key "param"; did you mean "params"?',
      ]),
    );
    const offset = { ...base, q_offset: 3 } as RunInputs;
    await expect(kernel.run(offset)).rejects.toThrow('unknown key "q_offset"; did you mean "qOffset"?');
    // The emitted module's dispatch takes sizes: { B, H, ... }; run() read each size as missing.
    const { B: _B, H: _H, Hkv: _Hkv, Nq: _Nq, Nk: _Nk, ...noSizes } = base;
    const nested = { ...noSizes, sizes: { B: 1, H: 1, Hkv: 1, Nq: 8, Nk: 8 } } as unknown as RunInputs;
    await expect(kernel.run(nested)).rejects.toThrow(
      new InputError([
        'run(inputs): the sizes go beside q, k, v ({ q, k, v, B, H, Hkv, Nq, Nk, ... }), not in sizes: { ... } as an emitted module takes them',
      ]),
    );
    // A GPUBuffer for q read "got object".
    const gpu = (await getDevice()).createBuffer({ size: 4 * n, usage: 0x80 });
    await expect(kernel.run({ ...base, q: gpu } as unknown as RunInputs)).rejects.toThrow(
      new InputError([
        'input "q": expected f32[1, 1, 8, 16] (128 elements), got a GPUBuffer of 512 bytes (run() takes host arrays; an emitted module\'s encode or prepare takes GPUBuffers)',
      ]),
    );
    // Keys that are nobody's pass: callers spread wider objects into the inputs.
    const wider = { ...base, seed: 1, label: 'layer 3', sizes: { B: 1 } } as RunInputs;
    expect((await kernel.run(wider)).out).toHaveLength(n);
    kernel.destroy();
  });

  it('a quantized cache part the format lacks, or a cache for float k/v, is named instead of ignored', async () => {
    // The kernel read its own parts and ignored the rest: a cache quantized with a normalizer,
    // passed to a kernel whose format has none, ran and gave garbage without a word.
    const c = compile('attention s() { store k int8 scale f32 per token }', { target: 'wgsl', headDim: 16 });
    const kernel = await createKernel(await getDevice(), c.artifact);
    const sizes = { B: 1, Hkv: 1, Nk: 8, D: 16 };
    const cache = quantize(checkedFormats(c.decl).k!, new Float32Array(8 * 16).fill(0.5), sizes);
    const n = 8 * 16;
    const base = {
      q: new Float32Array(n),
      k: new Float32Array(0),
      v: new Float32Array(n),
      B: 1,
      H: 1,
      Hkv: 1,
      Nq: 8,
      Nk: 8,
    };
    const stray = { ...base, caches: { k: { ...cache, norm: cache.scale! }, v: cache } };
    await expect(kernel.run(stray)).rejects.toThrow(
      new InputError([
        'caches.k.norm: the k format of kernel "s" has no norm (its parts: codes, scale); was this cache made for another format?',
        'caches.v: kernel "s" reads v as floats (no `store` for it); pass them as v',
      ]),
    );
    expect((await kernel.run({ ...base, caches: { k: cache } })).out).toHaveLength(n);
    // A part given as null was a TypeError (null.data); a plain Array was described as undefined.
    const part = (scale: unknown) =>
      ({ ...base, caches: { k: { ...cache, scale } } }) as unknown as RunInputs;
    await expect(kernel.run(part(null))).rejects.toThrow(
      new InputError(['cache tensor caches.k.scale: expected f32[1, 1, 8, 1] (8 elements), got null']),
    );
    await expect(kernel.run(part([1, 2, 3, 4, 5, 6, 7, 8]))).rejects.toThrow(
      new InputError([
        'cache tensor caches.k.scale: expected f32[1, 1, 8, 1] (8 elements), got a plain Array of 8 elements',
      ]),
    );
    kernel.destroy();
  });
});
