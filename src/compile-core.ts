// The compiler: source text → checked AST → graph IR → passes → backend artifact. Every phase
// reports diagnostics; compileWith throws one CompileError holding all of them. It imports no
// backend: the entry points pass theirs (compile.ts all of them, wgsl.ts WGSL alone, so a
// browser bundle of the WGSL entry carries no CUDA code).
import type { Artifact } from './codegen/artifact.js';
import type { TargetBackend } from './codegen/target.js';
import { CompileError, error, hasErrors, noSpan, warning, type Diagnostic } from './diagnostics.js';
import type { Span } from './diagnostics.js';
import type { CheckedDecl } from './dsl/checker.js';
import type { FrontFeatures } from './dsl/front-features.js';
import type { LazyFront } from './dsl/front-async.js';
import { checkSourceAsync, checkSourceWith } from './source-check.js';
import type { Program } from './dsl/ast.js';
import { hashString, hashValue } from './hash.js';
import { artifactSchedule } from './codegen/common.js';
import { defaultStorage, uniformFormats, withPagedKv, withStoredFormats } from './ir/formats.js';
import type { KVFormats } from './quant/format.js';
import type { AttentionKernel, ImportanceMode, Schedule, StorageDType } from './ir/kernel.js';
import { lowerDecl, type LowerRouting } from './ir/lower.js';
import type { Target } from './ir/passes/legalize.js';
import { defaultLimits, type TargetLimits } from './ir/passes/schedule.js';
import { runPipeline } from './ir/pipeline.js';
import { capacityShapeExpr } from './ir/routing.js';
import { toKernel, type AttentionIR } from './ir/program.js';
import { checkArguments, optionsProblem } from './compile-arguments.js';

export interface CompileOptions {
  readonly target: Target;
  /** File name used in diagnostics. */
  readonly file?: string;
  /** Which `attention` declaration to compile; default: the first. */
  readonly entry?: string;
  readonly headDim?: number;
  readonly valueDim?: number;
  readonly dtype?: StorageDType;
  /**
   * CUDA: the architecture to build for (sm_80, sm_86, sm_89, sm_90a; default sm_90a). It picks
   * the engines that arch runs and its shared-memory budget; the header and manifest name it.
   */
  readonly arch?: string;
  /** The device's limits (from the runtime); defaults are the target's portable minimums. */
  readonly limits?: Partial<TargetLimits>;
  /** Schedule overrides (tile sizes, threads, …). */
  readonly schedule?: Partial<Schedule>;
  /**
   * WGSL engine: 'row' (an invocation per query row, best on CPU adapters) or 'coop' (cooperative
   * workgroups, for GPUs). Default: coop when `limits` come from a hardware adapter (the runtime's
   * deviceLimits), else row. Kernels coop does not run (head dims not multiples of 4, all-empty
   * masks) keep 'row'.
   */
  readonly wgslEngine?: 'row' | 'coop';
  /** Emit the log-sum-exp side output (default true; on whenever `importance` is set). */
  readonly lse?: boolean;
  /**
   * Emit the importance side output `importance` [B, H, Nk] f32: per key, the attention mass
   * Σ_i p_ij of the call's query rows ('sum'), or that divided by the number of rows whose mask
   * allows the key ('normalized', 0 for a key no row sees). Not for routing kernels.
   */
  readonly importance?: ImportanceMode;
  /**
   * false: leave the split-KV decode variant out of the artifact (CUDA: no decode kernels and the
   * launcher always runs prefill, a .cu about half the size that nvcc builds in half the time;
   * WGSL: no decode module). Default true.
   */
  readonly decode?: boolean;
  /** Sees the IR after each pass (`--dump-ir`, verify in tests). */
  readonly observe?: (pass: string, ir: AttentionIR) => void;
}

export interface Compiled {
  readonly artifact: Artifact;
  readonly kernel: AttentionKernel;
  readonly decl: CheckedDecl;
  readonly program: Program;
  /**
   * What compiled but may not run everywhere (WGSL: more storage buffers than WebGPU's baseline
   * when `limits` do not name the device's), at the declaration's name. The CLI prints them.
   */
  readonly warnings: readonly Diagnostic[];
}

/**
 * The WGSL engine: the option, else coop on a hardware adapter (limits from the runtime's
 * deviceLimits say softwareAdapter: false) and row otherwise (CPU adapters, or no device known).
 */
export function wgslEngineFor(options: Pick<CompileOptions, 'wgslEngine' | 'limits'>): 'row' | 'coop' {
  return options.wgslEngine ?? (options.limits?.softwareAdapter === false ? 'coop' : 'row');
}

/** The schedule overrides of `options`, with the WGSL engine choice folded in. */
function scheduleOverrides(options: CompileOptions): { overrides?: Partial<Schedule> } {
  const coop = options.target === 'wgsl' && wgslEngineFor(options) === 'coop';
  if (!coop) return options.schedule ? { overrides: options.schedule } : {};
  return { overrides: { ...options.schedule, wgslEngine: 'coop' } };
}

/** The backends an entry point was built with, by target name. */
export type Backends = Readonly<Partial<Record<Target, TargetBackend>>>;

/**
 * Compiles `options.entry` (default: the first declaration) of `source` with the backend of
 * `options.target` and the front-end features `front` (all of them: dsl/front-eager.ts): a
 * CompileError holding every problem, or a TypeError for a wrong kind of argument.
 */
export function compileWith(
  backends: Backends,
  front: FrontFeatures,
  source: string,
  options: CompileOptions,
): Compiled {
  checkArguments(source, options);
  const checked = checkSourceWith(front, source, options.file ?? '<input>', options.entry);
  return renderLowered(lowerWith(backends, front, checked, source, options));
}

/**
 * compileWith for backends that load code generators on demand (TargetBackend.load, attnc/wgsl/async's
 * compileAsync): the same result and errors, as a promise; awaits the load between lowering and
 * rendering.
 */
export async function compileWithAsync(
  backends: Backends,
  front: LazyFront,
  source: string,
  options: CompileOptions,
): Promise<Compiled> {
  checkArguments(source, options);
  const file = options.file ?? '<input>';
  const checked = await checkSourceAsync(front, source, file, options.entry);
  const lowered = lowerWith(backends, front.loaded, checked, source, options);
  await lowered.target.load?.(lowered.kernel);
  return renderLowered(lowered);
}

/** A declaration checked, lowered and scheduled, with what rendering it needs. */
interface Lowered {
  readonly source: string;
  readonly program: Program;
  readonly decl: CheckedDecl;
  readonly kernel: AttentionKernel;
  readonly target: TargetBackend;
  readonly limits: TargetLimits;
  readonly refuse: Refuse;
}

/** Everything of compileWith after the front end, up to the kernel IR. */
function lowerWith(
  backends: Backends,
  front: Partial<FrontFeatures>,
  { program, decl }: { program: Program; decl: CheckedDecl },
  source: string,
  options: CompileOptions,
): Lowered {
  // Every later refusal is a CompileError at the declaration's name unless a span is given.
  const refuse: Refuse = (message, span = decl.decl.nameSpan) => {
    throw new CompileError([error(message, span)], source);
  };
  const optionProblem = optionsProblem(options);
  if (optionProblem) refuse(optionProblem);
  const target = backends[options.target];
  if (!target) {
    const have = Object.keys(backends).join(', ');
    return refuse(
      `target \`${options.target}\` is not in this build (it has: ${have}); import from 'attnc' for every target`,
    );
  }
  const importance = checkConstructs(front, decl, options, refuse);
  const limits = limitsOf(target, options, refuse);
  const lowering = { importance, routing: front.sparsity?.lowerRouting };
  const stored = front.storage?.checkedFormats(decl) ?? {};
  const ir = lowerAndSchedule(decl, options, { ...lowering, stored }, target, limits, source, refuse);
  const kernel = toKernel(ir);
  return {
    source,
    program,
    decl,
    kernel: options.decode === false ? { ...kernel, decodeVariant: false } : kernel,
    target,
    limits,
    refuse,
  };
}

/** The backend's artifact of a lowered kernel, and its warnings. */
function renderLowered({ source, program, decl, kernel, target, limits, refuse }: Lowered): Compiled {
  // The artifact's schedule record (the schedule with the storage dtype, as the runtime and
  // emitted modules read it) is what is hashed, so hashes did not change when formats split off.
  const meta = { sourceHash: hashString(source), scheduleHash: hashValue(artifactSchedule(kernel)) };
  let artifact: Artifact;
  try {
    artifact = target.render(kernel, meta, limits);
  } catch (e) {
    // A schedule the device cannot run (user overrides beyond its limits, f16 without shader-f16).
    return refuse((e as Error).message);
  }
  const warnings = (target.warnings?.(artifact, limits) ?? []).map((m) => warning(m, decl.decl.nameSpan));
  return { artifact, kernel, decl, program, warnings };
}

type Refuse = (message: string, span?: Span) => never;

/**
 * Refuses the source's constructs the target does not compile, at their own position, and returns
 * the importance mode asked for (the option wins over the source's `importance` statement). Each
 * statement's check is its front-end feature's: a declaration has statements only of features
 * loaded (front-features.ts).
 */
function checkConstructs(
  front: Partial<FrontFeatures>,
  decl: CheckedDecl,
  options: CompileOptions,
  refuse: Refuse,
): ImportanceMode | undefined {
  // Block routing compiles for WGSL; the other sparsity constructs check and run in the reference
  // only, so they are rejected here at their own position.
  const { dtype, headDim } = options;
  const unsupported =
    front.sparsity?.unsupportedRouting(decl.decl, options.target) ??
    front.storage?.unsupportedStorage(decl.decl, options.target) ??
    front.operandQuant?.unsupportedQk(decl.decl, options.target, dtype, headDim) ??
    front.operandQuant?.unsupportedPv(decl.decl, options.target, dtype, options.schedule?.engine, headDim);
  if (unsupported) refuse(unsupported.message, unsupported.span);
  const importance = options.importance ?? decl.decl.importance?.[0]?.variant;
  const sparse = decl.decl.sparsity?.[0];
  if (importance !== undefined && sparse)
    refuse('the importance output is not available for routing kernels yet', sparse.span);
  return importance;
}

/** The device limits: the target's defaults, the arch's (CUDA), then the caller's. */
function limitsOf(target: TargetBackend, options: CompileOptions, refuse: Refuse): TargetLimits {
  if (options.arch !== undefined && !target.limitsFor)
    refuse(`--arch is a CUDA option; target ${options.target} has none`);
  let archLimits: Partial<TargetLimits> = {};
  try {
    archLimits = target.limitsFor?.(options.arch) ?? {};
  } catch (e) {
    refuse((e as Error).message);
  }
  return { ...defaultLimits[options.target], ...archLimits, ...options.limits };
}

/** The declaration lowered to IR and run through the pass pipeline (schedule included). */
function lowerAndSchedule(
  decl: CheckedDecl,
  options: CompileOptions,
  {
    importance,
    routing,
    stored,
  }: { importance: ImportanceMode | undefined; routing: LowerRouting | undefined; stored: KVFormats },
  target: TargetBackend,
  limits: TargetLimits,
  source: string,
  refuse: Refuse,
): AttentionIR {
  const diagnostics: Diagnostic[] = [];
  const headDim = options.headDim ?? 64;
  const formats = withPagedKv(
    withStoredFormats(uniformFormats(options.dtype ?? defaultStorage(options.target)), stored),
    decl.decl.cache?.[0]?.pageSize,
  );
  let ir: AttentionIR;
  try {
    ir = runPipeline(
      withImportance(
        lowerDecl(decl.decl, decl.defaults, { lse: options.lse ?? true, formats, routing }),
        importance,
      ),
      {
        target: options.target,
        limits,
        request: {
          headDim,
          valueDim: options.valueDim ?? headDim,
          ...scheduleOverrides(options),
        },
        schedule: target.schedule,
        diagnostics,
      },
      options.observe,
    );
  } catch (e) {
    // Schedule failures are user-facing (a head dim too large for the device, say).
    return refuse((e as Error).message);
  }
  // Target diagnostics have no source position of their own: point at the declaration.
  const located = diagnostics.map((d) => (d.span === noSpan ? { ...d, span: decl.decl.nameSpan } : d));
  if (hasErrors(located)) throw new CompileError(located, source);
  if (ir.routing && capacityShapeExpr(ir.routing) === undefined)
    // The index output is sized by a shape expression, which has + - * but no division or calls.
    refuse(
      'routing counts must use only + - * of literals, int params and sizes (they size the indices output)',
      decl.decl.sparsity?.[0]?.span,
    );
  return ir;
}

/** The IR with the importance output requested; its pass reads the final lse, so lse is on too. */
function withImportance(ir: AttentionIR, importance: ImportanceMode | undefined): AttentionIR {
  return importance === undefined ? ir : { ...ir, outputs: { lse: true, importance } };
}
