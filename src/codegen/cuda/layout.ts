// The launcher's args struct: one C struct per kernel, shared by the header (C), the kernels (it is
// passed to them by value) and the manifest (field offsets, so an FFI such as Python ctypes can
// build it without a C compiler). Pointers come first, then the 64-bit strides, then the 4-byte
// scalars, so the layout is the same under every LP64 C or C++ compiler.
import type { AttentionKernel } from '../../ir/kernel.js';
import { cudaCacheParts } from './dequant.js';
import { selectHandles } from './routing-case.js';
import { strideFields } from './kv-rows.js';
import { qoStrideFields } from './qo-rows.js';
import { salientFlagsKey, salientLists } from './salient-list.js';
import { isCMacroName } from './c-macros.js';

export type ArgRole =
  | 'q'
  | 'k'
  | 'v'
  | 'out'
  | 'lse'
  // The importance output (codegen/cuda/importance.ts), [B, H, Nk] f32.
  | 'importance'
  | 'tensor'
  | 'summary'
  | 'size'
  | 'offset'
  | 'scale'
  | 'param'
  // Block routing (codegen/cuda/routing.ts): the selection output and the pooled-block scratch.
  | 'indices'
  | 'scratch'
  // Selection (codegen/cuda/select.ts): the first query row of a scoring round, set by the launcher.
  | 'round'
  // A quantized K/V cache's side tensors (scales, zero points, …: codegen/cuda/dequant.ts).
  | 'cache'
  // K/V element strides, 64-bit (kv-rows.ts): batch (paged: page), kv head, row.
  | 'stride'
  // q's and out's element strides, 64-bit (qo-rows.ts): batch, head, row.
  | 'qo_stride'
  // A paged cache's block table [B, max_pages] of page ids, and max_pages (kv-rows.ts).
  | 'block_table'
  | 'max_pages'
  // Salient tokens from an index list: the flag workspace the pre-pass fills (salient-list.ts).
  | 'workspace';

export interface ArgField {
  /** C field name (attnc names, renamed with a trailing '_' if they collide or are C keywords). */
  readonly field: string;
  /** The attnc name: the tensor, param or size it holds. */
  readonly name: string;
  readonly role: ArgRole;
  readonly ctype: 'ptr' | 'i64' | 'i32' | 'f32';
  /** C declaration, e.g. `const int* doc`. */
  readonly decl: string;
  readonly offset: number;
}

export interface CudaLayout {
  readonly struct: string;
  readonly fields: readonly ArgField[];
  /** Field name of a key: 'q' 'k' 'v' 'out' 'lse' 'B' … 'scale', 'tensor:x', 'summary:x', 'param:x'. */
  readonly field: (key: string) => string;
  readonly bytes: number;
}

// Names the struct or C/C++ would not accept as a user field.
const cKeywords = new Set(
  (
    'auto bool break case catch char class const constexpr continue default delete do double else enum ' +
    'explicit extern false float for friend goto if inline int long mutable namespace new noexcept nullptr ' +
    'operator private protected public register restrict return short signed sizeof static struct switch ' +
    'template this throw true try typedef typename union unsigned using virtual void volatile while ' +
    '_Bool _Complex _Imaginary alignas alignof decltype static_assert thread_local'
  ).split(' '),
);

export function cudaLayout(kernel: AttentionKernel): CudaLayout {
  const table = new FieldTable();
  // The order of these calls is the order names are claimed in: a built-in field keeps its
  // documented name, and user names collide into a trailing `_`.
  addBuffers(kernel, table);
  addStrides(kernel, table);
  if (kernel.routing) {
    table.add('indices', 'indices', 'indices', 'ptr', 'int* $');
    table.add('route_scratch', 'route_scratch', 'scratch', 'ptr', 'float* $');
  }
  addLaunchScalars(kernel, table);
  addUserFields(kernel, table);
  return table.layout(`AttncArgs_${kernel.name}`);
}

/** Fields by size class, each with a unique C name, packed pointers, then i64, then 4-byte. */
class FieldTable {
  private readonly taken = new Set<string>(cKeywords);
  private readonly byKey = new Map<string, string>();
  private readonly ptrs: Omit<ArgField, 'offset'>[] = [];
  private readonly wides: Omit<ArgField, 'offset'>[] = [];
  private readonly scalars: Omit<ArgField, 'offset'>[] = [];

  /** Adds a field; `$` in `cdecl` stands for its C name. */
  add(key: string, name: string, role: ArgRole, ctype: ArgField['ctype'], cdecl: string): void {
    // A macro name gets one `_` (the result is no macro: none of those ends in `_` but the
    // reserved `__…__`, whose renaming needs no second look); then `_` until the name is free.
    let field = isCMacroName(name) ? `${name}_` : name;
    while (this.taken.has(field)) field += '_';
    this.taken.add(field);
    this.byKey.set(key, field);
    const into = ctype === 'ptr' ? this.ptrs : ctype === 'i64' ? this.wides : this.scalars;
    into.push({ field, name, role, ctype, decl: cdecl.replace('$', field) });
  }

  layout(struct: string): CudaLayout {
    const { ptrs, wides, scalars, byKey } = this;
    const words = 8 * (ptrs.length + wides.length);
    const fields: ArgField[] = [
      ...ptrs.map((f, i) => ({ ...f, offset: 8 * i })),
      ...wides.map((f, i) => ({ ...f, offset: 8 * (ptrs.length + i) })),
      ...scalars.map((f, i) => ({ ...f, offset: words + 4 * i })),
    ];
    const field = (key: string): string => {
      const f = byKey.get(key);
      if (f === undefined) throw new Error(`CUDA: no args field for "${key}"`);
      return f;
    };
    const raw = words + 4 * scalars.length;
    return { struct, fields, field, bytes: Math.ceil(raw / 8) * 8 };
  }
}

/** q, k, v, the outputs, a quantized cache's side tensors and a paged cache's block table. */
function addBuffers(kernel: AttentionKernel, table: FieldTable): void {
  table.add('q', 'q', 'q', 'ptr', 'const void* $');
  table.add('k', 'k', 'k', 'ptr', 'const void* $');
  table.add('v', 'v', 'v', 'ptr', 'const void* $');
  table.add('out', 'out', 'out', 'ptr', 'void* $');
  if (kernel.outputs.lse) table.add('lse', 'lse', 'lse', 'ptr', 'float* $');
  if (kernel.outputs.importance) table.add('importance', 'importance', 'importance', 'ptr', 'float* $');
  for (const which of ['k', 'v'] as const) {
    const f = kernel.formats[which];
    if (f.kind === 'quant')
      for (const { part, ctype } of cudaCacheParts(f.format))
        table.add(`cache:${which}_${part}`, `${which}_${part}`, 'cache', 'ptr', `${ctype} $`);
  }
  if (kernel.formats.paged) table.add('block_table', 'block_table', 'block_table', 'ptr', 'const int* $');
}

/** 64-bit element strides: float K/V caches (a quantized one has its own packed layout), q and out. */
function addStrides(kernel: AttentionKernel, table: FieldTable): void {
  for (const t of ['k', 'v'] as const)
    if (kernel.formats[t].kind === 'float')
      for (const s of strideFields(t)) table.add(s, s, 'stride', 'i64', 'long long $');
  for (const t of ['q', 'out'] as const)
    for (const s of qoStrideFields(t)) table.add(s, s, 'qo_stride', 'i64', 'long long $');
}

/** Sizes, max_pages, offsets, scale and a scoring round's first row. */
function addLaunchScalars(kernel: AttentionKernel, table: FieldTable): void {
  for (const s of ['B', 'H', 'Hkv', 'Nq', 'Nk'] as const) table.add(s, s, 'size', 'i32', 'int $');
  if (kernel.formats.paged) table.add('max_pages', 'max_pages', 'max_pages', 'i32', 'int $');
  table.add('q_offset', 'q_offset', 'offset', 'i32', 'int $');
  table.add('k_offset', 'k_offset', 'offset', 'i32', 'int $');
  table.add('scale', 'scale', 'scale', 'f32', 'float $');
  // Selection ranked here scores in rounds of query rows (select.ts); `from` reads its rows whole.
  if (kernel.routing?.source.kind === 'topk' && selectHandles(kernel))
    table.add('sel_row0', 'sel_row0', 'round', 'i32', 'int $');
}

/** The program's tensors, salient-list workspaces, tensor summaries and params. */
function addUserFields(kernel: AttentionKernel, table: FieldTable): void {
  for (const t of kernel.tensors)
    table.add(`tensor:${t.name}`, t.name, 'tensor', 'ptr', `const ${cty(t.dtype)}* $`);
  for (const t of salientLists(kernel))
    table.add(salientFlagsKey(t), `${t}_flags`, 'workspace', 'ptr', 'int* $');
  for (const s of kernel.summaries) {
    const t = kernel.tensors.find((x) => x.name === s.tensor);
    if (!t) throw new Error(`CUDA: summary of undeclared tensor "${s.tensor}"`);
    table.add(`summary:${t.name}`, `${t.name}_summary`, 'summary', 'ptr', `${cty(t.dtype)}* $`);
  }
  for (const p of kernel.params) {
    const f32 = p.dtype === 'f32';
    table.add(`param:${p.name}`, p.name, 'param', f32 ? 'f32' : 'i32', `${f32 ? 'float' : 'int'} $`);
  }
}

const cty = (t: 'i32' | 'f32'): string => (t === 'i32' ? 'int' : 'float');
