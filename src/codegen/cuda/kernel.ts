// Renders an AttentionKernel to a CUDA artifact: a self-contained .cu (summary kernels, the
// attention kernel from an attention core, and an extern "C" launcher), a C header and a JSON
// manifest. The core (simt.ts today) is the only part that depends on the compute units used.
import { fusedSchedule, keyHoistCount } from './quant-stage-schedule.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Artifact, UniformField } from '../artifact.js';
import { artifactSchedule, kernelSlots } from '../common.js';
import { coreExprs } from './exprs.js';
import { alignmentOf, attentionEntry, launcherText, summaryKernels } from './launcher.js';
import { headerText } from './launcher-header.js';
import { cudaLayout, type CudaLayout } from './layout.js';
import { importanceDevice } from './importance.js';
import { cudaArchs } from './arch.js';
import { checkCudaSchedule, cudaLimits, cudaScheduleProblem, type CudaLimits } from './plan.js';
import { exactMulOf, type CudaContext } from './rules.js';
import { helperSource } from './rules-helpers.js';
import { mmaCore } from './mma.js';
import { mmaPlan } from './mma-plan.js';
import { wgmmaCore } from './wgmma.js';
import { wgmmaPlan } from './wgmma-plan.js';
import { wgmmaWsCore } from './wgmma-ws.js';
import { wgmmaWsPlan } from './wgmma-ws-plan.js';
import { simtCore, type AttentionCore, type CoreOutput } from './simt.js';
import { stageEntryPoints } from './stages.js';
import { tokenAttentionDeviceCode } from './token-attn.js';
import { tokenPlan, type TokenPlan } from './token-form.js';
import { routingDeviceCode } from './routing.js';
import { routedAttentionHelpers, routeSmemOffset, withRouting } from './routing-attn.js';
import { selectDeviceCode, selectHandles } from './select-host.js';
import { quantizeSource, quantizeSpecs, withQuantizeHeader } from './quantize-host.js';
import type { QuantizeSpec } from './quantize.js';
import { salientKernels, salientLists } from './salient-list.js';
import { banner, includes, prelude, type CudaMeta } from './kernel-text.js';
import { cudaBindings, cudaManifest } from './kernel-manifest.js';

export type { CudaMeta } from './kernel-text.js';

function checkSchedule(k: AttentionKernel, limits: CudaLimits): void {
  const problem = cudaScheduleProblem(k.schedule, k.formats, limits);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
}

/** The core the schedule's engine names: tensor cores (wgmma, mma.sync) or FMA units (SIMT). */
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
    kernel = {
      ...kernel,
      schedule: fusedSchedule(kernel.schedule, kernel.formats, opts.limits, keyHoistCount(kernel)),
    };
  const layout = cudaLayout(kernel);
  const cx: Omit<CudaContext, 'vars'> = {
    ...kernelSlots(kernel),
    field: layout.field,
    used: new Set(),
    exactMul: exactMulOf(kernel),
  };
  const { selecting, unrouted, token, limits, core } = renderCore(kernel, cx, opts);
  const align = alignmentOf(kernel, core);
  const top = banner(kernel, meta, core, limits.arch);
  // A quantized cache's `quantize` kernels (quantize.ts) are declared beside the attention.
  const quantize = quantizeSpecs(kernel);
  const header = withQuantizeHeader(headerText(kernel, layout, align), quantize);
  const code = cudaSource(kernel, {
    layout,
    cx,
    core,
    align,
    top,
    header,
    quantize,
    selecting,
    token,
    unrouted,
  });
  const artifact = artifactRecord(kernel, meta, code, core, layout);
  const manifest = cudaManifest(kernel, artifact, {
    meta,
    arch: limits.arch,
    layout,
    core,
    align,
    quantize,
    selecting,
  });
  return {
    ...artifact,
    files: {
      [`${kernel.name}.h`]: [...top.slice(0, 2), header, ''].join('\n'),
      [`${kernel.name}.json`]: JSON.stringify(manifest, null, 2) + '\n',
    },
  };
}

/**
 * The kernel's expressions (routed unless a selection pass runs its own attention), its token
 * plan, and the attention core rendered over them. Renders into `cx` (its `used` helpers).
 */
function renderCore(
  kernel: AttentionKernel,
  cx: Omit<CudaContext, 'vars'>,
  opts: { limits?: CudaLimits; core?: AttentionCore },
) {
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
  return { selecting, unrouted, token, limits, core };
}

/** The artifact's record of the rendered kernel (its files come with the manifest). */
function artifactRecord(
  kernel: AttentionKernel,
  meta: CudaMeta,
  code: string,
  core: CoreOutput,
  layout: CudaLayout,
): Artifact {
  return {
    target: 'cuda',
    name: kernel.name,
    code,
    entryPoints: stageEntryPoints(kernel, core.threads),
    bindings: cudaBindings(kernel, layout),
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
}

/** What `cudaSource` assembles: the rendered core and the texts rendered around it. */
interface SourceParts {
  readonly layout: CudaLayout;
  readonly cx: Omit<CudaContext, 'vars'>;
  readonly core: CoreOutput;
  readonly align: number;
  readonly top: readonly string[];
  readonly header: string;
  readonly quantize: readonly QuantizeSpec[];
  readonly selecting: boolean;
  readonly token: TokenPlan | undefined;
  /** The core's expressions before routing: a token plan's attention reads them. */
  readonly unrouted: ReturnType<typeof coreExprs>;
}

/** The .cu: banner, header, device code in the kernel's namespace, then the host launchers. */
function cudaSource(kernel: AttentionKernel, parts: SourceParts): string {
  const { layout, cx, core, align, header, quantize, selecting, token } = parts;
  const ns = `attnc_${kernel.name}`;
  // Rendered before the helpers (as is the routing below): its mask and score may use some.
  const importance =
    kernel.outputs.importance && importanceDevice(kernel, kernel.outputs.importance, cx, layout, align);
  // Rendered before the helpers: the routing's candidacy test may use some.
  const routing = selecting
    ? selectDeviceCode(kernel, layout, cx)
    : kernel.routing && routingDeviceCode(kernel, layout, cx);
  const helpers = helperSource({ ...cx, vars: {} });
  return [
    ...parts.top,
    ...includes,
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
          ...(token ? ['', tokenAttentionDeviceCode(kernel, token, parts.unrouted)] : []),
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
}
