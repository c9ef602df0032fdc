// Renders an AttentionKernel to a CUDA artifact: a self-contained .cu (summary kernels, the
// attention kernel from an attention core, and an extern "C" launcher), a C header and a JSON
// manifest. The core (simt.ts today) is the only part that depends on the compute units used.
import { fusedSchedule } from './quant-stage-schedule.js';
import { show, toposort } from '../../ir/graph.js';
import { sharedStorage } from '../../ir/formats.js';
import type { AttentionKernel, StorageDType } from '../../ir/kernel.js';
import type { Artifact, Binding, UniformField } from '../artifact.js';
import { artifactSchedule } from '../common.js';
import { classMode, coreExprs } from './exprs.js';
import {
  alignmentOf,
  attentionEntry,
  errorName,
  headerText,
  initName,
  launcherText,
  launchName,
  summaryElemsName,
  summaryKernels,
} from './launcher.js';
import { cudaLayout, type CudaLayout } from './layout.js';
import { kvRowsPrelude } from './kv-rows.js';
import { qoRowsPrelude } from './qo-rows.js';
import { importanceBinding, importanceDevice } from './importance.js';
import { cudaArchs } from './arch.js';
import { checkCudaSchedule, cudaLimits, cudaScheduleProblem, type CudaLimits } from './plan.js';
import { dimLabel, helperSource, type CudaContext } from './rules.js';
import { mmaCore } from './mma.js';
import { mmaPlan } from './mma-plan.js';
import { wgmmaCore } from './wgmma.js';
import { wgmmaPlan } from './wgmma-plan.js';
import { wgmmaWsCore } from './wgmma-ws.js';
import { wgmmaWsPlan } from './wgmma-ws-plan.js';
import { simtCore, type AttentionCore, type CoreOutput } from './simt.js';
import { stageEntryPoints } from './stages.js';
import { tokenAttentionDeviceCode } from './token-attn.js';
import { tokenPlan } from './token-form.js';
import { routingManifest } from './routing-host.js';
import { routingDeviceCode, routeScratchElemsName } from './routing.js';
import {
  routedAttentionHelpers,
  routeSmemOffset,
  routingBindingShapes,
  withRouting,
} from './routing-attn.js';
import { selectDeviceCode, selectHandles } from './select-host.js';
import { selectBindingShapes, selectManifest } from './select-records.js';
import { quantizeLaunchName, quantizeSource, quantizeSpecs, withQuantizeHeader } from './quantize-host.js';
import { salientKernels, salientLists } from './salient-list.js';
import { cachesManifest } from './quant-manifest.js';
import { decodeLeanRecord } from './decode-facts.js';

export interface CudaMeta {
  readonly sourceHash: string;
  readonly scheduleHash: string;
}

const storage: Readonly<Record<StorageDType, { ty: string; to: string; from: string }>> = {
  f32: { ty: 'float', to: 'x', from: 'x' },
  f16: { ty: '__half', to: '__half2float(x)', from: '__float2half_rn(x)' },
  bf16: { ty: '__nv_bfloat16', to: '__bfloat162float(x)', from: '__float2bfloat16_rn(x)' },
};

function prelude(k: AttentionKernel, layout: CudaLayout): string {
  const s = k.schedule;
  // One C type T for q, k, v and out: their formats are one float type (sharedStorage checks).
  const dtype = sharedStorage(k.formats);
  const st = storage[dtype];
  return [
    `using Args = ::${layout.struct};`,
    `typedef ${st.ty} T; // storage type of q, k, v, out (${dtype}); all arithmetic is f32`,
    `constexpr int D = ${s.headDim}, DV = ${s.valueDim};`,
    'constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;',
    `__device__ __forceinline__ float to_f32(T x) { return ${st.to}; }`,
    `__device__ __forceinline__ T from_f32(float x) { return ${st.from}; }`,
    '',
    '// N storage elements, aligned so that one load or store moves all of them.',
    'template <int N>',
    'struct alignas(N * sizeof(T)) VecT {',
    '  T v[N];',
    '  static __device__ __forceinline__ VecT zero() {',
    '    VecT z;',
    '#pragma unroll',
    '    for (int i = 0; i < N; ++i) z.v[i] = from_f32(0.f);',
    '    return z;',
    '  }',
    '};',
    '',
    'template <int N>',
    '__device__ __forceinline__ void store_f32(float* dst, const VecT<N>& x) {',
    '  if constexpr (N % 4 == 0) {',
    '#pragma unroll',
    '    for (int i = 0; i < N; i += 4)',
    '      *reinterpret_cast<float4*>(dst + i) =',
    '          make_float4(to_f32(x.v[i]), to_f32(x.v[i + 1]), to_f32(x.v[i + 2]), to_f32(x.v[i + 3]));',
    '  } else if constexpr (N == 2) {',
    '    *reinterpret_cast<float2*>(dst) = make_float2(to_f32(x.v[0]), to_f32(x.v[1]));',
    '  } else {',
    '    dst[0] = to_f32(x.v[0]);',
    '  }',
    '}',
    '',
    'template <bool V>',
    'struct Flag {',
    '  static constexpr bool value = V;',
    '};',
    '',
    ...kvRowsPrelude(k.formats),
    ...qoRowsPrelude(),
  ].join('\n');
}

function banner(k: AttentionKernel, meta: CudaMeta, core: CoreOutput, arch: string): string[] {
  const s = k.schedule;
  const tiles =
    k.tiles.kind === 'static'
      ? [`//   static: every tile is ${k.tiles.value}`]
      : [
          '//   dynamic, per (q-tile, k-tile), from inclusive position bounds q_lo..q_hi, k_lo..k_hi:',
          `//     empty (skipped, nothing loaded) unless canBeTrue = ${show(k.tiles.canBeTrue)}`,
          `//     full (no predicate evaluated)   unless canBeFalse = ${show(k.tiles.canBeFalse)}`,
          '//     partial otherwise (predicate per element)',
        ];
  const mapping = Object.entries(core.mapping)
    .map(([key, v]) => `${key}=${v}`)
    .join(' ');
  return [
    `// attnc kernel "${k.name}" for CUDA (${arch}). Generated code: do not edit.`,
    `// build: nvcc -arch=${arch} -std=c++17 --shared -Xcompiler -fPIC ${k.name}.cu -o lib${k.name}.so`,
    `// source ${meta.sourceHash}, schedule ${meta.scheduleHash}`,
    `//   score: ${show(k.score)}`,
    `//   mask:  ${show(k.mask)}`,
    `// schedule: blockQ=${s.blockQ} blockK=${s.blockK} threads=${s.threads} D=${s.headDim} Dv=${s.valueDim} ${sharedStorage(k.formats)} summaryBlock=${s.summaryBlock}${s.engine !== undefined && s.engine !== 'simt' ? ` engine=${s.engine} stages=${s.stages}` : ''}`,
    `// mapping: ${mapping}`,
    '// tiles:',
    ...tiles,
    '// Semantics: query row i has position q = i + q_offset, key j has k = j + k_offset; GQA kv head',
    '// h / (H / Hkv); scores scale * <q, k> then the modifier then the mask; a row with no allowed',
    '// key gives out = 0 and lse = -inf.',
  ];
}

/** The core the schedule's engine names: tensor cores (wgmma, mma.sync) or FMA units (SIMT). */
function checkSchedule(k: AttentionKernel, limits: CudaLimits): void {
  const problem = cudaScheduleProblem(k.schedule, k.formats, limits);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
}

function defaultCore(kernel: AttentionKernel, limits: CudaLimits): AttentionCore {
  const engine = kernel.schedule.engine ?? 'simt';
  if (!cudaArchs[limits.arch].engines.includes(engine))
    throw new Error(`CUDA backend: engine ${engine} does not run on ${limits.arch}`);
  const { schedule: s, formats: f } = kernel;
  if (s.engine === 'mma') return mmaCore(mmaPlan(s, f, limits.maxSharedBytes));
  if (s.engine === 'wgmma') return wgmmaCore(wgmmaPlan(s, f, limits.maxSharedBytes));
  if (s.engine === 'wgmma-ws') return wgmmaWsCore(wgmmaWsPlan(s, f, limits.maxSharedBytes));
  return simtCore(checkCudaSchedule(s, f, limits));
}

/** Renders `kernel` with the given attention core (default: the core of its schedule's engine). */
export function renderCuda(
  kernel: AttentionKernel,
  meta: CudaMeta,
  opts: { limits?: CudaLimits; core?: AttentionCore } = {},
): Artifact {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(kernel.name))
    throw new Error(`CUDA: "${kernel.name}" is not a C identifier`);
  // A staged kernel's schedule is its float twin's; rendered alone it is the fused path.
  if (kernel.schedule.quantPrefill === 'staged')
    kernel = { ...kernel, schedule: fusedSchedule(kernel.schedule, kernel.formats, opts.limits) };
  const layout = cudaLayout(kernel);
  const cx: Omit<CudaContext, 'vars'> = {
    params: new Map(kernel.params.map((p) => [p.name, p])),
    tensors: new Map(kernel.tensors.map((t) => [t.name, t])),
    field: layout.field,
    summaryBlock: kernel.schedule.summaryBlock,
    used: new Set(),
  };
  // Token selection, emit, from and chunks (select*.ts) run their own passes; the engine's core
  // then is the unrestricted attention (`emit`) or is not launched (the selection's own attention).
  const selecting = selectHandles(kernel);
  const unrouted = coreExprs(kernel, cx);
  const exprs = selecting ? unrouted : withRouting(kernel, unrouted);
  const token = selecting ? undefined : tokenPlan(kernel);
  const limits = opts.limits ?? cudaLimits;
  if (opts.core) checkSchedule(kernel, limits);
  const core = (opts.core ?? defaultCore(kernel, limits)).render({
    kernel,
    exprs,
    entry: attentionEntry(kernel),
  });
  const ns = `attnc_${kernel.name}`;
  const align = alignmentOf(kernel, core);
  const top = banner(kernel, meta, core, limits.arch);
  // A quantized cache's `quantize` kernels (quantize.ts) are declared beside the attention.
  const quantize = quantizeSpecs(kernel);
  const header = withQuantizeHeader(headerText(kernel, layout, align), quantize);
  // Rendered before the helpers (as is the routing below): its mask and score may use some.
  const importance =
    kernel.outputs.importance && importanceDevice(kernel, kernel.outputs.importance, cx, layout, align);
  // Rendered before the helpers: the routing's candidacy test may use some.
  const routing = selecting
    ? selectDeviceCode(kernel, layout, cx)
    : kernel.routing && routingDeviceCode(kernel, layout, cx);
  const helpers = helperSource({ ...cx, vars: {} });
  const code = [
    ...top,
    '#include <cuda_runtime.h>',
    '#include <cuda_fp16.h>',
    '#include <cuda_bf16.h>',
    '#include <limits.h>',
    '#include <math.h>',
    '#include <stdarg.h>',
    '#include <stdint.h>',
    '#include <stdio.h>',
    '#include <string.h>',
    '',
    header,
    '',
    `namespace ${ns} {`,
    prelude(kernel, layout),
    ...(helpers ? ['', helpers] : []),
    ...(kernel.summaries.length ? ['', summaryKernels(kernel, layout)] : []),
    ...(salientLists(kernel).length ? ['', ...salientKernels(kernel, layout)] : []),
    ...(routing && selecting ? ['', routing] : []),
    ...(routing && !selecting
      ? [
          '',
          routing,
          '',
          routedAttentionHelpers,
          "// The attention keeps its tile list after the core's own dynamic shared memory.",
          `constexpr unsigned ROUTE_SMEM_OFF = ${routeSmemOffset(core.smemBytes)};`,
          ...(token ? ['', tokenAttentionDeviceCode(kernel, token, unrouted)] : []),
        ]
      : []),
    '',
    core.code,
    ...(importance ? ['', importance] : []),
    `} // namespace ${ns}`,
    '',
    '// ---- host code: argument checks and launches ----',
    launcherText(kernel, layout, core, ns),
    ...(quantize.length
      ? ['', '// ---- quantize: fills the quantized caches ----', quantizeSource(quantize, ns)]
      : []),
    '',
  ].join('\n');

  const artifact: Artifact = {
    target: 'cuda',
    name: kernel.name,
    code,
    entryPoints: stageEntryPoints(kernel, core.threads),
    bindings: bindings(kernel, layout),
    uniforms: layout.fields
      .filter((f) => f.ctype !== 'ptr' && f.ctype !== 'i64') // strides: the manifest's fields
      .map((f): UniformField => ({
        name: f.field,
        dtype: f.ctype === 'f32' ? 'f32' : 'i32',
        offset: f.offset,
      })),
    params: kernel.params,
    schedule: artifactSchedule(kernel),
    sourceHash: meta.sourceHash,
    scheduleHash: meta.scheduleHash,
  };
  const caches = cachesManifest(kernel, layout);
  const decodeLean = decodeLeanRecord(kernel);
  const manifest = {
    target: 'cuda',
    name: kernel.name,
    sourceHash: meta.sourceHash,
    scheduleHash: meta.scheduleHash,
    arch: limits.arch,
    files: { code: `${kernel.name}.cu`, header: `${kernel.name}.h` },
    functions: {
      launch: launchName(kernel),
      lastError: errorName(kernel),
      argsInit: initName(kernel),
      summaryElems: Object.fromEntries(
        kernel.summaries.map((s) => [s.tensor, summaryElemsName(kernel, s.tensor)]),
      ),
      ...(kernel.routing ? { routeScratchElems: routeScratchElemsName(kernel) } : {}),
      ...(quantize.length
        ? { quantize: Object.fromEntries(quantize.map((q) => [q.cache, quantizeLaunchName(q)])) }
        : {}),
    },
    args: {
      struct: layout.struct,
      bytes: layout.bytes,
      fields: layout.fields.map(({ decl: _d, ...f }) => f),
    },
    alignment: align,
    // A paged cache's page size (rows per page): callers size and check the block table by it.
    ...(kernel.formats.paged ? { paged: { pageSize: kernel.formats.paged.pageSize } } : {}),
    // Quantized K/V: each cache's tensors (args field, dtype, shape) for callers binding them.
    ...(caches ? { caches } : {}),
    mapping: core.mapping,
    sharedBytes: core.smemBytes,
    tiles: tileInfo(kernel),
    outputs: kernel.outputs,
    tensors: kernel.tensors,
    summaries: kernel.summaries,
    params: kernel.params,
    schedule: artifactSchedule(kernel),
    // How the tensor-core decode kernel's lean code was emitted (Schedule.decodeLean resolved).
    ...(decodeLean ? { decodeLean } : {}),
    bindings: artifact.bindings,
    uniforms: artifact.uniforms,
    entryPoints: artifact.entryPoints,
    expr: exprGraph(kernel),
    ...(kernel.routing ? { routing: selecting ? selectManifest(kernel) : routingManifest(kernel) } : {}),
  };
  return {
    ...artifact,
    files: {
      [`${kernel.name}.h`]: [...top.slice(0, 2), header, ''].join('\n'),
      [`${kernel.name}.json`]: JSON.stringify(manifest, null, 2) + '\n',
    },
  };
}

function bindings(k: AttentionKernel, layout: CudaLayout): Binding[] {
  const s = k.schedule;
  const f = k.formats;
  const shapes: Record<string, { dtype: Binding['dtype']; shape: string[]; access: Binding['access'] }> = {
    q: { dtype: f.q.dtype, shape: ['B', 'H', 'Nq', String(s.headDim)], access: 'read' },
    k: { dtype: f.k.dtype, shape: ['B', 'Hkv', 'Nk', String(s.headDim)], access: 'read' },
    v: { dtype: f.v.dtype, shape: ['B', 'Hkv', 'Nk', String(s.valueDim)], access: 'read' },
    out: { dtype: f.out.dtype, shape: ['B', 'H', 'Nq', String(s.valueDim)], access: 'read_write' },
    lse: { dtype: 'f32', shape: ['B', 'H', 'Nq'], access: 'read_write' },
    importance: { ...importanceBinding, shape: [...importanceBinding.shape] },
    block_table: { dtype: 'i32', shape: ['B', 'max_pages'], access: 'read' },
    ...(k.routing ? (selectHandles(k) ? selectBindingShapes(k) : routingBindingShapes(k)) : {}),
  };
  return layout.fields
    .filter((f) => f.ctype === 'ptr')
    .map((f, index): Binding => {
      const t = k.tensors.find((x) => x.name === f.name.replace(/_summary$/, ''));
      if (f.role === 'tensor' && t)
        return {
          name: f.name,
          role: 'tensor',
          index,
          dtype: t.dtype,
          shape: t.dims.map(dimLabel),
          access: 'read',
        };
      if (f.role === 'summary' && t) {
        const blocks = `cdiv(${dimLabel(t.dims[0]!)}, ${s.summaryBlock})`;
        return {
          name: f.name,
          role: 'summary',
          index,
          dtype: t.dtype,
          shape: [blocks, '2'],
          access: 'read_write',
        };
      }
      const b = shapes[f.role]!;
      return { name: f.name, role: f.role as Binding['role'], index, ...b };
    });
}

function tileInfo(k: AttentionKernel): Record<string, string> {
  const t = k.tiles;
  return t.kind === 'static'
    ? { kind: 'static', value: t.value, mode: classMode(k) }
    : { kind: 'dynamic', canBeTrue: show(t.canBeTrue), canBeFalse: show(t.canBeFalse), mode: classMode(k) };
}

/** The score and mask DAGs as plain data, so reference implementations can evaluate them. */
function exprGraph(k: AttentionKernel): object {
  const nodes = toposort([k.score, k.mask]).map((n) => ({
    id: n.id,
    op: n.op,
    dtype: n.dtype,
    src: n.src.map((x) => x.id),
    arg: n.arg,
  }));
  return { nodes, score: k.score.id, mask: k.mask.id };
}
