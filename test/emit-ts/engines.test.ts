// Emitted modules that carry both WGSL engines (EmitModuleOptions.alternate): createKernel picks
// row on a software adapter (lavapipe here) and coop on hardware, or what its `engine` option
// says; each choice runs on lavapipe against the float64 reference, in attention and decode mode,
// self-contained and with the shared runtime; the TypeScript module type-checks strictly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../../src/compile.js';
import { emitKernelModule, emitRuntimeModule, type EmitLanguage } from '../../src/codegen/emit-ts.js';
import { COOP_MODULE_TIERS } from '../../src/codegen/emit-ts-engines.js';
import { formatFiles } from '../../src/codegen/emit-ts-format.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { deviceLimits, getDevice } from '../../src/runtime/webgpu.js';
import { lightCoopDecode } from '../support/light-decode.js';
import { stdlibPath } from '../support/stdlib.js';
import {
  dispatchArgs,
  importFolder,
  importModule,
  importTs,
  inputsFor,
  referenceFor,
  typecheck,
  type Case,
  type GeneratedKernel,
} from './support.js';

type Engine = 'row' | 'coop';

interface DualModule {
  readonly engines: readonly Engine[];
  readonly wgsl: string;
  engineFor(device: GPUDevice): Engine;
  createKernel(device: GPUDevice, options?: { engine?: unknown }): Promise<GeneratedKernel>;
}

const documentSource = readFileSync(stdlibPath('document.attn'), 'utf8');

async function compileBoth(source: string, primary: Engine, options: Partial<CompileOptions> = {}) {
  const limits = deviceLimits(await getDevice());
  const one = (wgslEngine: Engine) =>
    compile(source, { target: 'wgsl', headDim: 32, limits, wgslEngine, ...options });
  const other: Engine = primary === 'row' ? 'coop' : 'row';
  return { main: one(primary), alt: one(other) };
}

async function emitDual(
  primary: Engine,
  lang: EmitLanguage,
  sharedRuntime = false,
): Promise<{ mod: DualModule; compiled: ReturnType<typeof compile>; files: Record<string, string> }> {
  const { main, alt } = await compileBoth(documentSource, primary);
  // The coop artifact's decode module at fewer invocations (lightCoopDecode): lavapipe compiles it
  // in a third of the time, and which engine runs is the point here, not its knobs.
  const [m, a] = [lightCoopDecode(main.artifact), lightCoopDecode(alt.artifact)];
  const emitted = emitKernelModule(m, { lang, alternate: a, sharedRuntime });
  const files = await formatFiles(emitted.files);
  const name = main.artifact.name;
  const mod = sharedRuntime
    ? (
        await importFolder<DualModule>({ ...files, ...(await formatFiles(emitRuntimeModule(lang))) }, [name])
      )[0]!
    : lang === 'ts'
      ? await importTs<DualModule>(name, files[`${name}.ts`]!)
      : await importModule<DualModule>(name, files[`${name}.js`]!);
  return { mod, compiled: main, files };
}

function docs(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => Math.floor(i / 23) + (i > 50 ? 1 : 0));
}

async function agrees(
  mod: DualModule,
  compiled: ReturnType<typeof compile>,
  c: Case,
  engine: Engine | undefined,
  device?: GPUDevice,
): Promise<void> {
  const kernel = await mod.createKernel(device ?? (await getDevice()), engine ? { engine } : {});
  try {
    const qkv = inputsFor(compiled, c);
    const res = await kernel.dispatch(dispatchArgs(c, qkv));
    const ref = referenceFor(compiled, c, qkv);
    const what = `${engine ?? 'default'} ${JSON.stringify({ ...c, tensors: undefined })}`;
    const out = compareArrays(res.out, ref.out, ref.outScale);
    expect(out.nanCount, what).toBe(0);
    expect(out.relError, what).toBeLessThanOrEqual(1e-5);
    expect(compareArrays(res.lse!, ref.lse, 1).relError, what).toBeLessThanOrEqual(1e-5);
  } finally {
    kernel.destroy();
  }
}

const prefill: Case = { B: 2, H: 4, Hkv: 2, Nq: 45, Nk: 70, seed: 3, tensors: { doc: docs(70) } };
// One query row over 700 keys: a launch that takes decode mode where the engine's split size
// gives two splits or more (the modules carry each engine's decode variant).
const decode: Case = { B: 1, H: 4, Hkv: 2, Nq: 1, Nk: 700, seed: 5, tensors: { doc: docs(700) } };

describe('emitted modules with both WGSL engines', () => {
  it.each<[Engine, EmitLanguage, boolean]>([
    ['row', 'ts', false],
    ['coop', 'js', false],
    ['row', 'js', true],
  ])(
    'primary %s, --emit %s, shared runtime %s: the default is row on lavapipe; both agree with the reference',
    async (primary, lang, shared) => {
      const { mod, compiled } = await emitDual(primary, lang, shared);
      const device = await getDevice();
      expect(mod.engines).toEqual(primary === 'row' ? ['row', 'coop'] : ['coop', 'row']);
      expect(mod.engineFor(device)).toBe(deviceLimits(device).softwareAdapter === false ? 'coop' : 'row');
      for (const engine of [undefined, 'row', 'coop'] as const) {
        await agrees(mod, compiled, prefill, engine);
        await agrees(mod, compiled, decode, engine);
      }
    },
    240_000,
  );

  it('the TypeScript module type-checks strictly and carries the coop WGSL once; the .d.ts types the option', async () => {
    const { files, compiled } = await emitDual('row', 'ts');
    expect(typecheck(files).join('\n')).toBe('');
    const text = files[`${compiled.artifact.name}.ts`]!;
    expect(text.match(/const CO_LANES: u32/g)).toHaveLength(1);
    expect(text).toContain('export function engineFor(');
    // --emit js: the .d.ts types createKernel's option for a caller.
    const js = await emitDual('coop', 'js');
    const caller = [
      "import { createKernel, engineFor, engines, type WgslEngine } from './document.js';",
      'export async function make(device: GPUDevice) {',
      '  const e: WgslEngine = engineFor(device);',
      '  return [engines.length, await createKernel(device, { engine: e }), await createKernel(device)];',
      '}',
    ].join('\n');
    const dts = { 'document.d.ts': js.files['document.d.ts']!, 'caller.ts': caller };
    expect(typecheck(dts)).toEqual([]);
    expect(typecheck({ ...dts, 'bad.ts': caller.replace('{ engine: e }', "{ engine: 'gpu' }") })).not.toEqual(
      [],
    );
  }, 120_000);

  it('an unknown engine option is refused by name', async () => {
    const { mod } = await emitDual('coop', 'js');
    await expect(mod.createKernel(await getDevice(), { engine: 'gpu' })).rejects.toThrow(
      /engine must be "row" or "coop", got gpu/,
    );
  }, 120_000);

  it('an alternate of another kernel is refused; one on the same engine is ignored', async () => {
    const { main } = await compileBoth(documentSource, 'row');
    const causal = compile(readFileSync(stdlibPath('causal.attn'), 'utf8'), {
      target: 'wgsl',
      headDim: 32,
      wgslEngine: 'coop',
    });
    expect(() => emitKernelModule(main.artifact, { alternate: causal.artifact })).toThrow(
      /alternate artifact differs in its name/,
    );
    const single = emitKernelModule(main.artifact).files;
    expect(emitKernelModule(main.artifact, { alternate: main.artifact }).files).toEqual(single);
  });
});

/** `device` with its createShaderModule calls recorded (the WGSL a kernel was built from). */
function recording(device: GPUDevice): { device: GPUDevice; codes: string[] } {
  const codes: string[] = [];
  const spy = new Proxy(device, {
    get(target, key) {
      if (key === 'createShaderModule')
        return (d: GPUShaderModuleDescriptor) => (codes.push(d.code), target.createShaderModule(d));
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { device: spy, codes };
}

describe('emitted modules with coop variants for several limit tiers (the CLI default)', () => {
  // The CLI's tiers: 48 KiB + subgroups (the measured best knob sets), 32 KiB + subgroups (the
  // measured sets that fit), then 32 KiB without. lavapipe offers 32 KiB and subgroups: the first
  // tier's tiles (256×32 at D ≤ 64: 41–45 KiB) do not fit, so createKernel
  // takes the second; the first tier's WGSL is checked on the H200 by bench/wgsl. The strict type
  // check covers the module's per-tier grids (an untyped literal once broke it).
  it.each([
    [64, 1],
    [32, 1],
  ])(
    'D = %i: createKernel takes tier %i on lavapipe; it agrees with the reference',
    async (D, tier) => {
      const device = await getDevice();
      const main = compile(documentSource, { target: 'wgsl', headDim: D, wgslEngine: 'row' });
      const tiers = COOP_MODULE_TIERS.map((limits) =>
        // The decode module at fewer invocations (lightCoopDecode), as in emitDual.
        lightCoopDecode(
          compile(documentSource, {
            target: 'wgsl',
            headDim: D,
            wgslEngine: 'coop',
            limits: { ...limits, shaderF16: false },
          }).artifact,
        ),
      );
      expect(tiers[0]!.schedule.coopPrefetch).toBe(true);
      expect(tiers[1]!.schedule.subgroups).toBe(true);
      expect(tiers[2]!.schedule.subgroups).toBe(false);
      const files = await formatFiles(
        emitKernelModule(main.artifact, { lang: 'js', alternate: tiers }).files,
      );
      const mod = await importModule<DualModule>(main.artifact.name, files[`${main.artifact.name}.js`]!);
      const spy = recording(device);
      await agrees(mod, main, prefill, 'coop', spy.device);
      expect(spy.codes).toContain(tiers[tier]!.code);
      for (const other of tiers.filter((t) => t.code !== tiers[tier]!.code))
        expect(spy.codes).not.toContain(other.code);
      // The decode variant of the chosen tier, and the row engine, still agree.
      await agrees(mod, main, decode, 'coop');
      await agrees(mod, main, prefill, 'row');
      expect(
        typecheck(await formatFiles(emitKernelModule(main.artifact, { alternate: tiers }).files)),
      ).toEqual([]);
    },
    240_000,
  );
});
