// The coop WGSL engine beyond what the engine-parameterized suites (property, execute) check:
// how the schedule picks it and its tiles, what it refuses, the non-finite contract, and decode
// mode on a coop artifact.
import { describe, expect, it } from 'vitest';
import { coopWorkgroupBytes } from '../../src/codegen/wgsl/coop-geometry.js';
import { wgslScheduleProblem } from '../../src/codegen/wgsl/limits.js';
import { compile } from '../../src/compile.js';
import { hashValue } from '../../src/hash.js';
import { createKernel, deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { checkDecode } from '../decode-check.js';
import { readStdlib } from '../support/stdlib.js';

const causal = 'attention causal() {\n  mask causal\n}\n';
const h200 = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups: true };

describe('coop engine selection', () => {
  it('is opt-in: without it (or with "row") the schedule and its hash are the row engine\u2019s', () => {
    const plain = compile(causal, { target: 'wgsl', headDim: 64 }).kernel.schedule;
    const row = compile(causal, { target: 'wgsl', headDim: 64, wgslEngine: 'row' }).kernel.schedule;
    expect(plain.wgslEngine).toBeUndefined();
    expect(hashValue(row)).toBe(hashValue(plain));
    const coop = compile(causal, { target: 'wgsl', headDim: 64, wgslEngine: 'coop' }).kernel.schedule;
    expect(coop.wgslEngine).toBe('coop');
    expect(hashValue(coop)).not.toBe(hashValue(plain));
  });

  it('takes the largest tile the device allows, subgroups where the device has them', () => {
    const big = compile(causal, { target: 'wgsl', headDim: 128, wgslEngine: 'coop', limits: h200 }).kernel
      .schedule;
    // The measured best knob set at D = 128 (schedule-rules.ts tunedCoop128).
    expect([big.blockQ, big.blockK, big.threads, big.subgroups, big.coopLanes]).toEqual([
      128,
      32,
      256,
      true,
      8,
    ]);
    expect([big.coopSplitKv, big.coopQGlobal, big.coopPrefetch]).toEqual([undefined, true, true]);
    expect(coopWorkgroupBytes(big)).toBeLessThanOrEqual(49152);
    const portable = compile(causal, { target: 'wgsl', headDim: 128, wgslEngine: 'coop' }).kernel.schedule;
    expect(coopWorkgroupBytes(portable)).toBeLessThanOrEqual(16384);
    expect(portable.subgroups).toBe(false);
  });

  it('runs routed kernels; leaves head dims that are not multiples of 4 on the row engine', () => {
    const routed = compile(readStdlib('biformer.attn'), { target: 'wgsl', headDim: 64, wgslEngine: 'coop' });
    expect(routed.kernel.schedule.wgslEngine).toBe('coop');
    expect(routed.artifact.code).toContain('co_unit_keys');
    const odd = compile(causal, { target: 'wgsl', headDim: 6, wgslEngine: 'coop' });
    expect(odd.kernel.schedule.wgslEngine).toBeUndefined();
    expect(odd.kernel.schedule.threads).toBe(odd.kernel.schedule.blockQ);
    // A threads override sized for coop lanes does not break the fallback.
    const tiles = { blockQ: 16, blockK: 16, threads: 32 };
    const empty = compile('attention none() {\n  mask false\n}\n', {
      target: 'wgsl',
      headDim: 8,
      wgslEngine: 'coop',
      schedule: tiles,
    });
    expect([empty.kernel.schedule.wgslEngine, empty.kernel.schedule.threads]).toEqual([undefined, 16]);
  });

  it('names what is wrong with a coop schedule it cannot run', () => {
    const s = compile(causal, { target: 'wgsl', headDim: 64, wgslEngine: 'coop' }).artifact.schedule;
    expect(wgslScheduleProblem({ ...s, threads: 3 * s.blockQ })).toMatch(/threads must divide 4·blockQ/);
    expect(wgslScheduleProblem({ ...s, blockK: 6 })).toMatch(/blockK to be a multiple of 4/);
    const noSubgroups = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, shaderF16: false };
    expect(wgslScheduleProblem({ ...s, subgroups: true }, noSubgroups)).toMatch(/feature "subgroups"/);
    expect(() =>
      compile(causal, { target: 'wgsl', headDim: 64, wgslEngine: 'coop', schedule: { blockK: 6 } }),
    ).toThrow(/blockK to be a multiple of 4/);
  });
});

describe('default WGSL engine by adapter', () => {
  /** A GPUDevice stand-in: the limits and features deviceLimits reads, and its adapter info. */
  const fakeDevice = (info: Partial<GPUAdapterInfo> | undefined): GPUDevice =>
    ({
      limits: {
        maxComputeWorkgroupStorageSize: 49152,
        maxComputeInvocationsPerWorkgroup: 1024,
        maxComputeWorkgroupSizeX: 1024,
      },
      features: new Set(['subgroups']),
      ...(info ? { adapterInfo: info } : {}),
    }) as unknown as GPUDevice;
  const engineOn = (device: GPUDevice): string | undefined =>
    compile(causal, { target: 'wgsl', headDim: 64, limits: deviceLimits(device) }).kernel.schedule.wgslEngine;

  it('is coop on a hardware adapter and row on CPU adapters or when the adapter is unknown', () => {
    const nvidia = {
      vendor: 'nvidia',
      architecture: 'hopper',
      device: '',
      description: 'NVIDIA H200',
      isFallbackAdapter: false,
    };
    expect(deviceLimits(fakeDevice(nvidia)).softwareAdapter).toBe(false);
    expect(engineOn(fakeDevice(nvidia))).toBe('coop');
    // SwiftShader does not always set isFallbackAdapter; its name says it.
    const swiftshader = {
      vendor: 'google',
      architecture: '',
      device: 'swiftshader',
      description: '',
      isFallbackAdapter: false,
    };
    expect(engineOn(fakeDevice(swiftshader))).toBeUndefined();
    expect(engineOn(fakeDevice(undefined))).toBeUndefined();
    // An explicit engine wins over the adapter.
    const rowOnGpu = compile(causal, {
      target: 'wgsl',
      headDim: 64,
      limits: deviceLimits(fakeDevice(nvidia)),
      wgslEngine: 'row',
    });
    expect(rowOnGpu.kernel.schedule.wgslEngine).toBeUndefined();
  });

  it('lavapipe reports itself as a CPU adapter, so its kernels stay on the row engine', async () => {
    const device = await getDevice();
    expect(deviceLimits(device).softwareAdapter).toBe(true);
  });
});

describe('coop engine on WebGPU', () => {
  it('a NaN in a key makes exactly the rows that see it NaN (out and lse); the others are finite', async () => {
    const device = await getDevice();
    const limits = deviceLimits(device);
    const [Nq, Nk, D] = [20, 20, 16];
    for (const subgroups of [false, limits.subgroups === true]) {
      const { artifact } = compile(causal, {
        target: 'wgsl',
        headDim: D,
        limits,
        wgslEngine: 'coop',
        schedule: { blockQ: 16, blockK: 16, threads: 32, subgroups },
      });
      const k = Float32Array.from({ length: Nk * D }, (_, i) => Math.sin(i));
      k[7 * D + 3] = NaN; // key 7: rows 7.. see it (causal, Nq = Nk)
      const q = Float32Array.from({ length: Nq * D }, (_, i) => Math.cos(i));
      const v = Float32Array.from({ length: Nk * D }, (_, i) => Math.sin(3 * i));
      const gpu = await createKernel(device, artifact, { debug: true });
      try {
        const res = await gpu.run({ q, k, v, B: 1, H: 1, Hkv: 1, Nq, Nk });
        for (let row = 0; row < Nq; row++) {
          const outRow = [...res.out.subarray(row * D, (row + 1) * D)];
          const nan = row >= 7;
          expect(
            outRow.every((x) => Number.isNaN(x) === nan),
            `row ${row} out`,
          ).toBe(true);
          expect(Number.isNaN(res.lse![row]), `row ${row} lse`).toBe(nan);
        }
      } finally {
        gpu.destroy();
      }
    }
  });

  it('decode mode of a coop artifact (its own split-KV module, decode-coop.ts) agrees with the reference', async () => {
    const shape = { B: 1, Hq: 4, Hkv: 2, Nq: 2, Nk: 700, D: 16, Dv: 16 };
    const res = await checkDecode({ source: causal, shape, tile: 16, engine: 'coop' });
    expect(res.decodeSplits).toBeGreaterThan(1);
  }, 120_000);
});
