// The records beside a rendered CUDA attention artifact: its bindings and the JSON manifest
// (functions, args struct, tiles, the score and mask DAGs, routing and cache records) that
// callers and reference implementations read instead of parsing the .cu.
import { show, toposort } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Artifact, Binding } from '../artifact.js';
import { artifactSchedule } from '../common.js';
import { classMode } from './exprs.js';
import { errorName, initName, launchName, summaryElemsName } from './launcher.js';
import type { CudaLayout } from './layout.js';
import { importanceBinding } from './importance.js';
import { dimLabel } from './rules.js';
import type { CoreOutput } from './simt.js';
import { routingManifest } from './routing-host.js';
import { routeScratchElemsName } from './routing.js';
import { routingBindingShapes } from './routing-attn.js';
import { selectHandles } from './select-host.js';
import { selectBindingShapes, selectManifest } from './select-records.js';
import { quantizeLaunchName } from './quantize-host.js';
import type { QuantizeSpec } from './quantize.js';
import { cachesManifest } from './quant-manifest.js';
import { decodeLeanRecord } from './decode-facts.js';
import type { CudaMeta } from './kernel-text.js';

/** What the manifest records of one rendering besides the kernel itself. */
export interface RenderedParts {
  readonly meta: CudaMeta;
  readonly arch: string;
  readonly layout: CudaLayout;
  readonly core: CoreOutput;
  readonly align: number;
  readonly quantize: readonly QuantizeSpec[];
  /** Token selection (select*.ts) owns the routing record when it handles the kernel. */
  readonly selecting: boolean;
}

/** The `<name>.json` manifest's object (key order is the file's). */
export function cudaManifest(kernel: AttentionKernel, artifact: Artifact, parts: RenderedParts): object {
  const { meta, layout, core, align, quantize, selecting } = parts;
  const caches = cachesManifest(kernel, layout);
  const decodeLean = decodeLeanRecord(kernel);
  return {
    target: 'cuda',
    name: kernel.name,
    sourceHash: meta.sourceHash,
    scheduleHash: meta.scheduleHash,
    arch: parts.arch,
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
}

export function cudaBindings(k: AttentionKernel, layout: CudaLayout): Binding[] {
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
