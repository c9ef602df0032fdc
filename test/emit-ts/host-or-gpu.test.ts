// dispatch takes host arrays and encode/prepare take GPUBuffers: an engine passing one where the
// other belongs read "got an object" (a GPUBuffer to dispatch) or a bare type mismatch. Each
// message now says which call takes what it was given.
import { beforeAll, describe, expect, it } from 'vitest';
import { getDevice } from '../../src/runtime/webgpu.js';
import { emitStdlib, importModule, type GeneratedKernel } from './support.js';

const [B, H, Hkv, Nq, Nk, D] = [1, 1, 1, 4, 4, 32];
const sizes = { B, H, Hkv, Nq, Nk };
let device: GPUDevice;
let kernel: GeneratedKernel;

beforeAll(async () => {
  device = await getDevice();
  const mod = await importModule<{ createKernel(d: GPUDevice): Promise<GeneratedKernel> }>(
    'causal_host_gpu',
    (await emitStdlib('causal', 'js')).files['causal.js']!,
  );
  kernel = await mod.createKernel(device);
}, 120_000);

describe('host arrays and GPUBuffers in the wrong call', () => {
  it('dispatch names a GPUBuffer as one and points to encode/prepare', async () => {
    const buf = device.createBuffer({ size: 4 * Nq * D, usage: 0x80 });
    const host = new Float32Array(Nq * D);
    await expect(kernel.dispatch({ q: buf, k: host, v: host, sizes })).rejects.toThrow(
      'input "q": expected f32[B=1, H=1, Nq=4, D=32] (128 elements, a Float32Array), got a GPUBuffer of 512 bytes (GPUBuffers go to encode or prepare; dispatch takes host arrays)',
    );
  });

  it('encode names a host array and points to dispatch', () => {
    const host = new Float32Array(Nq * D);
    const buf = () => device.createBuffer({ size: 4 * Nq * D, usage: 0x80 });
    expect(() =>
      kernel.encode(device.createCommandEncoder(), {
        q: host,
        k: buf(),
        v: buf(),
        out: buf(),
        lse: buf(),
        sizes,
      }),
    ).toThrow(
      'buffer "q": expected a GPUBuffer or { buffer, offset?, size? } holding f32[B=1, H=1, Nq=4, D=32], got Float32Array of 128 elements (host arrays go to dispatch)',
    );
  });
});
