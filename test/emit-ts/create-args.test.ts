// createKernel's own arguments in an emitted module, and the device it is given: something that is
// no GPUDevice, and an options object of the wrong kind or with a misspelt key are KernelInputErrors
// naming the argument — never a TypeError from inside, nor a misspelt option silently ignored.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { formatFiles } from '../../src/codegen/emit-ts-format.js';
import { getDevice } from '../../src/runtime/webgpu.js';
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
});
