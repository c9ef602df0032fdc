// Staged prefill over quantized K/V caches (Schedule.quantPrefill 'staged', issue #10 item 6).
//
// The fused path converts every K/V tile inside the attention: a long prefill re-reads each
// tile once per query block (and per query head of a GQA group), so the conversion runs about
// Nq / blockQ · H / Hkv times per key and sits on the tensor-core engines' critical path. The
// staged path converts each key once: a memory-bound pass (`stage_kv`, one thread per 8-channel
// chunk) writes the rows the launch reads, dequantized and narrowed to T, into a caller's
// workspace [B, Hkv, Nk, W] (K then V), and the float twin of the kernel (the same program over
// float K/V, its own namespace and Args) attends over them unchanged. The values are the fused
// converter's bit for bit: the pass calls the same `<k|v>_chunk8` and narrows with the same
// `dq_store8` (dequant-tile.ts, dequant-chunk.ts).
//
// Host side: `attnc_NAME_workspace_bytes(args)` sizes the workspace and
// `attnc_NAME_launch_staged(args, workspace, workspace_bytes, stream)` runs the stages; short
// launches (Nq at most one query tile: decode, chunked generation) go to the fused launcher,
// which reads each tile about once anyway. `attnc_NAME_launch` is the fused path, unchanged, so
// a caller that passes no workspace never allocates behind its back.
import type { Artifact } from '../artifact.js';
import type { AttentionKernel, Schedule } from '../../ir/kernel.js';
import { sharedStorage, type TensorFormat, type TensorFormats } from '../../ir/formats.js';
import { renderCuda, type CudaMeta } from './kernel.js';
import { cudaLayout } from './layout.js';
import { chunkFunction } from './dequant-chunk.js';
import { store8 } from './dequant-tile.js';
import { codesPerWord } from '../../quant/elem.js';
import { errorName } from './launcher.js';
import {
  dequantizeName,
  stagedLauncher,
  stagedLaunchName,
  stagedPrototypes,
  stagedTwinName,
  stageEntry,
  workspaceBytesName,
} from './quant-stage-host.js';
import type { CudaLimits } from './plan.js';
import { artifactSchedule } from '../common.js';
import { fusedSchedule, keyHoistCount } from './quant-stage-schedule.js';

export { fusedSchedule };

type Which = 'k' | 'v';

export {
  dequantizeName,
  stagedLaunchName,
  stagedTwinName,
  stageEntry,
  twinArgsCopies,
  workspaceBytesName,
} from './quant-stage-host.js';

/** Threads of the dequant pass: rows of (D + DV) / 8 chunks, as many whole rows as fit 256. */
const STAGE_THREADS = 256;

const quantizedOf = (f: TensorFormats): Which[] => (['k', 'v'] as const).filter((w) => f[w].kind === 'quant');

/** Either quantPrefill mode chooses how quantized K/V is read: over float K/V it is a mistake. */
export function floatKvProblem(f: TensorFormats, mode: 'staged' | 'fused'): string | undefined {
  if (quantizedOf(f).length === 0)
    return `quantPrefill (--quant-prefill) '${mode}' needs a quantized K or V cache (a store statement)`;
  return undefined;
}

/** Why `kernel` cannot be staged (undefined: it can). */
export function stagedProblem(kernel: AttentionKernel): string | undefined {
  const f = kernel.formats;
  const floatKv = floatKvProblem(f, 'staged');
  if (floatKv !== undefined) return floatKv;
  if (f.paged) return "quantPrefill 'staged': paged quantized caches are not staged yet (use 'fused')";
  if (kernel.routing)
    return "quantPrefill 'staged': routed and selecting kernels are not staged yet (use 'fused')";
  if (kernel.schedule.headDim % 8 || kernel.schedule.valueDim % 8)
    return "quantPrefill 'staged' needs headDim and valueDim multiples of 8";
  return undefined;
}

/** The same program over float K/V of the kernel's storage type: what attends over the workspace. */
export function floatTwin(kernel: AttentionKernel): AttentionKernel {
  const float: TensorFormat = { kind: 'float', dtype: sharedStorage(kernel.formats) };
  const { quantPrefill: _q, wsDequant: _w, ...schedule } = kernel.schedule;
  return {
    ...kernel,
    name: stagedTwinName(kernel),
    formats: { ...kernel.formats, k: float, v: float },
    schedule: Object.freeze(schedule as Schedule),
  };
}

/** The fused artifact plus the dequant pass, the float twin and the staged launcher. */
export function renderStagedCuda(
  kernel: AttentionKernel,
  meta: CudaMeta,
  opts: { limits?: CudaLimits } = {},
): Artifact {
  const problem = stagedProblem(kernel);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  const fusedKernel = {
    ...kernel,
    schedule: fusedSchedule(kernel.schedule, kernel.formats, opts.limits, keyHoistCount(kernel)),
  };
  const fused = renderCuda(fusedKernel, meta, opts);
  const twin = floatTwin(kernel);
  const twinArt = renderCuda(twin, meta, opts);
  const layout = cudaLayout(kernel);
  const ns = `attnc_${kernel.name}`;
  const protos = stagedPrototypes(kernel, layout);
  const withProtos = (text: string): string => {
    const at = `const char* ${errorName(kernel)}(void);`;
    if (!text.includes(at)) throw new Error('CUDA staged prefill: the header has no last_error prototype');
    return text.replace(at, `${at}\n${protos.join('\n')}`);
  };
  const code = [
    withProtos(fused.code),
    '// ---- staged prefill: the float twin that attends over the dequantized workspace ----',
    twinArt.code,
    '// ---- staged prefill: the dequant pass and its launcher (quant-stage.ts) ----',
    stagePass(kernel, fused.code, ns),
    '',
    stagedLauncher(kernel, layout, cudaLayout(twin), ns, fused.code),
    '',
  ].join('\n');
  const files = { ...fused.files };
  const header = `${kernel.name}.h`;
  files[header] = withProtos(files[header]!);
  const manifestName = `${kernel.name}.json`;
  const manifest = JSON.parse(files[manifestName]!) as Record<string, unknown>;
  manifest.functions = {
    ...(manifest.functions as object),
    launchStaged: stagedLaunchName(kernel),
    workspaceBytes: workspaceBytesName(kernel),
    dequantizeKv: dequantizeName(kernel),
  };
  // The kernel's schedule is the twin's (the staged path); short launches run the fused one.
  const schedule = artifactSchedule(kernel);
  manifest.schedule = schedule;
  manifest.staged = {
    twin: twin.name,
    fusedBlockK: fusedKernel.schedule.blockK,
    minNq: kernel.schedule.blockQ + 1,
  };
  files[manifestName] = JSON.stringify(manifest, null, 2) + '\n';
  return { ...fused, code, files, schedule };
}

/**
 * The dequant pass: block (x, hkv, b) converts keys x·RPB .. x·RPB + RPB − 1 of head bh, one thread
 * per 8-channel chunk of K then V, so consecutive threads read consecutive code words and write
 * consecutive 16-byte chunks.
 */
function stagePass(k: AttentionKernel, fusedCode: string, ns: string): string {
  return [`namespace ${ns} {`, ...stagePassCode(k, fusedCode), `} // namespace ${ns}`].join('\n');
}

/**
 * The pass's device code, inside the kernel's namespace after `fusedCode` (which may already hold
 * the chunk functions and dq_store8: the tensor-core engines emit them, SIMT does not).
 */
export function stagePassCode(k: AttentionKernel, fusedCode: string): string[] {
  const which = quantizedOf(k.formats);
  // The tensor-core engines already emit the chunk functions and dq_store8; SIMT does not.
  const needChunks = which.filter((w) => !fusedCode.includes(`void ${w}_chunk8(`));
  const needStore = !fusedCode.includes('void dq_store8(');
  const layout = cudaLayout(k);
  const wpr = (w: Which): string => {
    const f = k.formats[w];
    if (f.kind !== 'quant') return '0';
    const per = codesPerWord(f.format.elem);
    return `((${w === 'k' ? 'D' : 'DV'} + ${per - 1}) / ${per})`;
  };
  const convert = (w: Which, chunkVar: string): string[] => [
    `    const unsigned* wrow = static_cast<const unsigned*>(a.${w}) + row * ${wpr(w)};`,
    `    ${w}_chunk8(a, wrow, row, t, ${chunkVar} * 8, bh, v);`,
    `    dq_store8(${w}w + row * ${w === 'k' ? 'D' : 'DV'} + ${chunkVar} * 8, v);`,
  ];
  const kq = k.formats.k.kind === 'quant';
  const vq = k.formats.v.kind === 'quant';
  return [
    ...needChunks.flatMap((w) => chunkFunction(w, k.formats[w], layout.field)),
    ...(needStore ? store8 : []),
    `constexpr int STAGE_KCH = ${kq ? 'D / 8' : '0'}, STAGE_VCH = ${vq ? 'DV / 8' : '0'};`,
    'constexpr int STAGE_CH = STAGE_KCH + STAGE_VCH;',
    `constexpr int STAGE_RPB = STAGE_CH >= ${STAGE_THREADS} ? 1 : ${STAGE_THREADS} / STAGE_CH; // keys per block`,
    '// K and V rows of the launch, dequantized and narrowed to T, into the workspace (quant-stage.ts).',
    `extern "C" __global__ void __launch_bounds__(STAGE_RPB * STAGE_CH) ${stageEntry(k)}(const Args a, T* kw, T* vw) {`,
    '  const int t = blockIdx.x * STAGE_RPB + threadIdx.x / STAGE_CH, c = threadIdx.x % STAGE_CH;',
    '  if (t >= a.Nk) return;',
    "  // (b, kv head) on grid z and y: B * Hkv may pass gridDim.y's 65535.",
    '  const size_t bh = (size_t)blockIdx.z * a.Hkv + blockIdx.y, row = bh * (size_t)a.Nk + t;',
    '  float v[8];',
    ...(kq ? ['  if (c < STAGE_KCH) {', ...convert('k', 'c'), '  }'] : []),
    ...(vq
      ? [`  ${kq ? 'else ' : ''}{`, '    const int cv = c - STAGE_KCH;', ...convert('v', 'cv'), '  }']
      : []),
    '}',
  ];
}
