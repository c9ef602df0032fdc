// The emitted module's `quantize(device, cache, args)`: runs the artifact's WGSL quantize module
// of a quantized K or V cache (codegen/wgsl/quantize.ts) on buffers the engine owns, updating the
// cache in place (docs/LANGUAGE.md, "Quantizing a range of rows"). Typed per cache: the args name
// exactly that cache's tensors. Text uses the emitter's «TS-only» markers (emit-ts.ts).
import { shapeExprNames } from '../runtime/shape-expr.js';
import type { Artifact, QuantizeModule } from './artifact.js';
import { lit, shapeExprToTs, templateLiteral } from './emit-ts-exprs.js';

const tensorDoc: Record<string, string> = {
  x: 'source rows [B, Hkv, Nk, D] (read)',
  salient: 'salient marks, i32 (read)',
  codes: 'u32 code words [B, Hkv, Nk, W] (written)',
  codesHi: 'u32 salient code words (written)',
  scale: 'scales (written)',
  zero: 'zero points (written)',
  norm: 'per-channel normalizer [B, Hkv, D] (written)',
  recent: 'recent window [B, Hkv, r, D] (written)',
};

/** A paged cache's pools (docs/LANGUAGE.md, "Paged quantized caches"). */
const pagedDoc: Record<string, string> = {
  codes: 'u32 code words, pool [pages, Hkv, P, W] (written)',
  codesHi: 'u32 salient code words, pool [pages, Hkv, P, W] (written)',
  scale: 'scales: a pool when per token or per channel group, else per sequence (written)',
  zero: 'zero points, as scale (written)',
};

/** The args a paged cache's quantize takes besides its buffers. */
const pagedArgs = (P: number): string[] => [
  `  /** [B, maxPages] page ids (pages of ${P} rows), row-major, or longer (rows past B unused); uploaded and checked each call. */`,
  '  readonly blockTable: Int32Array;',
  '  readonly maxPages: number;',
  '  /** Pages in the pools (page ids must be below it). */',
  '  readonly pages: number;',
];

const caches = (a: Artifact): ['k' | 'v', QuantizeModule][] =>
  (['k', 'v'] as const).flatMap((c) =>
    a.quantize?.[c] ? [[c, a.quantize[c]!] as ['k' | 'v', QuantizeModule]] : [],
  );

/** The types of the args of each cache (TS only; empty without quantized caches). */
export function quantizeTypes(a: Artifact): string {
  return caches(a)
    .map(([c, m]) =>
      [
        `/** Buffers and range of a ${c === 'k' ? 'key' : 'value'}-cache quantize call (16-bit tensors packed in u32 words). */`,
        `export interface QuantizeArgs${c.toUpperCase()} {`,
        ...m.bindings
          .filter((b) => b.name !== 'uniforms' && b.name !== 'blockTable')
          .map(
            (b) =>
              `  /** ${b.dtype}: ${(m.pageSize ? pagedDoc[b.name] : undefined) ?? tensorDoc[b.name] ?? b.name} */\n  readonly ${b.name}: GPUBuffer;`,
          ),
        '  readonly sizes: { readonly B: number; readonly Hkv: number; readonly Nk: number };',
        '  /** Quantize the token rows [start, start + n). */',
        '  readonly start: number;',
        '  readonly n: number;',
        ...(m.pageSize ? pagedArgs(m.pageSize) : []),
        ...(m.bindings.some((b) => b.name === 'salient')
          ? ['  /** The salient index list length (0 for flags). */', '  readonly salientN?: number;']
          : []),
        '}',
      ].join('\n'),
    )
    .join('\n\n');
}

/** The .d.ts declarations of `quantizeModules` and `quantize` (JS modules). */
export function quantizeDeclarations(a: Artifact): string {
  const list = caches(a);
  if (list.length === 0) return '';
  return [
    '/** The WGSL quantize module of each quantized cache, with its bindings and passes. */',
    `export declare const quantizeModules: { readonly [cache in ${list.map(([c]) => lit(c)).join(' | ')}]: { readonly code: string; readonly entryPoints: readonly string[] } };`,
    '/** Quantizes the token rows [start, start + n) of a quantized cache in place (docs/LANGUAGE.md). */',
    ...list.map(
      ([c]) =>
        `export declare function quantize(device: GPUDevice, cache: ${lit(c)}, args: QuantizeArgs${c.toUpperCase()}): void;`,
    ),
  ].join('\n');
}

/** What a quantize call's sizes give its buffers' shape expressions (paged: the pools too). */
const quantizeNames = new Set(['B', 'Hkv', 'Nk', 'D', 'Dv', 'pages', 'max_pages']);

/**
 * Each buffer's shape for a call, as code over `e` (B, Hkv, Nk, pages, max_pages): the source rows
 * and each cache tensor as the kernel binds it (its binding of this role and part). The salient
 * marks (flags [B, Hkv, Nk] or salientN indices, which the module does not say) and a shape over
 * anything else are left out.
 */
function shapeRows(a: Artifact, c: 'k' | 'v', m: QuantizeModule): string[] {
  const rows = [`x: [e.B, e.Hkv, e.Nk, ${m.dim}]`];
  for (const b of m.bindings) {
    const kb = a.bindings.find((x) => x.role === c && x.part === b.name);
    if (!kb || !kb.shape.every((d) => shapeExprNames(d).every((n) => quantizeNames.has(n)))) continue;
    rows.push(`${b.name}: [${kb.shape.map((d) => shapeExprToTs(d, a)).join(', ')}]`);
  }
  return rows;
}

/** The tables and the `quantize` function (empty without quantized caches). */
export function quantizeSource(a: Artifact): string {
  const list = caches(a);
  if (list.length === 0) return '';
  const paged = list.some(([, m]) => m.pageSize !== undefined);
  // A paged cache also checks and uploads its block table, between the argument and buffer checks.
  return [
    quantizeTables(a, list),
    quantizeDoc,
    ...list.map(
      ([c]) =>
        `«export function quantize(device: GPUDevice, cache: ${lit(c)}, args: QuantizeArgs${c.toUpperCase()}): void;»\n`,
    ),
    quantizeArgumentChecks,
    paged ? pagedCheck : '',
    quantizeLimitAndBufferChecks,
    paged ? pagedUpload : '',
    quantizeDispatch(paged),
    '\n\n',
    checkBuffersSource,
  ].join('');
}

/** Each cache's quantize module, its buffers' shapes as code, and the per-device pipeline cache. */
function quantizeTables(a: Artifact, list: ReturnType<typeof caches>): string {
  const table = list.map(
    ([c, m]) =>
      `  ${c}: { code: ${templateLiteral(m.code)}, entryPoints: ${JSON.stringify(m.entryPoints)}, workgroupSize: ${m.workgroupSize}, bindings: ${JSON.stringify(m.bindings)}, uniforms: ${JSON.stringify(m.uniforms)}, dim: ${m.dim}, input: ${lit(m.input)}${m.pageSize ? `, pageSize: ${m.pageSize}` : ''} },`,
  );
  const shapes = list.map(([c, m]) => `  ${c}: (e) => ({ ${shapeRows(a, c, m).join(', ')} }),`);
  return String.raw`/** The WGSL quantize module of each quantized cache, with its bindings and passes. */
export const quantizeModules = {
${table.join('\n')}
}«as const»;

«interface QuantizeEnv { B: number; Hkv: number; Nk: number; salient_n: number; pages: number; max_pages: number }»
/** The elements each buffer of a quantize call must hold, by cache. */
const quantizeShapes«: Record<string, (e: QuantizeEnv) => Record<string, number[]>>» = {
${shapes.join('\n')}
};

const quantizePipelines = new WeakMap«<GPUDevice, Map<string, { layout: GPUBindGroupLayout; pipelines: GPUComputePipeline[] }>>»();

`;
}

const quantizeDoc = String.raw`/**
 * Quantizes the token rows [start, start + n) of a quantized cache from the source rows 'x', in
 * place and bit for bit as attnc's quantize (docs/LANGUAGE.md, "Quantizing a range of rows"):
 * submits one command buffer on device.queue. Throws naming a bad argument.
 */
`;

/** quantize's checks of device, cache, argument names, sizes and the row range. */
const quantizeArgumentChecks = String.raw`export function quantize(device«: GPUDevice», cache«: 'k' | 'v'», args«: object»)«: void» {
  const fail = (what«: string»)«: never» => {
    throw new Error(kernelName + ': quantize: ' + what);
  };
  const d = device «as { limits?: unknown; createShaderModule?: unknown } | null»;
  if (typeof d !== 'object' || d === null || typeof d.limits !== 'object' || typeof d.createShaderModule !== 'function') fail('device: expected a GPUDevice, got ' + String(device));
  if (!Object.prototype.hasOwnProperty.call(quantizeModules, cache)) fail('cache ' + JSON.stringify(cache) + ' is not quantized (' + Object.keys(quantizeModules).join(', ') + ' are)');
  const m = (quantizeModules «as Record<string, (typeof quantizeModules)[keyof typeof quantizeModules]>»)[cache]«!»;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) fail('args: expected an object of buffers, sizes, start and n, got ' + String(args));
  const a = args «as Record<string, any>»;
  // A misspelt key (salientn, maxpages) would silently take its default.
  const buffers = m.bindings.map((b) => b.name «as string»).filter((name) => name !== 'uniforms' && name !== 'blockTable');
  const known = [...buffers, 'sizes', 'start', 'n', ...(m.bindings.some((b) => (b.name «as string») === 'salient') ? ['salientN'] : []), ...((m «as { pageSize?: number }»).pageSize ? ['blockTable', 'maxPages', 'pages'] : [])];
  for (const key of Object.keys(a)) if (!known.includes(key)) fail('unknown argument "' + key + '" (known: ' + known.join(', ') + ')');
  const s = a.sizes;
  // The passes index in u32 (and the kernels' sizes are i32): larger values would wrap.
  const int = (what«: string», v«: unknown»)«: number» => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2147483647) fail(what + ' must be an integer in [0, 2147483647], got ' + String(v));
    return v «as number»;
  };
  if (typeof s !== 'object' || s === null) fail('sizes must be { B, Hkv, Nk }');
  for (const key of Object.keys(s)) if (!['B', 'Hkv', 'Nk'].includes(key)) fail('sizes: unknown size "' + key + '" (known: B, Hkv, Nk)');
  const values = { B: int('sizes.B', s.B), Hkv: int('sizes.Hkv', s.Hkv), Nk: int('sizes.Nk', s.Nk), start: int('start', a.start), n: int('n', a.n), salient_n: int('salientN', a.salientN ?? 0) };
  if (values.start + values.n > values.Nk) throw new Error(kernelName + ': quantize: rows [' + values.start + ', ' + (values.start + values.n) + ') are not inside the cache of ' + values.Nk + ' tokens');
`;

/** Checks of the storage-buffer limit and of each buffer (checkQuantizeBuffers). */
const quantizeLimitAndBufferChecks = String.raw`  // Over the limit, the layout and pipelines would be invalid (and cached): Dawn only logs it.
  const storage = m.bindings.filter((b) => b.access !== 'uniform').length;
  const most = device.limits.maxStorageBuffersPerShaderStage;
  if (storage > most) fail('the ' + cache + " cache's quantize binds " + storage + ' storage buffers, the device allows ' + most + ' (request a device with a higher maxStorageBuffersPerShaderStage)');
  checkQuantizeBuffers(device, m, a, quantizeShapes[cache]«!»({ pages: 0, max_pages: 0, ...values }), fail);
`;

/** Pipelines (compiled once per device and cache), uniforms, bind group and the one submit. */
function quantizeDispatch(paged: boolean): string {
  return String.raw`  let perDevice = quantizePipelines.get(device);
  if (!perDevice) quantizePipelines.set(device, (perDevice = new Map()));
  let compiled = perDevice.get(cache);
  if (!compiled) {
    const layout = device.createBindGroupLayout({ entries: m.bindings.map((b) => ({ binding: b.index, visibility: 4 /* COMPUTE */, buffer: { type: b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage' } «as GPUBufferBindingLayout» })) });
    const module = device.createShaderModule({ code: m.code });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    const pipelines = m.entryPoints.map((entryPoint) => device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint } }));
    perDevice.set(cache, (compiled = { layout, pipelines }));
  }
  const uniforms = device.createBuffer({ size: 16 * Math.ceil((4 * m.uniforms.length) / 16), usage: 0x40 | 0x8 /* UNIFORM | COPY_DST */ });
  device.queue.writeBuffer(uniforms, 0, new Uint32Array(m.uniforms.map((k) => (values «as Record<string, number>»)[k]«!»)));
  const group = device.createBindGroup({ layout: compiled.layout, entries: m.bindings.map((b) => ({ binding: b.index, resource: { buffer: b.name === 'uniforms' ? uniforms : ${paged ? "b.name === 'blockTable' ? table«!» : " : ''}(a[b.name] «as GPUBuffer») } })) });
  const rows = Math.max(values.Nk, 1) * values.B * values.Hkv;
  const workgroups = Math.min(65535, Math.max(1, Math.ceil((rows * 4) / m.workgroupSize)));
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setBindGroup(0, group);
  for (const p of compiled.pipelines) {
    pass.setPipeline(p);
    pass.dispatchWorkgroups(workgroups);
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
  uniforms.destroy();${paged ? '\n  table?.destroy();' : ''}
}`;
}

/**
 * quantize's buffers: each a distinct GPUBuffer with STORAGE usage, unmapped, that holds its
 * shape and that the device can bind whole. WebGPU would only log these at submit, or (a buffer
 * too small) clamp the writes and leave the cache silently wrong.
 */
const checkBuffersSource = String.raw`function checkQuantizeBuffers(device«: GPUDevice», m«: { bindings: readonly { name: string; dtype: string }[]; input: string }», a«: Record<string, any>», shapes«: Record<string, number[]>», fail«: (what: string) => never»)«: void» {
  const seen = new Map«<unknown, string>»();
  for (const b of m.bindings) {
    if (b.name === 'uniforms' || b.name === 'blockTable') continue;
    const buf = a[b.name];
    if (typeof buf !== 'object' || buf === null || typeof buf.destroy !== 'function' || typeof buf.size !== 'number' || typeof buf.usage !== 'number') fail(b.name + ' must be a GPUBuffer');
    if (seen.has(buf)) fail(b.name + ': the same GPUBuffer is passed as ' + seen.get(buf) + '; each tensor needs its own buffer');
    seen.set(buf, b.name);
    if ((buf.usage & 0x80) === 0) fail(b.name + ': the GPUBuffer lacks STORAGE usage (usage 0x' + buf.usage.toString(16) + ')');
    if (buf.mapState !== undefined && buf.mapState !== 'unmapped') fail(b.name + ': the GPUBuffer is ' + buf.mapState + '; unmap it first');
    const shape = shapes[b.name];
    if (shape === undefined) continue;
    // 16-bit tensors are packed two to a u32 word; every binding holds 4 bytes at least.
    const half = (b.name === 'x' ? m.input : b.dtype) === 'f16' || b.dtype === 'bf16';
    const n = shape.reduce((x, y) => x * y, 1);
    const need = Math.max(4, half ? Math.ceil(n / 2) * 4 : n * 4);
    if (buf.size < need) fail(b.name + ': [' + shape.join(', ') + '] needs ' + need + ' bytes, the GPUBuffer has ' + buf.size);
    const max = device.limits.maxStorageBufferBindingSize;
    if (buf.size > max) fail(b.name + ': the GPUBuffer is ' + buf.size + ' bytes, the device binds at most ' + max + ' (maxStorageBufferBindingSize)');
  }
}`;

/**
 * A paged cache's argument checks and block-table upload, inside `quantize` (after `values`):
 * the table covers Nk tokens and every page id a token below Nk uses is a page of the pools.
 */
const pagedCheck = String.raw`  const P = (m «as { pageSize?: number }»).pageSize;
  let table«: GPUBuffer | undefined»;
  if (P !== undefined) {
    const maxPages = int('maxPages', a.maxPages);
    const pages = int('pages', a.pages);
    const bt = a.blockTable;
    // At least [B, maxPages], as dispatch takes it: rows past B (a table made for a larger batch) are unused.
    if (!(bt instanceof Int32Array) || bt.length < values.B * maxPages) fail('blockTable: expected i32[B=' + values.B + ', maxPages=' + maxPages + '] (at least ' + values.B * maxPages + ' elements, an Int32Array), got ' + (ArrayBuffer.isView(bt) ? bt.constructor.name + ' of ' + (bt «as Int32Array»).length + ' elements' : Array.isArray(bt) ? 'a plain Array of ' + bt.length + ' elements' : String(bt)));
    if (maxPages * P < values.Nk) throw new Error(kernelName + ': quantize: the block table\'s ' + maxPages + ' pages of ' + P + ' rows hold fewer than Nk = ' + values.Nk + ' tokens');
    for (let b = 0; b < values.B; b++)
      for (let p = 0; p < Math.ceil(values.Nk / P); p++) {
        const id = bt[b * maxPages + p]«!»;
        if (!(id >= 0 && id < pages)) throw new Error(kernelName + ': quantize: blockTable[' + b + '][' + p + '] = ' + id + ' is not a page of the pools (' + pages + ' pages)');
      }
    Object.assign(values, { max_pages: maxPages, pages });
  }
`;

/** The checked block table's upload, once every other argument passed (nothing made before). */
const pagedUpload = String.raw`  if (P !== undefined) {
    const bt = a.blockTable «as Int32Array»;
    table = device.createBuffer({ size: Math.max(16, bt.byteLength), usage: 0x80 | 0x8 /* STORAGE | COPY_DST */ });
    device.queue.writeBuffer(table, 0, new Int32Array(bt)); // a copy: typed over an ArrayBuffer
  }
`;
