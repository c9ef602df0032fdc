// Decode mode of the coop WGSL engine (schedule.wgslEngine = 'coop'): the split-KV module for GPUs.
// The row engine's decode module (decode.ts) gives each invocation a whole key row and a private
// acc[Dv]; here several invocations share a key row (coalesced vec4 loads, partial dots summed by
// subgroup shuffles), a workgroup serves all query heads of its kv head, and the merge spreads the
// splits over its workgroup (decode-coop-split.ts, decode-coop-merge.ts). Same inputs, outputs,
// tile classes, row/score code (AttentionParts) and non-finite contract as the row engine's.
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import { artifactSchedule } from '../common.js';
import type { Schedule } from '../../ir/kernel.js';
import type { Artifact, DecodeVariant, EntryPoint } from '../artifact.js';
import { COOP_MERGE_THREADS, coopDecodeMergeBody, type MergeOutputs } from './decode-coop-merge.js';
import { coopDecodeWideMergeBody, wideMergeGrid, type WideMergeShape } from './decode-coop-merge-wide.js';
import { coopDecodeGeometry } from './decode-coop-parts.js';
import { coopDecodeSplitBody } from './decode-coop-split.js';
import {
  checkCoopDecodeTuning,
  coopDecodeTuningProblem,
  defaultCoopDecodeTuning,
  hasWideMerge,
  tuningBlock,
  tuningConstants,
  WIDE_MERGE_THREADS,
  type CoopDecodeCodes,
  type CoopDecodeTuning,
  type WideMergeTuning,
} from './decode-coop-tuning.js';
import { DECODE_MAX_NQ, DECODE_SCRATCH, decodeModulePlan, type DecodeRequest } from './decode-plan.js';
import { kvRowsRecord } from './kv-load.js';
import { loaded, type QuantizedKv } from './features.js';
import type { WidePlan } from './dequant-run-plan.js';
import { layoutSource, type WgslLayout } from './layout.js';

const SCRATCH = DECODE_SCRATCH;

/** Per (batch, kv head, split, packed row): acc[Dv], then (m, l) after all the accs. */
const scratchShape = (t: CoopDecodeTuning): string =>
  `B * Hkv * cdiv(Nk, ${t.splitKeys}) * cdiv(H, Hkv) * Nq * (Dv + 2)`;

const splitGrid = (t: CoopDecodeTuning): EntryPoint['grid'] => [
  `cdiv(Nk, ${t.splitKeys}) * cdiv(cdiv(H, Hkv) * Nq, ${t.rows})`,
  'Hkv',
  'B',
];

/** The wide merge's shape under `t`, from the decode module's bindings. */
function wideMergeShape(t: WideMergeTuning, a: Pick<Artifact, 'bindings'>, valueDim: number): WideMergeShape {
  return {
    ...mergeOutputs(a),
    cols: t.mergeCols,
    threads: t.mergeThreads ?? WIDE_MERGE_THREADS,
    valueDim,
  };
}

/** The wide merge's shape under `t` (undefined: the default merge). */
const wideMerge = (
  t: CoopDecodeTuning,
  a: Pick<Artifact, 'bindings'>,
  valueDim: number,
): WideMergeShape | undefined => (hasWideMerge(t) ? wideMergeShape(t, a, valueDim) : undefined);

/** The merge's outputs as the decode module's bindings declare them. */
const mergeOutputs = (a: Pick<Artifact, 'bindings'>): MergeOutputs => ({
  f16Out: a.bindings.find((b) => b.name === 'out')?.dtype === 'f16',
  lse: a.bindings.some((b) => b.name === 'lse'),
});

/** The merge entry point's launch record under `t` (the default merge's when `w` is undefined). */
const mergeEntry = (ep: EntryPoint, w: WideMergeShape | undefined): EntryPoint =>
  w
    ? { ...ep, workgroupSize: [w.threads, 1, 1] as const, grid: wideMergeGrid(w) }
    : { ...ep, workgroupSize: [COOP_MERGE_THREADS, 1, 1] as const, grid: ['Nq', 'H', 'B'] };

/** Where the merge pass's WGSL starts (it ends the module: renderCoopDecode puts it last). */
const MERGE_STARTS = ['const DM_THREADS: u32 = ', 'const DW_THREADS: u32 = '];
function mergeStart(code: string): number {
  const at = MERGE_STARTS.map((m) => code.indexOf(m)).filter((i) => i >= 0);
  if (at.length !== 1) throw new Error('retuneCoopDecode: the module has no merge pass to replace');
  return at[0]!;
}

/** vec4 views of q, k and v for attention_split (head dims are multiples of 4 on the coop engine). */
function vec4Views(
  layout: WgslLayout,
  dtype: string,
  formats: TensorFormats,
  wide?: { plan: WidePlan; quant: QuantizedKv },
): string {
  const index = (name: string): number => {
    const b = layout.bindings.find((x) => x.name === name);
    if (!b) throw new Error(`WGSL coop decode: the layout has no "${name}" binding`);
    return b.index;
  };
  const t = dtype === 'f16' ? 'f16' : 'f32';
  return [
    '// vec4 views of q, k and v for attention_split.',
    // A quantized cache's binding holds u32 codes, read through <k|v>_dequant instead.
    ...['q', 'k', 'v']
      .filter((n) => n === 'q' || formats[n as 'k' | 'v'].kind === 'float')
      .map((n) => `@group(0) @binding(${index(n)}) var<storage, read> ${n}_buf4: array<vec4<${t}>>;`),
    // Wide code loads read the codes through these views (the split pass uses no other view of them).
    ...(wide ? wide.quant.codesViewDecls(wide.plan, index) : []),
  ].join('\n');
}

/**
 * Schedule.coopDecodeCodes in effect: absent = 'wide16', the H200's pick (Dawn/Vulkan, B 4 H 32 /
 * Hkv 8 D 128, round 10: against the word loads, 32K / 128K, int8 1.55x / 1.56x, e4m3 1.22x / 1.13x,
 * int4 1.31x / 1.34x, KIVI int2 1.69x / 1.69x; 'wide16' beat 'wide' on int4 and int2 and equals it
 * on int8 and e4m3).
 */
const codesMode = (s: Schedule): CoopDecodeCodes => s.coopDecodeCodes ?? 'wide16';

/**
 * The wide code-load plan of a module (Schedule.coopDecodeCodes), undefined when off or no cache
 * fits; the plan is the quantized-K/V feature's, which a kernel without a quantized cache lacks.
 */
const wideCodesOf = (req: DecodeRequest, t: CoopDecodeTuning): WidePlan | undefined =>
  codesMode(req.kernel.schedule) !== 'words'
    ? req.quant?.widePlan(req.kernel.formats, req.kernel.schedule, t.lanes)
    : undefined;

/**
 * The decode module's schedule: the main one with blockQ = the packed rows of a workgroup, so that
 * the runtime's scratch estimate (row tiles of blockQ rows × (Dv + 2) per split) is decode_part's
 * size rounded up to whole row tiles, not to the main module's 64-row tiles.
 */
const decodeSchedule = <S extends Schedule>(s: S, t: CoopDecodeTuning): S =>
  Object.freeze({ ...s, blockQ: t.rows });

/**
 * The knobs of a request: the lanes Schedule.coopDecodeLanes gives, else the default, which
 * 'wide16' code loads lower where runs would be short. The one place a module's lanes are decided;
 * callers read them back from the module (renderedCoopDecodeTuning).
 */
function requestTuning(req: DecodeRequest): WideMergeTuning {
  const s = req.kernel.schedule;
  const t = defaultCoopDecodeTuning(s);
  if (s.coopDecodeLanes !== undefined) return { ...t, lanes: s.coopDecodeLanes };
  // Without a quantized cache (no quantized-K/V feature) 'wide16' keeps the lanes.
  return codesMode(s) === 'wide16' && req.quant
    ? { ...t, lanes: req.quant.wide16Lanes(req.kernel.formats, s, t.lanes) }
    : t;
}

/**
 * The coop decode module of a compile: the request's knobs, so always the wide merge; other knobs,
 * the default merge among them, come from retuneCoopDecode (which compileAsync's chunk of this
 * module leaves out, and with it the default merge).
 */
export function renderCoopDecode(req: DecodeRequest): DecodeVariant {
  const tuning = requestTuning(req);
  checkCoopDecodeTuning(tuning);
  const s = req.kernel.schedule;
  const subgroups = s.subgroups === true;
  const plan = decodeModulePlan(req, {
    scratchShape: scratchShape(tuning),
    splitThreads: tuning.threads,
    splitGrid: splitGrid(tuning),
    mergeThreads: COOP_MERGE_THREADS,
  });
  const { layout } = plan;
  const wide = wideMergeShape(tuning, layout, s.valueDim);
  const codes = wideCodesOf(req, tuning);
  const entryPoints = plan.entryPoints.map((ep) =>
    ep.name === 'attention_merge' ? mergeEntry(ep, wide) : ep,
  );
  const header = [
    `// attnc decode module for kernel "${req.kernel.name}", coop engine (generated by attnc; do not edit).`,
    `// source ${req.meta.sourceHash}, schedule ${req.meta.scheduleHash}. Split-KV (flash-decoding):`,
    '// attention_split: one workgroup per (split of DC_SPLIT_KEYS keys, tile of DC_ROWS packed rows,',
    '// kv head, batch); DC_LANES invocations share each key row (vec4 columns), partial dots summed',
    `// ${subgroups ? 'by subgroup shuffles (workgroup memory where a lane group spans subgroups)' : 'through workgroup memory'}; one partial (acc, m, l) per row and split in`,
    '// decode_part; attention_merge combines them per row by log-sum-exp.',
  ].join('\n');
  const code = [
    header,
    req.prefix,
    subgroups ? 'enable subgroups;' : undefined,
    req.constants,
    tuningConstants(tuning),
    layoutSource(req.kernel, layout, req.quant),
    vec4Views(
      layout,
      sharedStorage(req.kernel.formats),
      req.kernel.formats,
      codes && { plan: codes, quant: loaded(req.quant, 'quantize') },
    ),
    ...req.shared,
    coopDecodeGeometry(),
    codes
      ? loaded(req.quant, 'quantize').dequantRunFunctions(codes, req.kernel.formats.paged !== undefined)
      : undefined,
    coopDecodeSplitBody(req.parts, subgroups, codes),
    coopDecodeWideMergeBody(wide),
  ];
  return {
    maxNq: DECODE_MAX_NQ,
    splitKeys: tuning.splitKeys,
    coop: { tuning, codes: codesMode(s), ...(codes ? { codeLanes: codes.lanes } : {}) },
    artifact: {
      target: 'wgsl',
      name: req.kernel.name,
      code: code.filter((x) => x !== undefined).join('\n\n') + '\n',
      entryPoints,
      bindings: layout.bindings,
      uniforms: layout.uniforms,
      params: req.kernel.params,
      schedule: decodeSchedule(artifactSchedule(req.kernel), tuning),
      sourceHash: req.meta.sourceHash,
      scheduleHash: req.meta.scheduleHash,
      // Float K/V rows load as vec4s (decode-coop-split.ts): strides in whole vec4s.
      kvRows: kvRowsRecord(req.kernel.formats, 4),
    },
  };
}

/** The knobs a coop decode module was rendered (or last re-tuned) with; throws for other modules. */
export function renderedCoopDecodeTuning(variant: DecodeVariant): CoopDecodeTuning {
  if (!variant.coop)
    throw new Error(
      "renderedCoopDecodeTuning: the module has no decode tuning block (not the coop engine's)",
    );
  return variant.coop.tuning;
}

/**
 * Why `variant` cannot be re-tuned to `tuning` (undefined when it can). Wide code loads take only
 * the lanes they were rendered for: each lane's run length is compiled into the run functions
 * (their return type, loads and shifts) and the codes views' element type; rendering them anew
 * needs the kernel's formats, which a module does not carry, and editing them in the text would
 * be a second renderer. Other lanes: compile with Schedule.coopDecodeLanes (or 'words' loads).
 */
export function coopDecodeRetuneProblem(
  variant: DecodeVariant,
  tuning: CoopDecodeTuning,
): string | undefined {
  if (!variant.coop) return "the module has no decode tuning block (not the coop engine's)";
  const problem = coopDecodeTuningProblem(tuning);
  if (problem) return problem;
  const { codeLanes, codes } = variant.coop;
  if (codeLanes !== undefined && codeLanes !== tuning.lanes)
    return (
      `wide code loads were rendered for ${codeLanes} lanes, not ${tuning.lanes} ` +
      `(allowed lanes: ${codeLanes} under coopDecodeCodes '${codes}'; compile with schedule.coopDecodeLanes for others)`
    );
  return undefined;
}

/**
 * The same coop decode module with other knobs (for the benchmark's sweeps): the knobs reach the
 * code only through its tuning block and the split pass's launch record, which are replaced.
 * The hashes stay those of the compile: do not cache a re-tuned module under them.
 */
export function retuneCoopDecode(variant: DecodeVariant, tuning: CoopDecodeTuning): DecodeVariant {
  const rendered = variant.coop;
  const problem = coopDecodeRetuneProblem(variant, tuning);
  if (!rendered || problem) throw new Error(`retuneCoopDecode: ${problem ?? 'not a coop decode module'}`);
  const a = variant.artifact;
  const wide = wideMerge(tuning, a, a.schedule.valueDim);
  const tuned = a.code.replace(tuningBlock(a.code), tuningConstants(tuning));
  const merge = wide ? coopDecodeWideMergeBody(wide) : coopDecodeMergeBody(mergeOutputs(a));
  const code = tuned.slice(0, mergeStart(tuned)) + merge + '\n';
  const entryPoints = a.entryPoints.map((ep) =>
    ep.name === 'attention_split'
      ? { ...ep, workgroupSize: [tuning.threads, 1, 1] as const, grid: splitGrid(tuning) }
      : ep.name === 'attention_merge'
        ? mergeEntry(ep, wide)
        : ep,
  );
  const bindings = a.bindings.map((b) => (b.name === SCRATCH ? { ...b, shape: [scratchShape(tuning)] } : b));
  const schedule = decodeSchedule(a.schedule, tuning);
  return {
    ...variant,
    splitKeys: tuning.splitKeys,
    coop: { ...rendered, tuning },
    artifact: { ...a, code, entryPoints, bindings, schedule },
  };
}
