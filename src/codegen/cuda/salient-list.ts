// Salient tokens given as an index list (`salient E from t` with t: i32[batch, kv_heads, N], ZipCache's
// form; docs/LANGUAGE.md "What a format means") on CUDA. A tiny pre-pass turns the list into a
// flag per token in a caller-provided workspace `<t>_flags` (int [B, Hkv, Nk], 4·B·Hkv·Nk bytes:
// `attnc_NAME_salient_flags_bytes_<t>`): one block per (batch, kv head) zeroes its Nk flags, then
// sets flag[idx] = 1 for each entry 0 ≤ idx < Nk (negative padding and out-of-range entries are
// ignored, repeats are harmless). Every dequantizing load then reads the flag as it reads a flag
// tensor (dequant.ts salientFlagRef). Why a scatter and not a search of the list per key: the
// list is in any order (a search needs it sorted, or N reads per element), and the scatter costs
// one pass over Nk ints per (b, h) — less than one read of the cache's codes.
import type { AttentionKernel } from '../../ir/kernel.js';
import { salientIndexLists } from '../../ir/formats.js';
import type { EntryPoint } from '../artifact.js';
import type { CudaLayout } from './layout.js';
import { ARGS, dimText } from './rules.js';

const THREADS = 256;

/** The index-list tensors of a kernel's quantized caches (each once), in k, v order. */
export const salientLists = (k: AttentionKernel): string[] => salientIndexLists(k.formats);

/** The Args key of tensor `t`'s flag workspace. */
export const salientFlagsKey = (t: string): string => `salient:${t}`;

const entryName = (k: AttentionKernel, t: string): string => `attnc_${k.name}_salient_${t}`;
export const salientBytesName = (k: AttentionKernel, t: string): string =>
  `attnc_${k.name}_salient_flags_bytes_${t}`;

/** The list's last dimension (its N), as C over the Args. */
function listLength(k: AttentionKernel, t: string, layout: CudaLayout): string {
  const slot = k.tensors.find((x) => x.name === t);
  const d = slot?.dims[2];
  if (!d) throw new Error(`CUDA: salient list "${t}" is not i32[batch, kv_heads, N]`);
  return dimText(d, layout.field);
}

/** The pre-pass kernels (device code, in the kernel's namespace). */
export function salientKernels(k: AttentionKernel, layout: CudaLayout): string[] {
  return salientLists(k).flatMap((t) => [
    `// Salient tokens of ${t} (an index list) as flags per token (salient-list.ts): a block per (b, kv head).`,
    `extern "C" __global__ void __launch_bounds__(${THREADS}) ${entryName(k, t)}(const Args ${ARGS}) {`,
    `  const size_t bh = (size_t)blockIdx.y * ${ARGS}.Hkv + blockIdx.x;`,
    `  const int n = ${listLength(k, t, layout)};`,
    `  int* flags = ${ARGS}.${layout.field(salientFlagsKey(t))} + bh * ${ARGS}.Nk;`,
    `  const int* list = ${ARGS}.${layout.field(`tensor:${t}`)} + bh * (size_t)n;`,
    `  for (int j = threadIdx.x; j < ${ARGS}.Nk; j += ${THREADS}) flags[j] = 0;`,
    '  __syncthreads();',
    `  for (int i = threadIdx.x; i < n; i += ${THREADS}) {`,
    '    const int j = list[i];',
    `    if (j >= 0 && j < ${ARGS}.Nk) flags[j] = 1;`,
    '  }',
    '}',
  ]);
}

/** Launcher lines (after the argument checks, before any pass that dequantizes). */
export function salientLaunch(k: AttentionKernel, layout: CudaLayout, ns: string): string[] {
  return salientLists(k).flatMap((t) => {
    const f = layout.field(salientFlagsKey(t));
    return [
      `if (a.Nk > 0 && a.${f} == NULL) return fail(ATTNC_ERR_ARGS, "${f} is NULL: the salient tokens of ${t} (an index list) need a workspace of ${salientBytesName(k, t)}(args) bytes");`,
      'if (a.Nk > 0) {',
      `  ${ns}::${entryName(k, t)}<<<dim3((unsigned)a.Hkv, (unsigned)a.B), ${THREADS}, 0, stream>>>(a);`,
      '  const cudaError_t e = cudaGetLastError();',
      `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "salient flags of ${t}: %s", cudaGetErrorString(e));`,
      '}',
    ];
  });
}

/** The workspace-size functions (host) and their header prototypes. */
export function salientBytesFns(k: AttentionKernel, struct: string): string[] {
  return salientLists(k).flatMap((t) => [
    '',
    `extern "C" size_t ${salientBytesName(k, t)}(const ${struct}* args) {`,
    '  return 4 * (size_t)args->B * (size_t)args->Hkv * (size_t)args->Nk;',
    '}',
  ]);
}

export function salientHeaderLines(k: AttentionKernel, struct: string): string[] {
  return salientLists(k).map(
    (t) =>
      `/* Bytes of ${t}_flags, the workspace the salient index list ${t} is scattered into (int [B, Hkv, Nk]). */\nsize_t ${salientBytesName(k, t)}(const ${struct}* args);`,
  );
}

/** The pre-pass entry points (launched before everything else). */
export function salientEntryPoints(k: AttentionKernel): EntryPoint[] {
  return salientLists(k).map((t) => ({
    name: entryName(k, t),
    // A pre-pass over a tensor, as a tile summary is.
    role: 'summary',
    tensor: t,
    workgroupSize: [THREADS, 1, 1],
    grid: ['Hkv', 'B', '1'],
    bindings: [t, `${t}_flags`],
  }));
}
