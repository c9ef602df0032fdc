// The C header of a CUDA artifact: the args struct with a note on every field (shape, dtype,
// what args_init sets), the status codes and the extern "C" prototypes. kernel.ts also pastes it
// verbatim at the top of the .cu, so either compiles alone.
import type { TensorFormat } from '../../ir/formats.js';
import { codesPerWord } from '../../quant/elem.js';
import type { CachePart } from '../../quant/paged-layout.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { pagedQuantDoc } from './kv-rows.js';
import { salientBytesName, salientHeaderLines } from './salient-list.js';
import type { CudaLayout } from './layout.js';
import { limitsComment } from './launcher-checks.js';
import { errorName, initName, launchName, summaryElemsName } from './launcher.js';
import { routingFieldDoc, routingHeaderLines } from './routing-host.js';
import { selectFieldDoc } from './select-records.js';
import { selectHandles, selectHeaderLines } from './select-host.js';

/** How the pointers are read: every float tensor at its `*_stride_*` fields, a quantized cache packed. */
function pointerComment(k: AttentionKernel, align: number): string {
  const strided = ['q', 'out', ...(['k', 'v'] as const).filter((t) => k.formats[t].kind === 'float')];
  const list = `${strided.slice(0, -1).join(', ')} and ${strided[strided.length - 1]}`;
  const packed = strided.length < 4 ? '; quantized K/V packed as their fields say' : '';
  return `/* Device pointers; ${list} addressed by their *_stride_* fields (args_init: packed)${packed}; q, k, v and out must be ${align}-byte aligned. */`;
}

/** The C header: also pasted verbatim at the top of the .cu, so either compiles alone. */
export function headerText(k: AttentionKernel, layout: CudaLayout, align: number): string {
  const guard = `ATTNC_${k.name.toUpperCase()}_H`;
  const fieldDoc = fieldDocs(k, layout);
  const fields = layout.fields.map(
    (f) => `  ${f.decl};${fieldDoc[f.field] ? ` /* ${fieldDoc[f.field]} */` : ''}`,
  );
  return [
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '#include <stddef.h>',
    '#include <cuda_runtime_api.h>',
    '',
    '#ifndef ATTNC_STATUS_CODES',
    '#define ATTNC_STATUS_CODES',
    '#define ATTNC_OK 0',
    '#define ATTNC_ERR_ARGS 1 /* bad sizes, NULL or misaligned pointers */',
    '#define ATTNC_ERR_CUDA 2 /* a CUDA call failed (no device, launch configuration, ...) */',
    '#endif',
    '',
    '#ifdef __cplusplus',
    'extern "C" {',
    '#endif',
    '',
    pointerComment(k, align),
    ...limitsComment(k, layout, align),
    `typedef struct ${layout.struct} {`,
    ...fields,
    `} ${layout.struct};`,
    '',
    '/* Zeroes *args, sets the sizes and every default (offsets, scale, params with defaults). */',
    `void ${initName(k)}(${layout.struct}* args, int B, int H, int Hkv, int Nq, int Nk);`,
    ...k.summaries.map(
      (t) =>
        `/* Elements (${t.tensor}'s type) of ${t.tensor}'s summary scratch. */\nsize_t ${summaryElemsName(k, t.tensor)}(const ${layout.struct}* args);`,
    ),
    ...salientHeaderLines(k, layout.struct),
    ...(k.routing ? (selectHandles(k) ? selectHeaderLines : routingHeaderLines)(k, layout.struct) : []),
    '/* Validates args and launches on `stream`; ATTNC_OK, or a code with a message in last_error. */',
    `int ${launchName(k)}(const ${layout.struct}* args, cudaStream_t stream);`,
    '/* The calling thread\'s last error message ("" after a successful launch). */',
    `const char* ${errorName(k)}(void);`,
    '',
    '#ifdef __cplusplus',
    '}',
    '#endif',
    `#endif /* ${guard} */`,
  ].join('\n');
}

/** The note on each args field, by field name (fields without one get none). */
function fieldDocs(k: AttentionKernel, layout: CudaLayout): Record<string, string> {
  const s = k.schedule;
  const f = k.formats;
  const fieldDoc: Record<string, string> = {
    q: `[B, H, Nq, ${s.headDim}] ${f.q.dtype} at q_stride_* (args_init: packed; any layout with a contiguous last dim)`,
    k: kvDoc(f.k, s.headDim, f.paged?.pageSize),
    v: kvDoc(f.v, s.valueDim, f.paged?.pageSize),
    out: `[B, H, Nq, ${s.valueDim}] ${f.out.dtype}, written at out_stride_* (args_init: packed)`,
    lse: k.outputs.importance
      ? '[B, H, Nq] f32, natural log, written (the importance pass reads it)'
      : '[B, H, Nq] f32, natural log, written; may be NULL',
    importance: `[B, H, Nk] f32, written: per key, ${k.outputs.importance === 'normalized' ? 'the attention mass of the rows that may see it, over their number' : 'the attention mass sum_i p_ij of the query rows'}`,
    q_offset: 'position of query row 0 (args_init: Nk - Nq)',
    k_offset: 'position of key row 0 (args_init: 0)',
    scale: `scores are scale * <q, k> (args_init: 1/sqrt(${s.headDim}))`,
    sel_row0: 'internal: the launcher sets it per scoring round (leave 0)',
  };
  for (const f of layout.fields) {
    if (f.role === 'tensor') fieldDoc[f.field] = 'user tensor, row-major';
    if (f.role === 'stride') fieldDoc[f.field] = strideDoc(f.field, k.formats.paged !== undefined);
    if (f.role === 'qo_stride') fieldDoc[f.field] = qoStrideDoc(f.field);
    if (f.role === 'workspace')
      fieldDoc[f.field] =
        `workspace: int [B, Hkv, Nk] (${salientBytesName(k, f.name.replace(/_flags$/, ''))}(args) bytes), the launcher scatters the salient index list into it`;
    if (f.role === 'block_table')
      fieldDoc[f.field] =
        `[B, max_pages] page ids: key j of batch b is row j % ${k.formats.paged?.pageSize} of page block_table[b * max_pages + j / ${k.formats.paged?.pageSize}]`;
    if (f.role === 'max_pages')
      fieldDoc[f.field] = 'row length of block_table (args_init: ceil(Nk / page size))';
    if (f.role === 'cache')
      fieldDoc[f.field] = k.formats.paged
        ? pagedCacheFieldDoc(k, f.name)
        : 'quantized cache tensor (docs/LANGUAGE.md, K/V storage formats: Layout)';
    if (f.role === 'summary')
      fieldDoc[f.field] = `scratch: ${summaryElemsName(k, f.name.replace(/_summary$/, ''))}() elements`;
    if (k.routing && (f.role === 'indices' || f.role === 'scratch'))
      fieldDoc[f.field] = selectHandles(k) ? selectFieldDoc(k, f.role) : routingFieldDoc(k, f.role);
    if (f.role === 'param') {
      const p = k.params.find((x) => x.name === f.name)!;
      fieldDoc[f.field] =
        `param ${p.dtype}${p.default === undefined ? ', required' : `, default ${String(p.default)}`}`;
    }
  }
  return fieldDoc;
}

/** A paged quantized cache's side tensor `name` (`k_scale`, …): its pool shape (kv-rows.ts). */
function pagedCacheFieldDoc(k: AttentionKernel, name: string): string {
  const [which, part] = name.split('_') as ['k' | 'v', CachePart];
  const width = which === 'k' ? k.schedule.headDim : k.schedule.valueDim;
  return pagedQuantDoc(k.formats[which], part, width, k.formats.paged!.pageSize);
}

/** The header's note on a K or V field: its shape and dtype, or the quantized cache's codes. */
function kvDoc(f: TensorFormat, width: number, page?: number): string {
  if (f.kind === 'float' && page !== undefined)
    return `pages [pages, Hkv, ${page}, ${width}] ${f.dtype} as args_init's strides say (any page layout the k/v strides describe)`;
  if (f.kind === 'float')
    return `[B, Hkv, Nk, ${width}] ${f.dtype} as args_init's strides say (any layout the strides describe)`;
  const words = Math.ceil(width / codesPerWord(f.format.elem));
  if (page !== undefined)
    return `pages [pages, Hkv, ${page}, ${words}] u32: ${f.format.elem} codes of a paged quantized cache (block_table; k/v strides unused)`;
  return `[B, Hkv, Nk, ${words}] u32: ${f.format.elem} codes of a quantized cache`;
}

/** The header's note on a q/out stride field (qo-rows.ts). */
function qoStrideDoc(field: string): string {
  const what = { b: 'batches', h: 'heads', n: 'rows (queries)' }[field.at(-1)!]!;
  const init = { b: 'H * Nq * W', h: 'Nq * W', n: 'W' }[field.at(-1)!]!;
  return `elements between ${what} (args_init: ${init}, W the row width; a BNHD view: h W, n H * W)`;
}

/** The header's note on a K/V stride field (kv-rows.ts). */
function strideDoc(field: string, paged: boolean): string {
  const what = { b: paged ? 'pages' : 'batches', h: 'kv heads', n: 'rows (keys)' }[field.at(-1)!]!;
  const init = { b: paged ? 'Hkv * P * W' : 'Hkv * Nk * W', h: paged ? 'P * W' : 'Nk * W', n: 'W' }[
    field.at(-1)!
  ]!;
  return `elements between ${what} (args_init: ${init}, W the row width)`;
}
