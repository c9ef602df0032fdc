// Host side of the staged prefill (quant-stage.ts): the header's prototypes, the workspace size,
// the pass alone (dequantize_kv) and the staged launcher (checks, short launches to the fused path,
// the pass, then the float twin).
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CudaLayout } from './layout.js';
import { errorName, initName, launchName } from './launcher.js';
import { pointerChecks, valueChecks } from './launcher-checks.js';
import { floatTwin } from './quant-stage.js';

type Which = 'k' | 'v';

/** The twin's name: a distinct C prefix, so both kernels live in one .cu. */
export const stagedTwinName = (k: AttentionKernel): string => `${k.name}__staged`;
export const stagedLaunchName = (k: AttentionKernel): string => `attnc_${k.name}_launch_staged`;
export const workspaceBytesName = (k: AttentionKernel): string => `attnc_${k.name}_workspace_bytes`;
export const dequantizeName = (k: AttentionKernel): string => `attnc_${k.name}_dequantize_kv`;
export const stageEntry = (k: AttentionKernel): string => `attnc_${k.name}_stage_kv`;

/** The header's prototypes of the staged entries (after last_error's). */
export function stagedPrototypes(k: AttentionKernel, layout: CudaLayout): string[] {
  const S = layout.struct;
  return [
    '/* Staged prefill (quantPrefill staged): bytes of the workspace launch_staged needs for these sizes',
    ' * (the dequantized K/V rows, [B, Hkv, Nk, W] of the storage type; 0 if args is NULL). */',
    `size_t ${workspaceBytesName(k)}(const ${S}* args);`,
    '/* As launch, with K/V dequantized once into `workspace` (16-byte aligned, at least',
    ' * workspace_bytes(args) bytes, not read after the launch completes) before the attention.',
    ' * Launches of at most one query tile run the fused path and do not touch the workspace. */',
    `int ${stagedLaunchName(k)}(const ${S}* args, void* workspace, size_t workspace_bytes, cudaStream_t stream);`,
    "/* The staged launch's first pass alone: the quantized K (then V) rows of args, dequantized into",
    ' * workspace as [B, Hkv, Nk, W] of the storage type (a float K or V takes no room). */',
    `int ${dequantizeName(k)}(const ${S}* args, void* workspace, size_t workspace_bytes, cudaStream_t stream);`,
  ];
}

/** Elements per (b, kv head, key) row of `w` in the workspace (0: a float cache, read in place). */
const rowElems = (k: AttentionKernel, w: Which): string =>
  k.formats[w].kind === 'quant' ? (w === 'k' ? 'D' : 'DV') : '0';

/** The staged launcher: checks, short launches to the fused path, the pass, then the twin. */
export function stagedLauncher(
  k: AttentionKernel,
  layout: CudaLayout,
  twinLayout: CudaLayout,
  ns: string,
  fusedCode: string,
): string {
  return [
    ...workspaceBytesFn(k, layout.struct, ns),
    '',
    ...dequantizeFn(k, layout, ns, fusedAlignment(fusedCode)),
    '',
    ...stagedLaunchFn(k, layout, twinLayout, ns),
  ].join('\n');
}

/** `<name>_workspace_bytes`: the dequantized K and V rows of every kv head. */
function workspaceBytesFn(k: AttentionKernel, S: string, ns: string): string[] {
  return [
    `extern "C" size_t ${workspaceBytesName(k)}(const ${S}* args) {`,
    '  if (args == NULL) return 0;',
    `  using ${ns}::D;`,
    `  using ${ns}::DV;`,
    `  const size_t rows = (size_t)args->B * (size_t)args->Hkv * (size_t)(args->Nk > 0 ? args->Nk : 0);`,
    `  return rows * (size_t)(${rowElems(k, 'k')} + ${rowElems(k, 'v')}) * sizeof(${ns}::T);`,
    '}',
  ];
}

/** The opening of the dequantize and staged launches: names, a cleared error, `a` (args checked). */
const launchHead = (ns: string, S: string, ptrOk: boolean): string[] => [
  `  using ${ns}::fail;`,
  ...(ptrOk ? [`  using ${ns}::ptr_ok;`] : []),
  `  using T = ${ns}::T;`,
  `  using ${ns}::D;`,
  `  using ${ns}::DV;`,
  `  ${ns}::last_error[0] = '\\0';`,
  `  if (args == NULL) return fail(ATTNC_ERR_ARGS, "args is NULL");`,
  `  const ${S}& a = *args;`,
];

/** kw and vw: the workspace's K rows, then its V rows. */
const workspaceRows = (k: AttentionKernel): string[] => [
  '  T* kw = static_cast<T*>(workspace);',
  `  T* vw = kw + (size_t)a.B * a.Hkv * a.Nk * ${rowElems(k, 'k')};`,
];

/** `<name>_dequantize`: the argument and workspace checks, then the dequant pass into the workspace. */
function dequantizeFn(k: AttentionKernel, layout: CudaLayout, ns: string, align: number): string[] {
  return [
    `extern "C" int ${dequantizeName(k)}(const ${layout.struct}* args, void* workspace, size_t workspace_bytes, cudaStream_t stream) {`,
    ...launchHead(ns, layout.struct, true),
    ...valueChecks(k, layout).map((c) => `  ${c}`),
    '  if (a.Nk == 0) return ATTNC_OK;',
    ...pointerChecks(k, layout, align).map((c) => `  ${c}`),
    `  const size_t need = ${workspaceBytesName(k)}(args);`,
    `  if (workspace == NULL) return fail(ATTNC_ERR_ARGS, "workspace is NULL (this launch needs ${workspaceBytesName(k)}(args) = %zu bytes)", need);`,
    '  if ((uintptr_t)workspace % 16 != 0) return fail(ATTNC_ERR_ARGS, "workspace must be 16-byte aligned (got %p)", workspace);',
    '  if (workspace_bytes < need) return fail(ATTNC_ERR_ARGS, "workspace_bytes (%zu) is less than the %zu bytes this launch needs", workspace_bytes, need);',
    ...workspaceRows(k),
    `  const dim3 grid((a.Nk + ${ns}::STAGE_RPB - 1) / ${ns}::STAGE_RPB, a.Hkv, a.B);`,
    `  ${ns}::${stageEntry(k)}<<<grid, ${ns}::STAGE_RPB * ${ns}::STAGE_CH, 0, stream>>>(a, kw, vw);`,
    '  const cudaError_t e = cudaGetLastError();',
    '  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "dequant pass: %s", cudaGetErrorString(e));',
    '  return ATTNC_OK;',
    '}',
  ];
}

/** The staged launch: short problems to the fused path, else the dequant pass, then the float twin. */
function stagedLaunchFn(
  k: AttentionKernel,
  layout: CudaLayout,
  twinLayout: CudaLayout,
  ns: string,
): string[] {
  const twin = floatTwin(k);
  return [
    `extern "C" int ${stagedLaunchName(k)}(const ${layout.struct}* args, void* workspace, size_t workspace_bytes, cudaStream_t stream) {`,
    ...launchHead(ns, layout.struct, false),
    '  // One query tile or less (decode, short chunks): the fused path reads each K/V tile about',
    '  // once anyway, and validates everything itself.',
    `  if (a.Nq <= ${k.schedule.blockQ} || a.Nk <= 0) return ${launchName(k)}(args, stream);`,
    `  const int dq = ${dequantizeName(k)}(args, workspace, workspace_bytes, stream);`,
    '  if (dq != ATTNC_OK) return dq;',
    ...workspaceRows(k),
    // Only k quantized: vw is set and never read, and nvcc's #550 (an error under -Werror) takes
    // no (void) cast for that, only a read.
    k.formats.v.kind === 'quant' ? '  (void)vw;' : '  (void)(vw == kw);',
    `  ${twinLayout.struct} t;`,
    `  ${initName(twin)}(&t, a.B, a.H, a.Hkv, a.Nq, a.Nk); // packed strides for the workspace rows`,
    ...twinArgsCopies(k, layout, twinLayout),
    `  const int rc = ${launchName(twin)}(&t, stream);`,
    `  return rc == ATTNC_OK ? ATTNC_OK : fail(rc, "%s", ${errorName(twin)}());`,
    '}',
  ];
}

/**
 * Statements filling the twin's args `t` from the kernel's `a` (after args_init's packed strides):
 * every shared field, and k / v pointing at the workspace rows `kw` / `vw` (quantized caches) or
 * at the caller's float cache (its strides copied).
 */
export function twinArgsCopies(k: AttentionKernel, layout: CudaLayout, twinLayout: CudaLayout): string[] {
  const names = new Set(layout.fields.map((f) => f.field));
  const copies = twinLayout.fields
    .filter((f) => !(['k', 'v'].includes(f.role) || (f.role === 'stride' && isQuantStride(k, f.field))))
    .map((f) => {
      if (!names.has(f.field)) throw new Error(`CUDA staged prefill: no field ${f.field} to copy`);
      return `  t.${f.field} = a.${f.field};`;
    });
  const ptr = (w: Which): string =>
    k.formats[w].kind === 'quant' ? `  t.${w} = ${w}w;` : `  t.${w} = a.${w};`;
  return [...copies, ptr('k'), ptr('v')];
}

/** k_stride_* / v_stride_* of a quantized cache: the twin's packed workspace rows (args_init's). */
const isQuantStride = (k: AttentionKernel, field: string): boolean => {
  const m = /^([kv])_stride_[bhn]$/.exec(field);
  return m !== null && k.formats[m[1] as Which].kind === 'quant';
};

/** The alignment the fused launcher asks of q, k, v and out (its pointer check's constant). */
function fusedAlignment(code: string): number {
  const m = /!ptr_ok\(a\.q, (\d+)\)/.exec(code);
  return m ? Number(m[1]) : 16;
}
