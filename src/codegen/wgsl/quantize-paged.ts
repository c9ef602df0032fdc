// The paged variant of the WGSL quantize module (quantize.ts; docs/LANGUAGE.md, "Quantizing into a
// paged cache"): codes, wide codes and the row-indexed scales and zero points are written into
// pools of pages through the block table, at the rows the attention's kv_qrow reads
// (quant/paged-layout.ts); per-sequence tensors (normalizer, recent window, per tensor or per
// channel without a group) are written as unpaged. Rows whose page id is outside [0, pages) are
// skipped, so a bad table never writes outside the pools.
//
// Why atomics: unpaged, the scale groups a call rewrites are one run of the tensor, so each
// invocation owns a word of two 16-bit scales. Paged, two neighbours in a word can be groups of
// different rows (a page's rows are neighbours in the pool, not in the sequence) rewritten by
// different invocations; each writes its own half with atomicAnd / atomicOr, which commute.
import type { WgslQuantizeSpec } from './quantize.js';
import { entry, groupBounds, groupScan, loop, scaleGroupRange } from './quantize-passes.js';

/** Whether tensor `name` is a 16-bit tensor that the paged scale pass writes by halves (atomics). */
export function atomicHalves(s: WgslQuantizeSpec, name: string): boolean {
  const f = s.format;
  if (!s.paged) return false;
  if (name === 'scale') return f.scale?.dtype === 'f16';
  if (name === 'zero') return f.kind === 'int' && f.zero === 'f16';
  return false;
}

/** The pool row of token t of cache head bh, and the scale-group index, through the block table. */
export function pagedRowHelpers(s: WgslQuantizeSpec): string {
  return String.raw`
const PAGE: u32 = ${s.paged!.pageSize}u;
const NO_ROW: u32 = 0xffffffffu;
// Row t mod PAGE of page block_table[b][t / PAGE] in [pages, Hkv, PAGE] rows; NO_ROW outside the pools.
fn code_row(bh: u32, t: u32) -> u32 {
  let id = blockTable[(bh / u.Hkv) * u.max_pages + t / PAGE];
  if (id < 0 || u32(id) >= u.pages) { return NO_ROW; }
  return (u32(id) * u.Hkv + bh % u.Hkv) * PAGE + t % PAGE;
}
fn scale_index(bh: u32, t: u32, c: u32) -> u32 {
  if (GRAN <= 1u) { return 0u; }
  if (GRAN == 3u && GROUP == 0u) { return bh * D + c; }
  let row = code_row(bh, t);
  if (row == NO_ROW) { return NO_ROW; }
  if (GRAN == 2u) { return row * CHANNEL_GROUPS + select(0u, c / GDIV, GROUP != 0u); }
  return row / GDIV * D + c; // GROUP divides PAGE: a group's tokens share a page
}`;
}

/** Writes element g of a scale/zero tensor: f32 directly, f16 into its half with atomics. */
function put(s: WgslQuantizeSpec, name: 'scale' | 'zero', bits: string, value: string): string {
  if (!atomicHalves(s, name)) return `${name}[g] = ${value};`;
  return [
    `{ let sh = (g & 1u) * 16u;`,
    `atomicAnd(&${name}[g >> 1u], ~(0xffffu << sh));`,
    `atomicOr(&${name}[g >> 1u], (${bits} & 0xffffu) << sh); }`,
  ].join(' ');
}

/** Pass 2, paged: one scale group the call touches per invocation (as the CUDA scale_pass). */
export function pagedScaleEntry(s: WgslQuantizeSpec): string {
  const f = s.format;
  const zero = f.kind === 'int' && f.zero;
  return entry(
    'quantize_scale',
    String.raw`
${scaleGroupRange}  let per_bh = (tg1 - tg0) * CHANNEL_GROUPS;
  let total = select(u.B * u.Hkv * per_bh, 1u, GRAN == 1u);` +
      loop(
        'total',
        String.raw`    let bh = select(i / per_bh, 0u, GRAN == 1u);
    let tg = tg0 + i % per_bh / CHANNEL_GROUPS;
    let cg = i % CHANNEL_GROUPS;
    ${groupBounds('    ')}
    let g = scale_index(bh, t0, c0);
    if (g == NO_ROW) { continue; } // a page outside the pools
    ${groupScan('    ')}
    ${put(s, 'scale', 'p.sbits', 'p.scale')}
    ${zero ? put(s, 'zero', 'p.zbits', 'p.zero') : ''}`,
      ),
  );
}
