// Renders an AttentionKernel to a WGSL module: optional summary passes (per-block min/max of the
// tensors that tile classification reads) and a flash-attention pass. See the header comment this
// file emits (kernel-header.ts) for the design as engine authors see it.
import { artifactSchedule } from '../common.js';
import { hasQuantizedKv } from '../../ir/formats.js';
import type { Node } from '../../ir/graph.js';
import type { AttentionKernel, TensorSlot } from '../../ir/kernel.js';
import { Op, type VarName } from '../../ir/ops.js';
import { attendsSelected } from '../../ir/routing.js';
import type { Artifact } from '../artifact.js';
import { linearize, type Linearized } from '../linearize.js';
import { checkWgslSchedule, type WgslLimits } from './limits.js';
import type { AttentionParts } from './attention.js';
import { isCoop } from './coop-geometry.js';
import { feature, hasDecodeVariant, type QuantizedKv, type WgslFeatures } from './features.js';
import type { DecodeRequest } from './decode-plan.js';
import { constants, headerComment, usesF16 } from './kernel-header.js';
import { bindingsRead, classMode, elementVars, sizeVars, tensorsRead, tileVars } from './kernel-vars.js';
import { kvRowsRecord } from './kv-load.js';
import { layoutSource, summaryBinding, wgslLayout, type WgslLayout } from './layout.js';
import { stageEntryPoints, SUMMARY_THREADS } from './stages.js';
import { dimText, helperSource, summaryVar, tensorVar, wgslRenderer, type WgslContext } from './rules.js';
import { tileClassFn } from './tile-class.js';

type Cx = (vars: Partial<Record<VarName, string>>) => WgslContext;

export function summaryEntry(t: TensorSlot, block: number, dimText: string): string {
  const ty = t.dtype;
  const [lowest, highest] = ty === 'i32' ? ['I32_MIN', 'I32_MAX'] : ['-F32_MAX', 'F32_MAX'];
  return [
    `// Per-block (min, max) of ${t.name}: invocation g covers positions [g*${block}, (g+1)*${block}).`,
    `@compute @workgroup_size(${SUMMARY_THREADS})`,
    `fn summarize_${t.name}(@builtin(global_invocation_id) gid: vec3<u32>) {`,
    `  let len = u32(max(${dimText}, 0i));`,
    `  let start = gid.x * ${block}u;`,
    '  if (start >= len) { return; }',
    `  let end = min(start + ${block}u, len);`,
    `  var r = vec2<${ty}>(${highest}, ${lowest});`,
    '  for (var i = start; i < end; i++) {',
    `    let x = ${tensorVar(t.name)}[i];`,
    `    r = vec2<${ty}>(min(r.x, x), max(r.y, x));`,
    '  }',
    `  ${summaryVar(t.name)}[2u * gid.x] = r.x;`,
    `  ${summaryVar(t.name)}[2u * gid.x + 1u] = r.y;`,
    '}',
  ].join('\n');
}

export interface WgslMeta {
  readonly sourceHash: string;
  readonly scheduleHash: string;
}

/** Element expressions: row-invariant parts hoisted, the mask only where a tile is partial. */
function attentionParts(kernel: AttentionKernel, cx: Cx): AttentionParts {
  const mode = classMode(kernel);
  const r = wgslRenderer(cx(elementVars));
  const invariants = kernel.hoists.row;
  const row = linearize(invariants, r, 'rw');
  const bound = new Map(invariants.map((n, i) => [n.id, row.roots[i]!]));
  const mask: Linearized | undefined =
    mode === 'partial' || mode === 'dynamic' ? linearize([kernel.mask], r, 'mk', bound) : undefined;
  const score = linearize([kernel.score], r, 'sc', bound);
  return {
    schedule: kernel.schedule,
    formats: kernel.formats,
    mode,
    lse: kernel.outputs.lse,
    row,
    mask,
    score,
    // `emit` writes the selection but attends under the static mask alone.
    routed: kernel.routing !== undefined && attendsSelected(kernel.routing),
  };
}

/** The bindings the attention pass reads (tensors and summaries in its classification, mask or score). */
function attentionBindings(
  kernel: AttentionKernel,
  layout: WgslLayout,
  classRoots: readonly Node[],
): string[] {
  const mode = classMode(kernel);
  const elementRoots = mode === 'full' || mode === 'empty' ? [kernel.score] : [kernel.mask, kernel.score];
  const attnRoots = mode === 'empty' ? [] : [...classRoots, ...elementRoots];
  const summarized = tensorsRead(attnRoots, new Set([Op.RANGE_MIN, Op.RANGE_MAX]));
  const loaded = tensorsRead(attnRoots, new Set([Op.LOAD]));
  for (const name of summarized) {
    if (!kernel.summaries.some((x) => x.tensor === name)) {
      throw new Error(
        `WGSL: RANGE_MIN/RANGE_MAX read a summary of "${name}", which kernel.summaries does not list`,
      );
    }
  }
  return layout.bindings
    .filter((b) => {
      if (b.role === 'tensor') return loaded.has(b.name);
      if (b.role === 'summary') return [...summarized].some((t) => summaryBinding(t) === b.name);
      if (b.role === 'scratch' || b.role === 'importance') return false;
      if (mode === 'empty') return b.role === 'out' || b.role === 'lse' || b.role === 'uniforms';
      return true;
    })
    .map((b) => b.name);
}

/**
 * The passes before the attention: salient lists to flags (only quantized caches have them: the
 * quantized-K/V feature renders them), then the tensors' block summaries.
 */
function summaryPasses(
  kernel: AttentionKernel,
  tensors: ReadonlyMap<string, TensorSlot>,
  quant: QuantizedKv | undefined,
): string[] {
  return [
    ...(quant?.salientSources(kernel, tensors) ?? []),
    ...kernel.summaries.map(({ tensor }) => {
      const t = tensors.get(tensor)!;
      return summaryEntry(t, kernel.schedule.summaryBlock, dimText(t.dims[0]!));
    }),
  ];
}

/**
 * Renders `kernel` to a WGSL artifact with the code generators of `features` (features.ts; one the
 * kernel needs and `features` lacks is an error). With `limits` (runtime/webgpu.ts deviceLimits),
 * throws if the schedule does not fit that device; without, checks only what every device needs.
 */
export function renderWgslWith(
  features: Partial<WgslFeatures>,
  kernel: AttentionKernel,
  meta: WgslMeta,
  limits?: WgslLimits,
): Artifact {
  const s = kernel.schedule;
  const recorded = artifactSchedule(kernel);
  checkWgslSchedule(recorded, limits);
  const routingFeature = kernel.routing && feature(features, 'routing');
  const quant = hasQuantizedKv(kernel.formats) ? feature(features, 'quantize') : undefined;
  const layout = wgslLayout(kernel, features);
  const tensors = new Map(kernel.tensors.map((t) => [t.name, t]));
  const params = new Map(kernel.params.map((p) => [p.name, p]));
  const used = new Set<string>();
  const cx: Cx = (vars) => ({ vars, params, tensors, summaryBlock: s.summaryBlock, used });
  // The order of the renders below is the order helpers are recorded in `used`.
  const classRoots = kernel.tiles.kind === 'dynamic' ? [kernel.tiles.canBeTrue, kernel.tiles.canBeFalse] : [];
  // Dynamic classes: `tile_class`, a function every invocation calls per k-tile.
  const classifier = tileClassFn(kernel, cx(tileVars)).join('\n') || undefined;
  const parts = attentionParts(kernel, cx);
  const body = isCoop(s)
    ? feature(features, 'coopEngine').coopBody(kernel, layout, cx(elementVars), parts.mode, features)
    : feature(features, 'rowEngine').attentionBody(parts);
  const routing =
    kernel.routing && routingFeature && renderRouting(routingFeature, kernel, kernel.routing, cx, classRoots);
  const attnBindings = attentionBindings(kernel, layout, classRoots);
  // The importance pass (importance.ts) runs last: it reads the final lse.
  const importance =
    kernel.outputs.importance &&
    feature(features, 'importance').renderImportance(kernel, kernel.outputs.importance, cx);
  // Salient index lists become flags first (salient-list.ts), in this module and the decode ones.
  const entries = [
    ...(quant?.salientEntryPoints(kernel) ?? []),
    ...stageEntryPoints({
      kernel,
      tensors,
      routing: routingFeature,
      routingReads: routing?.reads ?? [],
      attnBindings,
      importanceEntry: importance ? importance.entry : undefined,
    }),
  ];

  const helpers = helperSource(cx(elementVars)) || undefined;
  const summarySources = summaryPasses(kernel, tensors, quant);
  const sections = [
    headerComment(kernel, meta),
    usesF16(kernel) ? 'enable f16;' : undefined,
    isCoop(s) && s.subgroups === true ? 'enable subgroups;' : undefined,
    constants(s),
    layoutSource(kernel, layout, quant),
    helpers,
    classifier,
    routing?.source,
    ...summarySources,
    body,
    importance ? importance.source : undefined,
  ];
  // Decode mode (split-KV + lse merge, decode.ts): a second module the runtime picks for few queries.
  // The coop engine has its own (decode-coop.ts): lanes share key rows, for GPUs.
  const decodeRequest = (): DecodeRequest => ({
    kernel,
    meta,
    layout,
    quant,
    prefix: usesF16(kernel) ? 'enable f16;' : undefined,
    constants: constants(s),
    shared: [helpers, classifier, ...summarySources],
    parts,
    summaryEntries: entries.filter((e) => e.role === 'summary'),
    attentionBindings: attnBindings,
  });
  const decodeMain = !hasDecodeVariant(kernel)
    ? undefined
    : isCoop(s)
      ? feature(features, 'coopEngine').renderCoopDecode(decodeRequest())
      : feature(features, 'rowEngine').renderDecode(decodeRequest());
  const decode =
    decodeMain && importance
      ? feature(features, 'importance').withImportance(decodeMain, importance)
      : decodeMain;
  const quantize = quant?.wgslQuantizeModules(kernel);
  return {
    target: 'wgsl',
    name: kernel.name,
    code: sections.filter((x) => x !== undefined).join('\n\n') + '\n',
    entryPoints: entries,
    bindings: layout.bindings,
    uniforms: layout.uniforms,
    params: kernel.params,
    schedule: recorded,
    sourceHash: meta.sourceHash,
    scheduleHash: meta.scheduleHash,
    // The coop engine loads float K/V rows as vec4s (kv-load.ts): strides in whole vec4s.
    kvRows: kvRowsRecord(kernel.formats, isCoop(s) ? 4 : 1),
    ...(decode ? { decode } : {}),
    ...(quantize ? { quantize } : {}),
  };
}

/** The routing passes' WGSL and launch records (after the summaries, before the attention). */
function renderRouting(
  render: WgslFeatures['routing'],
  kernel: AttentionKernel,
  plan: NonNullable<AttentionKernel['routing']>,
  cx: Cx,
  classRoots: readonly Node[],
): { source: string; reads: string[] } {
  const mode = classMode(kernel);
  const counts = linearize([plan.source.count, plan.first, plan.local], wgslRenderer(cx(sizeVars)), 'rc');
  // Candidacy evaluates the static mask pair by pair where the classifier cannot decide.
  const pairwise = mode === 'partial' || mode === 'dynamic';
  const mask = pairwise ? linearize([kernel.mask], wgslRenderer(cx(elementVars)), 'rm') : undefined;
  return {
    source: render.routingHelpers(kernel.formats, plan, { counts, mask, mode }),
    reads: bindingsRead([...classRoots, ...(pairwise ? [kernel.mask] : [])]),
  };
}
