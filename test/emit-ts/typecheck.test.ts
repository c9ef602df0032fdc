// Emitted modules type-check against @webgpu/types under strict settings (strict,
// noUncheckedIndexedAccess, noUnused*, exactOptionalPropertyTypes), and their argument types are
// exact: a missing buffer, a wrong TypedArray, an unknown or mistyped param fail to compile.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { customSource, emitSource, emitStdlib, typecheckGroups, type Emitted } from './support.js';

const arrayOf: Record<string, string> = { f32: 'Float32Array', f16: 'Uint16Array', i32: 'Int32Array' };

/** A call site using every entry of the module's API with correct arguments. */
function usage(a: Artifact, module: string): string {
  const inputs = a.bindings.filter((b) => ['q', 'k', 'v', 'tensor'].includes(b.role));
  const host = inputs.map((b) => `${b.name}: new ${arrayOf[b.dtype]}(4)`).join(', ');
  const gpu = a.bindings
    .filter((b) => ['q', 'k', 'v', 'tensor', 'out', 'lse'].includes(b.role))
    .map((b) => `${b.name}: buf`)
    .join(', ');
  const required = a.params.filter((p) => p.default === undefined);
  const params = required.length ? `, params: { ${required.map((p) => `${p.name}: 2`).join(', ')} }` : '';
  const lse = a.bindings.some((b) => b.role === 'lse') ? 'const lse: Float32Array = r.lse;\n  void lse;' : '';
  return `import { createKernel, KernelInputError, bindGroupLayoutEntries, wgsl, uniformLayout, type DispatchResult } from './${module}.js';
export async function use(device: GPUDevice, encoder: GPUCommandEncoder, buf: GPUBuffer): Promise<Float32Array> {
  const kernel = await createKernel(device);
  const sizes = { B: 1, H: 2, Hkv: 1, Nq: 2, Nk: 2 };
  const r: DispatchResult = await kernel.dispatch({ ${host}, sizes${params}, qOffset: 0, scale: 0.5 });
  ${lse}
  kernel.encode(encoder, { ${gpu}, sizes${params} });
  const ranges = { ${gpu.replace('q: buf', 'q: { buffer: buf, offset: 256, size: 64 }')} };
  const launch = kernel.prepare({ ...ranges, sizes${params}, kOffset: 1 });
  launch.encode(encoder);
  launch.update({ sizes: { Nk: 3 }, qOffset: undefined, scale: 0.5 });
  launch.destroy();
  kernel.destroy();
  const layout: GPUBindGroupLayoutDescriptor = { entries: bindGroupLayoutEntries };
  void [layout, wgsl.length, uniformLayout.bytes, KernelInputError];
  return r.out;
}
`;
}

const cases: [string, () => Promise<Emitted>][] = [
  ['document (i32 tensor, summary pass)', () => emitStdlib('document')],
  ['sink_calibration (f32 tensor, int param)', () => emitStdlib('sink_calibration')],
  ['softcap (f32 param)', () => emitStdlib('softcap')],
  ['causal (no params, no tensors)', () => emitStdlib('causal')],
  ['causal without lse', () => emitStdlib('causal', 'ts', { lse: false })],
  ['causal without its decode variant', () => emitStdlib('causal', 'ts', {}, { decode: false })],
  ['custom (required param, bool, tensor shaped by a param)', () => emitSource(customSource)],
  [
    'sliding_window, f16 storage',
    () => emitStdlib('sliding_window', 'ts', { dtype: 'f16', limits: { shaderF16: true } }),
  ],
];

describe('emitted TypeScript modules type-check (strict, noUncheckedIndexedAccess)', () => {
  const emitted: Emitted[] = [];
  let diagnostics: Record<string, string[]> = {};
  // One program for every module (each in its folder): a program per module is several times slower.
  beforeAll(async () => {
    emitted.push(...(await Promise.all(cases.map(([, emit]) => emit()))));
    const groups = emitted.map(({ compiled, files }) => ({
      ...files,
      'use.ts': usage(compiled.artifact, compiled.artifact.name),
    }));
    diagnostics = typecheckGroups(Object.fromEntries(groups.map((g, i) => [`m${i}`, g])));
  });

  cases.forEach(([label], i) => {
    it(label, () => {
      const name = emitted[i]!.compiled.artifact.name;
      expect(Object.keys(emitted[i]!.files)).toEqual([`${name}.ts`]);
      expect(diagnostics[`m${i}`]).toEqual([]);
    });
  });

  it('--emit js: the .d.ts types the same API (and the .js has no TypeScript syntax left)', async () => {
    const groups: Record<string, Record<string, string>> = {};
    for (const emit of [() => emitStdlib('document', 'js'), () => emitSource(customSource, 'js')]) {
      const { compiled, files } = await emit();
      const name = compiled.artifact.name;
      expect(Object.keys(files).sort()).toEqual([`${name}.d.ts`, `${name}.js`]);
      expect(files[`${name}.js`]).not.toMatch(/\binterface\b|: GPUDevice|«|»/);
      groups[name] = { [`${name}.d.ts`]: files[`${name}.d.ts`]!, 'use.ts': usage(compiled.artifact, name) };
    }
    expect(Object.values(typecheckGroups(groups)).flat()).toEqual([]);
  });
});

describe('argument types are exact', () => {
  const call = (args: string, method = 'dispatch') => `import { createKernel } from './document.js';
export async function use(device: GPUDevice, buf: GPUBuffer): Promise<void> {
  const q = new Float32Array(4), k = q, v = q;
  void [q, k, v, buf];
  const sizes = { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 2 };
  await (await createKernel(device)).${method}(${method === 'encode' ? 'device.createCommandEncoder(), ' : ''}${args});
}
`;
  const custom = (params: string) => `import { createKernel } from './custom.js';
export async function use(device: GPUDevice): Promise<void> {
  const q = new Float32Array(4), k = q, v = q, gain = q;
  const sizes = { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 2 };
  await (await createKernel(device)).dispatch({ q, k, v, gain, sizes${params} });
}
`;
  const documentCalls: Record<string, [string, string?]> = {
    correct: ['{ q, k, v, doc: new Int32Array(2), sizes }'],
    missingBuffer: ['{ q, k, v, sizes }'],
    wrongArray: ['{ q, k, v, doc: new Float32Array(2), sizes }'],
    paramsWithoutParams: ['{ q, k, v, doc: new Int32Array(2), sizes, params: {} }'],
    unknownArgument: ['{ q, k, v, doc: new Int32Array(2), sizes, Nq: 2 }'],
    encodeWithoutLse: ['{ q: buf, k: buf, v: buf, doc: buf, out: buf, sizes }', 'encode'],
    prepareWithoutLse: ['{ q: buf, k: buf, v: buf, doc: buf, out: buf, sizes }', 'prepare'],
    prepareHostArray: ['{ q, k: buf, v: buf, doc: buf, out: buf, lse: buf, sizes }', 'prepare'],
  };
  const customCalls: Record<string, string> = {
    required: ', params: { n: 2 }',
    withBool: ', params: { n: 2, flag: false }',
    noParams: '',
    missingRequired: ', params: { flag: true }',
    boolAsNumber: ', params: { n: 2, flag: 1 }',
    unknownParam: ', params: { n: 2, window: 3 }',
  };
  const update = (module: string, changes: string) => `import { createKernel } from './${module}.js';
export async function use(device: GPUDevice, buf: GPUBuffer, args: Parameters<Awaited<ReturnType<typeof createKernel>>['prepare']>[0]): Promise<void> {
  void buf;
  (await createKernel(device)).prepare(args).update(${changes});
}
`;
  const updateCalls: Record<string, [string, string]> = {
    updateGood: ['custom', '{ params: { flag: false }, sizes: { Nq: 3 } }'],
    updateWrongParam: ['custom', '{ params: { n: true } }'],
    updateParamsWithoutParams: ['document', '{ params: {} }'],
    updateBuffer: ['document', '{ q: buf }'],
  };
  let errors: Record<string, string> = {};
  beforeAll(async () => {
    const doc = (await emitStdlib('document')).files;
    const cus = (await emitSource(customSource)).files;
    const groups: Record<string, Record<string, string>> = {};
    for (const [key, [module, changes]] of Object.entries(updateCalls)) {
      groups[key] = { ...(module === 'document' ? doc : cus), 'use.ts': update(module, changes) };
    }
    for (const [key, [args, method]] of Object.entries(documentCalls)) {
      groups[key] = { ...doc, 'use.ts': call(args, method) };
    }
    for (const [key, params] of Object.entries(customCalls))
      groups[key] = { ...cus, 'use.ts': custom(params) };
    errors = Object.fromEntries(Object.entries(typecheckGroups(groups)).map(([k, d]) => [k, d.join('\n')]));
  });

  it('the correct calls compile', () => {
    for (const key of ['correct', 'required', 'withBool']) expect(errors[key], key).toBe('');
  });

  it('a missing buffer fails', () => {
    expect(errors.missingBuffer).toMatch(/TS2345.*Property 'doc' is missing/s);
  });

  it('the wrong TypedArray fails', () => {
    expect(errors.wrongArray).toMatch(/TS2\d+.*'Float32Array.*' is not assignable to type 'Int32Array/s);
  });

  it('params on a kernel without params, and unknown arguments, fail', () => {
    expect(errors.paramsWithoutParams).toMatch(/TS2353.*'params' does not exist/s);
    expect(errors.unknownArgument).toMatch(/TS2353.*'Nq'/s);
  });

  it('encode and prepare need GPUBuffers, out and lse included', () => {
    expect(errors.encodeWithoutLse).toMatch(/TS2345.*Property 'lse' is missing/s);
    expect(errors.prepareWithoutLse).toMatch(/Property 'lse' is missing/);
    expect(errors.prepareHostArray).toMatch(
      /Type 'Float32Array.*' is missing the following properties from type 'GPUBuffer'/s,
    );
  });

  it("prepared.update takes sizes, offsets, scale and the kernel's params, each optional; no buffers", () => {
    expect(errors.updateGood).toBe('');
    expect(errors.updateWrongParam).toMatch(/'boolean' is not assignable to type 'number'/);
    expect(errors.updateParamsWithoutParams).toMatch(/TS2353.*'params' does not exist/s);
    expect(errors.updateBuffer).toMatch(/TS2353.*'q' does not exist/s);
  });

  it('params: required ones must be given, names and types must match', () => {
    expect(errors.noParams).toMatch(/Property 'params' is missing/);
    expect(errors.missingRequired).toMatch(/Property 'n' is missing/);
    expect(errors.boolAsNumber).toMatch(/'number' is not assignable to type 'boolean'/);
    expect(errors.unknownParam).toMatch(/TS2353.*'window'/s);
  });
});
