// The type declarations of an emitted module (emit-ts.ts): the tables' shapes, and the dispatch and
// encode arguments, which list exactly this kernel's buffers (with their TypedArray types) and
// params (optional where they have a default). Shared by the .ts module and the JS module's .d.ts.
import type { Artifact, ArtifactSchedule, Binding } from './artifact.js';

const hostArray: Record<Binding['dtype'], string> = {
  f32: 'Float32Array',
  f16: 'Uint16Array',
  i32: 'Int32Array',
  u32: 'Uint32Array',
  bf16: 'never',
};

const paramType = { i32: 'number', f32: 'number', bool: 'boolean' } as const;

/** `f32[B, H, Nq, D=64]`: the shape with D/Dv's values, for doc comments. */
function shapeDoc(b: Binding, a: Artifact): string {
  const dims = b.shape.map((d) =>
    d === 'D' ? `D=${a.schedule.headDim}` : d === 'Dv' ? `Dv=${a.schedule.valueDim}` : d,
  );
  const what = b.dtype === 'f16' ? 'f16 bits' : b.dtype;
  return `${what}[${dims.join(', ')}]`;
}

/**
 * The module's kernel-specific types: its params, the launch options and arguments (exactly this
 * kernel's buffers), the prepared launch, the kernel and its schedule.
 */
export function kernelTypes(a: Artifact, altSchedules: readonly ArtifactSchedule[] = []): string {
  const hasKvCache = kvCacheFields(a).length > 0;
  return [
    ...(a.params.length > 0 ? paramsType(a) : []),
    ...(hasKvCache ? [...kvCacheType(a, kvCacheFields(a)), ''] : []),
    '',
    ...launchOptionsType(a, hasKvCache),
    '',
    ...argumentTypes(a),
    '',
    ...launchUpdateType(a, hasKvCache),
    '',
    ...KERNEL_INTERFACES,
    '',
    ...scheduleType(a, altSchedules),
  ].join('\n');
}

/** `Params`: each param with its type, optional (and documented with it) where it has a default. */
function paramsType(a: Artifact): string[] {
  const params = a.params.map((p) => {
    const opt = p.default === undefined ? '' : '?';
    const dflt =
      p.default === undefined
        ? 'required'
        : `default ${p.dtype === 'bool' ? String(p.default === 1) : p.default}`;
    return `  /** ${p.dtype}, ${dflt} */\n  ${p.name}${opt}: ${paramType[p.dtype]};`;
  });
  return ["/** The kernel's params (runtime uniforms). */", 'export interface Params {', ...params, '}', ''];
}

/** `LaunchOptions`: sizes, params (required if any param is), offsets, the KV cache and the scale. */
function launchOptionsType(a: Artifact, hasKvCache: boolean): string[] {
  const anyRequired = a.params.some((p) => p.default === undefined);
  return [
    '/** Everything of a launch besides its buffers. */',
    'export interface LaunchOptions {',
    '  sizes: Sizes;',
    ...(a.params.length > 0 ? [`  params${anyRequired ? '' : '?'}: Params;`] : []),
    '  /** Position of query row 0 (default Nk - Nq: the queries are the last Nq positions). */',
    '  qOffset?: number;',
    ...(hasKvCache
      ? ['  /** Where the K/V rows live (default: packed, as args_init sets it). */', '  kvCache?: KvCache;']
      : []),
    '  /** Position of key row 0 (default 0). */',
    '  kOffset?: number;',
    `  /** Score scale (default 1/sqrt(${a.schedule.headDim}), rounded to f32). */`,
    '  scale?: number;',
    '}',
  ];
}

/**
 * What a paged kernel's block table promises: dispatch reads a host table and checks each page id
 * a key uses; encode/prepare bind the caller's buffer, which the launch cannot read before the
 * kernels do (WebGPU's robust access keeps a stray id's reads inside the binding, not correct).
 */
const blockTableDoc = {
  host: ': page ids, each checked to be a page of the pool; a longer table (rows past B unused) is fine',
  gpu:
    ': page ids, on the GPU: not checked (a page id outside the pool reads other rows of the buffer' +
    ' or zeros, without an error); dispatch checks a host table',
};

/** dispatch()'s arguments and result (host arrays) and encode()'s arguments (buffers). */
function argumentTypes(a: Artifact): string[] {
  const inputs = a.bindings.filter((b) => ['q', 'k', 'v', 'tensor', 'block_table'].includes(b.role));
  const outputs = a.bindings.filter((b) => b.role === 'out' || b.role === 'lse');
  const strided = (b: Binding): boolean =>
    (b.role === 'k' || b.role === 'v') && a.uniforms.some((f) => f.name === `${b.role}_stride_b`);
  const member = (b: Binding, type: string, note = ''): string =>
    `  /** ${note}${shapeDoc(b, a)}${strided(b) ? ", or the cache kvCache's strides address" : ''}${b.role === 'block_table' ? blockTableDoc[type === 'BufferArg' ? 'gpu' : 'host'] : ''} */\n  ${b.name}: ${type};`;
  return [
    '/** dispatch(): host arrays in, host arrays out (buffers made and freed per call). */',
    'export interface DispatchArgs extends LaunchOptions {',
    ...inputs.map((b) => member(b, hostArray[b.dtype], b.role === 'tensor' ? 'tensor ' : '')),
    '}',
    '',
    'export interface DispatchResult {',
    ...outputs.map((b) =>
      member(
        b,
        'Float32Array',
        b.role === 'lse' ? 'natural log, -Infinity for rows with no allowed key: ' : '',
      ),
    ),
    '}',
    '',
    '/** encode()/prepare(): buffers the caller owns (STORAGE usage), read and written in place. */',
    'export interface EncodeArgs extends LaunchOptions {',
    ...inputs.map((b) => member(b, 'BufferArg', b.role === 'tensor' ? 'tensor ' : '')),
    ...outputs.map((b) => member(b, 'BufferArg', 'written: ')),
    '}',
  ];
}

/** `LaunchUpdate`: PreparedLaunch.update()'s changes, the launch options this kernel has. */
function launchUpdateType(a: Artifact, hasKvCache: boolean): string[] {
  return [
    '/**',
    " * PreparedLaunch.update()'s changes: keys left out keep their value, sizes and params merge key by",
    ' * key, and qOffset / kOffset / scale given as undefined return to their defaults.',
    ' */',
    'export interface LaunchUpdate {',
    '  sizes?: Partial<Sizes>;',
    ...(a.params.length > 0 ? ['  params?: Partial<Params>;'] : []),
    '  qOffset?: number | undefined;',
    ...(hasKvCache ? ['  kvCache?: KvCache;'] : []),
    '  kOffset?: number | undefined;',
    '  scale?: number | undefined;',
    '}',
  ];
}

// PreparedLaunch and Kernel: the same for every kernel (their argument types differ).
const KERNEL_INTERFACES = [
  '/** A launch bound once (uniforms, summary scratch, bind group), encoded any number of times. */',
  'export interface PreparedLaunch {',
  '  /** KV splits when the launch runs in decode mode (split-KV + merge: few rows, a long KV), else 0. */',
  '  readonly decodeSplits: number;',
  '  /** Records one compute pass; allocates nothing. */',
  '  encode(encoder: GPUCommandEncoder): void;',
  '  /**',
  "   * Rewrites the launch's uniforms (queue.writeBuffer: submits made after it see the change),",
  '   * checked as prepare() checks, against the bound buffers; summary scratch is remade only if it',
  '   * must grow. Call it between a submit and the next encode of this launch.',
  '   */',
  '  update(changes: LaunchUpdate): void;',
  "  /** Frees the launch's own buffers (after the last submit that uses them). */",
  '  destroy(): void;',
  '}',
  '',
  'export interface Kernel {',
  '  /** Uploads, runs (summaries, then attention), reads back. */',
  '  dispatch(args: DispatchArgs): Promise<DispatchResult>;',
  '  /**',
  '   * Records one compute pass into `encoder`; the caller submits. A launch encoded before with the',
  '   * same arguments is reused (the last 32 are kept), so a loop allocates nothing after its first step.',
  '   */',
  '  encode(encoder: GPUCommandEncoder, args: EncodeArgs): void;',
  '  /** Binds a launch once, for engines that replay it every step. */',
  '  prepare(args: EncodeArgs): PreparedLaunch;',
  '  destroy(): void;',
  '}',
];

/**
 * `KernelSchedule`: the schedule's fields; with a second engine's schedules (emit-ts-engines.ts), a
 * field only some of them have is optional.
 */
function scheduleType(a: Artifact, altSchedules: readonly ArtifactSchedule[]): string[] {
  const s = a.schedule;
  const both: Record<string, unknown> = Object.assign({}, ...altSchedules, s) as Record<string, unknown>;
  const optional = (k: string): string =>
    altSchedules.length > 0 && ![s, ...altSchedules].every((x) => k in x) ? '?' : '';
  const scheduleFields = Object.entries(both).map(([k, v]) =>
    k === 'dtype'
      ? `  readonly dtype: 'f32' | 'f16' | 'bf16';`
      : `  readonly ${k}${optional(k)}: ${typeof v};`,
  );
  return ['export interface KernelSchedule {', ...scheduleFields, '}'];
}

/** The kvCache fields of a kernel with float K/V (CUDA's Args names), none otherwise. */
function kvCacheFields(a: Artifact): string[] {
  const fields = a.uniforms
    .map((f) => f.name)
    .filter((n) => /^[kv]_stride_[bhn]$/.test(n) || n === 'max_pages');
  // A paged quantized cache: the pages in its pools (its tensors' leading dim).
  return a.bindings.some((b) => b.shape[0] === 'pages') ? [...fields, 'pages'] : fields;
}

function kvCacheType(a: Artifact, fields: readonly string[]): string[] {
  const P = a.kvRows?.pageSize;
  const doc: Record<string, string> = {
    b: P ? 'between pages (default Hkv·N·W: HND pages)' : 'between batches (default Hkv·Nk·W)',
    h: P ? 'between kv heads in a page (default N·W)' : 'between kv heads (default Nk·W)',
    n: P ? 'between rows in a page (default W)' : 'between rows (default W)',
  };
  const align = a.kvRows?.align ?? 1;
  return [
    '/**',
    ' * K/V row addressing (docs/LANGUAGE.md "Paged and strided caches"), in elements, as the CUDA',
    ` * Args name them${align > 1 ? ` (multiples of ${align})` : ''}${P ? `; pages of ${P} rows through block_table` : ''}. Each left out: its default.`,
    ' */',
    'export interface KvCache {',
    ...fields.map((n) =>
      n === 'pages'
        ? "  /** Pages in the quantized cache's pools [pages, Hkv, N, ·] (default B · max_pages). */\n  pages?: number;"
        : n === 'max_pages'
          ? '  /** Columns of block_table (default ceil(Nk / N)). */\n  max_pages?: number;'
          : `  /** ${doc[n.at(-1)!]} */\n  ${n}?: number;`,
    ),
    '}',
  ];
}

/** The types every kernel module shares (in the shared runtime, or in each self-contained module). */
export const genericTypes = [
  '/** Runtime sizes of one launch. */',
  'export interface Sizes {',
  '  /** Batch. */\n  B: number;',
  '  /** Query heads. */\n  H: number;',
  '  /** Key/value heads (H must be a multiple: GQA/MQA). */\n  Hkv: number;',
  '  /** Query rows. */\n  Nq: number;',
  '  /** Key rows. */\n  Nk: number;',
  '}',
  '',
  '/**',
  ' * A buffer argument: a whole GPUBuffer, or a range of one. offset must be a multiple of the',
  " * device's minStorageBufferOffsetAlignment; without size the range runs to the buffer's end.",
  ' */',
  'export type BufferArg = GPUBuffer | GPUBufferBinding;',
  '',
  'export interface KernelBinding {',
  '  readonly name: string;',
  '  /** @group(0) @binding(n). */',
  '  readonly binding: number;',
  "  readonly role: 'q' | 'k' | 'v' | 'out' | 'lse' | 'tensor' | 'summary' | 'scratch' | 'uniforms' | 'block_table';",
  "  readonly dtype: 'f32' | 'f16' | 'i32' | 'u32';",
  '  /** Expressions over B H Hkv Nq Nk D Dv and int params; cdiv(a, b) is ceiling division. */',
  '  readonly shape: readonly string[];',
  '  readonly type: GPUBufferBindingType;',
  '}',
  '',
  'export interface KernelEntryPoint {',
  '  readonly name: string;',
  "  readonly role: 'summary' | 'attention';",
  '  readonly workgroupSize: readonly [number, number, number];',
  '  readonly grid: readonly [string, string, string];',
  '}',
  '',
  'export interface UniformLayout {',
  '  readonly bytes: number;',
  "  readonly fields: readonly { readonly name: string; readonly dtype: 'i32' | 'u32' | 'f32'; readonly offset: number }[];",
  '}',
].join('\n');

/** The names genericTypes declares. */
export const genericTypeNames = ['Sizes', 'BufferArg', 'KernelBinding', 'KernelEntryPoint', 'UniformLayout'];
