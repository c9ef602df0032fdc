// createKernel's own arguments in an emitted module, and the device it is given: something that is
// no GPUDevice, an options object of the wrong kind or with a misspelt key, and a device lacking the
// "subgroups" feature that a coop schedule was compiled for are KernelInputErrors or device errors
// naming the argument or the feature — never a TypeError from inside, or a WGSL error from Dawn.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { formatFiles } from '../../src/codegen/emit-ts-format.js';
import { findAdapter } from '../../src/runtime/device.js';
import { deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { stdlibPath } from '../support/stdlib.js';
import { emitStdlib, importModule, type GeneratedKernel } from './support.js';

interface Module {
  createKernel(device: unknown, options?: unknown): Promise<GeneratedKernel>;
}

const causal = readFileSync(stdlibPath('causal.attn'), 'utf8');

async function dualModule(): Promise<Module> {
  const one = (wgslEngine: 'row' | 'coop') => compile(causal, { target: 'wgsl', headDim: 16, wgslEngine });
  const { files } = emitKernelModule(one('row').artifact, { lang: 'js', alternate: one('coop').artifact });
  return importModule<Module>('causal_dual', (await formatFiles(files))['causal.js']!);
}

describe('emitted createKernel(device, options)', () => {
  it('names a device argument that is no GPUDevice (single- and dual-engine modules)', async () => {
    const single = await importModule<Module>(
      'causal_single',
      (await emitStdlib('causal', 'js')).files['causal.js']!,
    );
    const dual = await dualModule();
    for (const mod of [single, dual]) {
      for (const bad of [undefined, null, {}, { limits: {} }, 'gpu']) {
        await expect(mod.createKernel(bad)).rejects.toThrow(
          /createKernel\(device\): expected a GPUDevice, got/,
        );
        await expect(mod.createKernel(bad)).rejects.toHaveProperty('name', 'KernelInputError');
      }
    }
  }, 120_000);

  it('refuses options that are no object, or have a key it does not know', async () => {
    const device = await getDevice();
    const dual = await dualModule();
    await expect(dual.createKernel(device, null)).rejects.toThrow(
      'createKernel(device, options): options: expected an object { engine? }, got null',
    );
    await expect(dual.createKernel(device, 'coop')).rejects.toThrow(
      'options: expected an object { engine? }, got string coop',
    );
    await expect(dual.createKernel(device, { engin: 'coop' })).rejects.toThrow(
      'createKernel(device, options): option "engin": no such option (known: engine)',
    );
    // What stays accepted: no options, an empty object, a known engine.
    for (const ok of [undefined, {}, { engine: 'row' }]) (await dual.createKernel(device, ok)).destroy();
  }, 120_000);

  it('a single-engine module refuses an engine it does not carry instead of running its own', async () => {
    const device = await getDevice();
    const single = await importModule<Module>(
      'causal_engine',
      (await emitStdlib('causal', 'js')).files['causal.js']!,
    );
    await expect(single.createKernel(device, { engine: 'coop' })).rejects.toThrow(
      'createKernel(device, options): engine "coop": this module carries the "row" engine only ' +
        '(attnc compile without --wgsl-engine writes a module with both)',
    );
    await expect(single.createKernel(device, { engin: 'row' })).rejects.toThrow(
      'createKernel(device, options): option "engin": no such option (known: engine)',
    );
    for (const ok of [undefined, {}, { engine: 'row' }]) (await single.createKernel(device, ok)).destroy();
  }, 120_000);

  it('names the "subgroups" feature a coop schedule needs when the device lacks it', async () => {
    const full = await getDevice();
    const limits = deviceLimits(full);
    const { artifact } = compile(causal, { target: 'wgsl', headDim: 16, wgslEngine: 'coop', limits });
    // lavapipe has subgroups, so the schedule uses them; a device requested without the feature lacks it.
    expect(artifact.schedule.subgroups).toBe(true);
    const mod = await importModule<Module>(
      'causal_subgroups',
      (await formatFiles(emitKernelModule(artifact, { lang: 'js' }).files))['causal.js']!,
    );
    const { adapter } = (await findAdapter())!;
    const l = full.limits;
    const bare = await adapter.requestDevice({
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      },
    });
    expect(bare.features.has('subgroups')).toBe(false);
    await expect(mod.createKernel(bare)).rejects.toThrow(
      'kernel "causal" cannot run on this device: subgroup reductions need the "subgroups" feature, which the device lacks',
    );
    bare.destroy();
  }, 120_000);
});
