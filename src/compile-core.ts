// The compiler: source text → checked AST → graph IR → passes → backend artifact. Every phase
// reports diagnostics; compileWith throws one CompileError holding all of them. It imports no
// backend: the entry points pass theirs (compile.ts all of them, wgsl.ts WGSL alone, so a
// browser bundle of the WGSL entry carries no CUDA code).
import type { Artifact } from './codegen/artifact.js';
import type { TargetBackend } from './codegen/target.js';
import { CompileError, error, hasErrors, noSpan, type Diagnostic } from './diagnostics.js';
import type { CheckedDecl } from './dsl/checker.js';
import { frontend } from './dsl/index.js';
import type { Program } from './dsl/ast.js';
import { hashString, hashValue } from './hash.js';
import { artifactSchedule } from './codegen/common.js';
import { defaultStorage, uniformFormats, withPagedKv, withStoredFormats } from './ir/formats.js';
import { checkedFormats } from './quant/format.js';
import type { AttentionKernel, ImportanceMode, Schedule, StorageDType } from './ir/kernel.js';
import { lowerDecl } from './ir/lower.js';
import type { Target } from './ir/passes/legalize.js';
import { defaultLimits, type TargetLimits } from './ir/passes/schedule.js';
import { runPipeline } from './ir/pipeline.js';
import { capacityShapeExpr } from './ir/routing.js';
import { unsupportedRouting } from './ir/routing-check.js';
import { toKernel, type AttentionIR } from './ir/program.js';
import { unsupportedStorage } from './ir/storage-support.js';
import { unsupportedPv, unsupportedQk } from './ir/int8qk-support.js';
import { misspeltKey } from './misspelt.js';

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
  /** Sees the IR after each pass (`--dump-ir`, verify in tests). */
  readonly observe?: (pass: string, ir: AttentionIR) => void;
}

export interface Compiled {
  readonly artifact: Artifact;
  readonly kernel: AttentionKernel;
  readonly decl: CheckedDecl;
  readonly program: Program;
}

/** Parses and checks; returns the chosen declaration or throws a CompileError. */
export function checkSource(
  source: string,
  file = '<input>',
  entry?: string,
): { program: Program; decl: CheckedDecl } {
  const fe = frontend(source, file);
  const diags: Diagnostic[] = [...fe.diagnostics];
  if (hasErrors(diags)) throw new CompileError(diags, source);
  const decl = entry === undefined ? fe.decls[0] : fe.decls.find((d) => d.decl.name === entry);
  if (!decl) {
    const names = fe.decls.map((d) => d.decl.name).join(', ') || 'none';
    const span = { file, line: 1, column: 1, offset: 0, length: 1 };
    throw new CompileError(
      [
        error(
          entry
            ? `no attention named \`${entry}\` (declared: ${names})`
            : 'no `attention` declaration in this file',
          span,
        ),
      ],
      source,
    );
  }
  return { program: fe.program, decl };
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

const TARGETS: readonly string[] = ['wgsl', 'cuda'];
const DTYPES: readonly string[] = ['f32', 'f16', 'bf16'];

const OPTION_NAMES: readonly (keyof CompileOptions)[] = [
  'target',
  'file',
  'entry',
  'headDim',
  'valueDim',
  'dtype',
  'arch',
  'limits',
  'schedule',
  'wgslEngine',
  'lse',
  'importance',
  'observe',
];
/**
 * An option key that misspells a known one (`headdim`, `head_dim`, `dim`): without this check the
 * option was dropped and its default used, a silent wrong kernel. Other unknown keys pass, since
 * callers spread wider objects into the options.
 */
function misspeltOption(o: object): string | undefined {
  for (const key of Object.keys(o)) {
    if ((OPTION_NAMES as readonly string[]).includes(key)) continue;
    const meant = key === 'dim' ? 'headDim' : misspeltKey(key, OPTION_NAMES);
    if (meant) return `unknown option \`${key}\`: did you mean \`${meant}\`?`;
  }
  return undefined;
}

/** Why a head or value dim option is not a positive integer, or undefined. */
function dimProblem(name: 'headDim' | 'valueDim', v: unknown): string | undefined {
  if (v === undefined || (Number.isSafeInteger(v) && (v as number) > 0)) return undefined;
  return `option ${name}: expected a positive integer, got ${typeof v === 'string' ? `\`${v}\`` : String(v)}`;
}

/** Why the options (from JS callers, not type-checked) are malformed, or undefined. */
function optionsProblem(o: CompileOptions): string | undefined {
  const show = (v: unknown): string => (typeof v === 'string' ? `\`${v}\`` : String(v));
  const misspelt = misspeltOption(o);
  if (misspelt) return misspelt;
  if (!TARGETS.includes(o.target)) return `unknown target ${show(o.target)} (targets: ${TARGETS.join(', ')})`;
  const dim = dimProblem('headDim', o.headDim) ?? dimProblem('valueDim', o.valueDim);
  if (dim) return dim;
  if (o.dtype !== undefined && !DTYPES.includes(o.dtype))
    return `unknown dtype ${show(o.dtype)} (dtypes: ${DTYPES.join(', ')})`;
  if (o.lse !== undefined && typeof o.lse !== 'boolean')
    return `option lse: expected a boolean, got ${show(o.lse)}`;
  if (o.importance !== undefined && o.importance !== 'sum' && o.importance !== 'normalized')
    return `option importance: expected sum or normalized, got ${show(o.importance)}`;
  if (o.wgslEngine !== undefined && o.wgslEngine !== 'row' && o.wgslEngine !== 'coop')
    return `option wgslEngine: expected row or coop, got ${show(o.wgslEngine)}`;
  return undefined;
}

/** The backends an entry point was built with, by target name. */
export type Backends = Readonly<Partial<Record<Target, TargetBackend>>>;

/** compile(source, options) from JS callers: a wrong kind of argument is a TypeError naming it. */
function checkArguments(source: unknown, options: unknown): void {
  const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
  if (typeof source !== 'string')
    throw new TypeError(
      `compile(source, options): source must be a string of .attn text, got ${kind(source)}`,
    );
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(
      `compile(source, options): options must be an object such as { target: 'wgsl' }, got ${kind(options)}`,
    );
}

export function compileWith(backends: Backends, source: string, options: CompileOptions): Compiled {
  checkArguments(source, options);
  const file = options.file ?? '<input>';
  const { program, decl } = checkSource(source, file, options.entry);
  const optionProblem = optionsProblem(options);
  if (optionProblem) throw new CompileError([error(optionProblem, decl.decl.nameSpan)], source);
  const target = backends[options.target];
  if (!target) {
    const have = Object.keys(backends).join(', ');
    throw new CompileError(
      [
        error(
          `target \`${options.target}\` is not in this build (it has: ${have}); import from 'attnc' for every target`,
          decl.decl.nameSpan,
        ),
      ],
      source,
    );
  }
  // Block routing compiles for WGSL; the other sparsity constructs check and run in the reference
  // only, so they are rejected here at their own position.
  const unsupported =
    unsupportedRouting(decl.decl, options.target) ??
    unsupportedStorage(decl.decl, options.target) ??
    unsupportedQk(decl.decl, options.target, options.dtype, options.headDim) ??
    unsupportedPv(decl.decl, options.target, options.dtype, options.schedule?.engine, options.headDim);
  if (unsupported) throw new CompileError([error(unsupported.message, unsupported.span)], source);
  // The option wins over the source's `importance` statement.
  const importance = options.importance ?? decl.decl.importance?.[0]?.variant;
  const sparse = decl.decl.sparsity?.[0];
  if (importance !== undefined && sparse)
    throw new CompileError(
      [error('the importance output is not available for routing kernels yet', sparse.span)],
      source,
    );
  const diagnostics: Diagnostic[] = [];
  const headDim = options.headDim ?? 64;
  if (options.arch !== undefined && !target.limitsFor)
    throw new CompileError(
      [error(`--arch is a CUDA option; target ${options.target} has none`, decl.decl.nameSpan)],
      source,
    );
  let archLimits: Partial<TargetLimits>;
  try {
    archLimits = target.limitsFor?.(options.arch) ?? {};
  } catch (e) {
    throw new CompileError([error((e as Error).message, decl.decl.nameSpan)], source);
  }
  const limits: TargetLimits = { ...defaultLimits[options.target], ...archLimits, ...options.limits };
  let ir: AttentionIR;
  try {
    ir = runPipeline(
      withImportance(
        lowerDecl(decl.decl, decl.defaults, {
          lse: options.lse ?? true,
          formats: withPagedKv(
            withStoredFormats(
              uniformFormats(options.dtype ?? defaultStorage(options.target)),
              checkedFormats(decl),
            ),
            decl.decl.cache?.[0]?.pageSize,
          ),
        }),
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
    throw new CompileError([error((e as Error).message, decl.decl.nameSpan)], source);
  }
  // Target diagnostics have no source position of their own: point at the declaration.
  const located = diagnostics.map((d) => (d.span === noSpan ? { ...d, span: decl.decl.nameSpan } : d));
  if (hasErrors(located)) throw new CompileError(located, source);
  if (ir.routing && capacityShapeExpr(ir.routing) === undefined) {
    // The index output is sized by a shape expression, which has + - * but no division or calls.
    const at = decl.decl.sparsity?.[0]?.span ?? decl.decl.nameSpan;
    const msg =
      'routing counts must use only + - * of literals, int params and sizes (they size the indices output)';
    throw new CompileError([error(msg, at)], source);
  }
  const kernel = toKernel(ir);
  // The artifact's schedule record (the schedule with the storage dtype, as the runtime and
  // emitted modules read it) is what is hashed, so hashes did not change when formats split off.
  const meta = { sourceHash: hashString(source), scheduleHash: hashValue(artifactSchedule(kernel)) };
  let artifact: Artifact;
  try {
    artifact = target.render(kernel, meta, limits);
  } catch (e) {
    // A schedule the device cannot run (user overrides beyond its limits, f16 without shader-f16).
    throw new CompileError([error((e as Error).message, decl.decl.nameSpan)], source);
  }
  return { artifact, kernel, decl, program };
}

/** The IR with the importance output requested; its pass reads the final lse, so lse is on too. */
function withImportance(ir: AttentionIR, importance: ImportanceMode | undefined): AttentionIR {
  return importance === undefined ? ir : { ...ir, outputs: { lse: true, importance } };
}
