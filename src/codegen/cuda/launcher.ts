// Host side of a CUDA artifact: the C header (args struct and prototypes), the per-tensor summary
// kernels, and the extern "C" launcher that validates arguments and launches summaries, then
// attention, on the caller's stream.
import { elementBytes } from '../../ir/formats.js';
import { salientBytesFns, salientLaunch } from './salient-list.js';
import type { AttentionKernel, ShapeDim } from '../../ir/kernel.js';
import type { CudaLayout } from './layout.js';
import { ARGS, dimText, f32Literal, i32Literal } from './rules.js';
import type { CoreOutput } from './simt.js';
import {
  pointerChecks,
  strideChecks,
  strideDefaults,
  stridesAlignedFn,
  valueChecks,
} from './launcher-checks.js';
import { qoStrideChecks, qoStrideDefaults, rowsDisjointFn } from './qo-rows.js';
import { decodeLaunch, decodeSource, decodeWanted } from './decode.js';
import { carriesDecode } from './decode-facts.js';
import { afterAttention, importanceChecks, importanceHost } from './importance.js';
import { routedSmem, routingHostChecks, routingHostFns, routingHostLaunch } from './routing-host.js';
import { selectHandles, selectHostChecks, selectHostFns, selectHostLaunch } from './select-host.js';

/** Threads per summary block: one warp per summary block of positions. */
export const SUMMARY_THREADS = 256;
const SUMMARY_WARPS = SUMMARY_THREADS / 32;

export const launchName = (k: AttentionKernel): string => `attnc_${k.name}_launch`;
export const errorName = (k: AttentionKernel): string => `attnc_${k.name}_last_error`;
export const initName = (k: AttentionKernel): string => `attnc_${k.name}_args_init`;
export const summaryElemsName = (k: AttentionKernel, t: string): string =>
  `attnc_${k.name}_summary_elems_${t}`;
export const attentionEntry = (k: AttentionKernel): string => `attnc_${k.name}_attention`;
export const summaryEntry = (k: AttentionKernel, t: string): string => `attnc_${k.name}_summary_${t}`;

const dimOf = (k: AttentionKernel, t: string): ShapeDim => {
  const slot = k.tensors.find((x) => x.name === t);
  if (!slot || slot.dims.length !== 1)
    throw new Error(`CUDA: tile summaries need a 1-D tensor, "${t}" is not one`);
  return slot.dims[0]!;
};

/** One kernel per summarized tensor: [min, max] of each summaryBlock positions, a warp per block. */
export function summaryKernels(k: AttentionKernel, layout: CudaLayout): string {
  const SB = k.schedule.summaryBlock;
  return k.summaries
    .map(({ tensor }) => {
      const slot = k.tensors.find((x) => x.name === tensor)!;
      const isInt = slot.dtype === 'i32';
      const [ty, lo, hi, fmin, fmax] = isInt
        ? ['int', 'INT_MIN', 'INT_MAX', 'min', 'max']
        : ['float', '-INFINITY', 'INFINITY', 'fminf', 'fmaxf'];
      const src = `${ARGS}.${layout.field(`tensor:${tensor}`)}`;
      const dst = `${ARGS}.${layout.field(`summary:${tensor}`)}`;
      return [
        `extern "C" __global__ void __launch_bounds__(${SUMMARY_THREADS}) ${summaryEntry(k, tensor)}(const Args ${ARGS}) {`,
        `  const int len = ${dimText(dimOf(k, tensor), layout.field)};`,
        `  const int blk = blockIdx.x * ${SUMMARY_WARPS} + threadIdx.x / 32, lane = threadIdx.x % 32;`,
        `  if (blk >= (len + ${SB} - 1) / ${SB}) return; // a whole warp`,
        `  ${ty} mn = ${hi}, mx = ${lo};`,
        `  const int end = min(len - blk * ${SB}, ${SB});`,
        `  for (int i = lane; i < end; i += 32) {`,
        `    const ${ty} x = __ldg(${src} + (size_t)blk * ${SB} + i);`,
        `    mn = ${fmin}(mn, x);`,
        `    mx = ${fmax}(mx, x);`,
        '  }',
        '#pragma unroll',
        '  for (int off = 16; off > 0; off >>= 1) {',
        `    mn = ${fmin}(mn, __shfl_xor_sync(0xffffffffu, mn, off));`,
        `    mx = ${fmax}(mx, __shfl_xor_sync(0xffffffffu, mx, off));`,
        '  }',
        '  if (lane == 0) {',
        `    ${dst}[2 * blk] = mn;`,
        `    ${dst}[2 * blk + 1] = mx;`,
        '  }',
        '}',
      ].join('\n');
    })
    .join('\n\n');
}

/** Bytes of alignment the launcher requires of q, k, v and out (their vector loads). */
export const alignmentOf = (k: AttentionKernel, core: CoreOutput): number =>
  core.vectorElems * elementBytes(k.formats.k);

/**
 * Host-side additions of a core, e.g. the TMA tensor maps of the wgmma-ws core: statements run
 * after the argument checks (they may `return fail(...)`; `ns` is the artifact's namespace), and
 * extra kernel arguments after (a, qscale).
 */
export interface LaunchHook {
  readonly setup: (ns: string) => readonly string[];
  readonly kernelArgs: readonly string[];
}

/** Host code, after the namespace's device code (it refers to names in it). */
export function launcherText(
  k: AttentionKernel,
  layout: CudaLayout,
  core: CoreOutput & { readonly launchHook?: LaunchHook },
  ns: string,
): string {
  const selecting = selectHandles(k);
  const S = layout.struct;
  const s = k.schedule;
  const name = k.name;
  const dimC = (d: ShapeDim): string => dimText(d, layout.field);
  const defaults = k.params.map((p) => {
    const v = p.default === undefined ? 0 : Number(p.default);
    return `  ${ARGS}->${layout.field(`param:${p.name}`)} = ${p.dtype === 'f32' ? f32Literal(v) : i32Literal(v)};`;
  });
  return [
    `namespace ${ns} {`,
    'static thread_local char last_error[512] = "";',
    'static int fail(int code, const char* fmt, ...) {',
    `  int n = snprintf(last_error, sizeof last_error, "attnc_${name}: ");`,
    '  va_list ap;',
    '  va_start(ap, fmt);',
    '  vsnprintf(last_error + n, sizeof last_error - n, fmt, ap);',
    '  va_end(ap);',
    "  // A failed runtime call (an attribute, a launch) stays the thread's last error: cleared here,",
    "  // the next call's cudaGetLastError does not report it as the next launch's own.",
    '  if (code == ATTNC_ERR_CUDA) (void)cudaGetLastError();',
    '  return code;',
    '}',
    'static bool ptr_ok(const void* p, size_t align) { return p != NULL && (uintptr_t)p % align == 0; }',
    stridesAlignedFn(layout),
    rowsDisjointFn,
    ...(k.outputs.importance ? [importanceHost(k)] : []),
    `} // namespace ${ns}`,
    // Decode mode (split-KV + lse merge, decode.ts) for few queries over a long KV.
    ...(carriesDecode(k) ? ['', decodeSource(k, layout, ns)] : []),
    '',
    `extern "C" const char* ${errorName(k)}(void) { return ${ns}::last_error; }`,
    '',
    `extern "C" void ${initName(k)}(${S}* ${ARGS}, int B, int H, int Hkv, int Nq, int Nk) {`,
    `  memset(${ARGS}, 0, sizeof *${ARGS});`,
    `  ${ARGS}->B = B; ${ARGS}->H = H; ${ARGS}->Hkv = Hkv; ${ARGS}->Nq = Nq; ${ARGS}->Nk = Nk;`,
    `  ${ARGS}->q_offset = Nk - Nq;`,
    `  ${ARGS}->k_offset = 0;`,
    `  ${ARGS}->scale = 1.0f / sqrtf(${s.headDim}.0f);`,
    ...strideDefaults(k, ARGS),
    ...qoStrideDefaults(s.headDim, s.valueDim, ARGS),
    ...defaults,
    '}',
    ...k.summaries.flatMap(({ tensor }) => [
      '',
      `extern "C" size_t ${summaryElemsName(k, tensor)}(const ${S}* args) {`,
      `  const ${S}& a = *args;`,
      `  const int len = ${dimC(dimOf(k, tensor))};`,
      `  return len > 0 ? 2 * (size_t)((len + ${s.summaryBlock} - 1) / ${s.summaryBlock}) : 0;`,
      '}',
    ]),
    ...salientBytesFns(k, S),
    ...(k.routing ? ['', ...(selecting ? selectHostFns : routingHostFns)(k, S, ns)] : []),
    '',
    ...launchFn(k, layout, core, ns),
  ].join('\n');
}

/** The extern "C" launcher: argument checks, the summary, routing and decode launches, then attention. */
function launchFn(
  k: AttentionKernel,
  layout: CudaLayout,
  core: CoreOutput & { readonly launchHook?: LaunchHook },
  ns: string,
): string[] {
  const hook = core.launchHook;
  // Token selection, emit, from, chunks: select-host.ts; ranked block routing: routing.ts.
  const selecting = selectHandles(k);
  const blockRouted = k.routing !== undefined && !selecting;
  const S = layout.struct;
  const s = k.schedule;
  const identityScore = k.score.op === 'var' && k.score.arg === 'score';
  const align = alignmentOf(k, core);
  const dimC = (d: ShapeDim): string => dimText(d, layout.field);
  const summaries = k.summaries.flatMap(({ tensor }) => [
    `{`,
    `  const int len = ${dimC(dimOf(k, tensor))};`,
    `  if (len > 0) {`,
    `    const int blocks = (len + ${s.summaryBlock} - 1) / ${s.summaryBlock};`,
    `    ${ns}::${summaryEntry(k, tensor)}<<<(blocks + ${SUMMARY_WARPS - 1}) / ${SUMMARY_WARPS}, ${SUMMARY_THREADS}, 0, stream>>>(a);`,
    `    const cudaError_t e = cudaGetLastError();`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "summary of ${tensor}: %s", cudaGetErrorString(e));`,
    `  }`,
    `}`,
  ]);
  const entry = `${ns}::${attentionEntry(k)}`;
  return [
    `extern "C" int ${launchName(k)}(const ${S}* args, cudaStream_t stream) {`,
    `  using ${ns}::fail;`,
    `  using ${ns}::ptr_ok;`,
    `  ${ns}::last_error[0] = '\\0';`,
    `  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");`,
    `  const ${S}& a = *args;`,
    ...valueChecks(k, layout).map((c) => `  ${c}`),
    ...(k.outputs.importance ? importanceChecks(layout).map((c) => `  ${c}`) : []),
    `  if (a.Nq == 0) return ${afterAttention(k, ns)};`,
    ...pointerChecks(k, layout, align).map((c) => `  ${c}`),
    ...strideChecks(k, core.vectorElems).map((c) => `  ${c}`),
    ...qoStrideChecks(s.valueDim, core.vectorElems, ns).map((c) => `  ${c}`),
    ...(blockRouted ? routingHostChecks(k, ns).map((c) => `  ${c}`) : []),
    ...(selecting ? selectHostChecks(k, ns, layout).map((c) => `  ${c}`) : []),
    ...salientLaunch(k, layout, ns).map((c) => `  ${c}`),
    ...summaries.map((c) => `  ${c}`),
    ...(blockRouted ? routingHostLaunch(k, ns).map((c) => `  ${c}`) : []),
    ...(selecting ? selectHostLaunch(k, ns).map((c) => `  ${c}`) : []),
    ...(carriesDecode(k) ? decodeLines(k, ns) : []),
    `  // ${identityScore ? 'log2(e) folds into the q scale: scores come out in base 2 for exp2f.' : 'The score modifier needs natural-units scores; log2(e) is applied after it.'}`,
    `  const float qscale = a.scale${identityScore ? ` * ${ns}::LOG2E` : ''};`,
    ...(blockRouted
      ? routedSmem(entry, ns, s.blockK).map((c) => `  ${c}`)
      : [`  const size_t smem = ${core.smemBytes};`]),
    // Static __shared__ arrays (per-key hoists, a few KiB at most) count against the 48 KiB
    // default too, so dynamic sizes just under it need the opt-in as well.
    ...(core.smemBytes > 44 * 1024 && !blockRouted
      ? [
          `  {`,
          `    const cudaError_t e = cudaFuncSetAttribute(${entry}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);`,
          `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));`,
          `  }`,
        ]
      : []),
    `  const dim3 grid((a.Nq + ${s.blockQ - 1}) / ${s.blockQ}, a.H, a.B);`,
    ...(hook ? hook.setup(ns).map((l) => `  ${l}`) : []),
    `  ${entry}<<<grid, ${core.threads}, smem, stream>>>(a, qscale${hook ? hook.kernelArgs.map((x) => `, ${x}`).join('') : ''});`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "attention: %s", cudaGetErrorString(e));`,
    `  return ${afterAttention(k, ns)};`,
    '}',
  ];
}

/** Decode mode's early return (the importance pass, if any, follows its merge). */
function decodeLines(k: AttentionKernel, ns: string): string[] {
  const launch = `${decodeLaunch(ns)}(a, stream)`;
  if (!k.outputs.importance) return [`  if (${decodeWanted(ns)}(a)) return ${launch};`];
  return [
    `  if (${decodeWanted(ns)}(a)) {`,
    `    const int rc = ${launch};`,
    `    return rc != ATTNC_OK ? rc : ${afterAttention(k, ns)};`,
    '  }',
  ];
}
