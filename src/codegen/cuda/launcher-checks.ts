// The launcher's argument checks (inside `attnc_<name>_launch`, `a` the args) and the limits the
// header states. The kernels index with 32-bit ints wherever a value provably fits: (batch, head)
// row indices b·H + h, tile counts (Nk + BK − 1) / BK, tile ends (kt + 1)·BK, positions
// q_offset + i; element offsets into q, k, v, out, lse and scratch are 64-bit (size_t). These
// limits are what makes "provably" true, so a launch past them is refused, never run wrapped.
import type { AttentionKernel, ShapeDim } from '../../ir/kernel.js';
import type { CudaLayout } from './layout.js';
import { dimText } from './rules.js';

/** Largest Nq, Nk and tensor-sizing param: tile rounding (+ up to 2^20) stays below 2^31. */
export const MAX_ROWS = 2 ** 31 - 2 ** 20;
const INT_MAX = 2 ** 31 - 1;

/** Bytes of alignment of the pointers besides q, k, v and out (their element or vector type). */
function pointerAlignments(layout: CudaLayout): { field: string; align: number }[] {
  return layout.fields
    .filter((f) => f.ctype === 'ptr' && !['q', 'k', 'v', 'out'].includes(f.role))
    .map((f) => ({ field: f.field, align: f.role === 'scratch' ? 16 : f.decl.includes('short') ? 2 : 4 })); // route scratch: float4 loads; 16-bit cache tensors: their element
}

/** The header's statement of the limits (a C comment). */
export function limitsComment(k: AttentionKernel, layout: CudaLayout, align: number): string[] {
  const { room, comment } = positionRoom(k);
  const others = pointerAlignments(layout);
  const by = (n: number): string =>
    others
      .filter((p) => p.align === n)
      .map((p) => p.field)
      .join(', ');
  return [
    '/* Limits the launcher checks (ATTNC_ERR_ARGS past them), so that no 32-bit index overflows:',
    ' *   1 <= B, H <= 65535, B * H <= 2^31 - 1, Hkv >= 1, H % Hkv == 0;',
    ` *   0 <= Nq, Nk <= ${MAX_ROWS} (2^31 - 2^20), and so are params that size a tensor;`,
    ` *   positions fit an int with ${room} to spare (${comment[0]}`,
    ` *   ${comment[1]}): q_offset + Nq - 1 and k_offset + Nk - 1 <= 2^31 - 1 - ${room};`,
    ' *   every q - k fits an int (masks compute it);',
    ' *   scale and f32 params are finite;',
    ` *   q, k, v, out ${align}-byte aligned` +
      (by(2) ? `; ${by(2)} 2-byte` : '') +
      (by(4) ? `; ${by(4)} 4-byte` : '') +
      (by(16) ? `; ${by(16)} 16-byte` : '') +
      ' (when not NULL).',
    ' * Element offsets are 64-bit. */',
  ];
}

/** Headroom below 2^31 − 1 for the positions of a tile's padding rows and keys (tiles ≤ 192). */
export const PAD_ROOM = 1024;

/** The headroom a kernel's positions need below 2^31 − 1: what needs it, in a message and the header. */
interface PositionRoom {
  readonly room: number;
  readonly why: string;
  /** The header comment's reason, split over its two lines. */
  readonly comment: readonly [string, string];
}

/**
 * PAD_ROOM, or for block routing with blocks larger than that, the block size: the routing passes
 * form a block's end (id + 1) · RB ≤ p + RB for the block of position p, in an int.
 */
export function positionRoom(k: AttentionKernel): PositionRoom {
  const unit = k.routing?.unit;
  if (unit?.kind === 'blocks' && unit.size > PAD_ROOM)
    return {
      room: unit.size,
      why: `the end of a routing block of ${unit.size}`,
      comment: ["the routing passes compute a block's end,", `(id + 1) * ${unit.size}`],
    };
  return {
    room: PAD_ROOM,
    why: 'tile padding',
    comment: ["the kernels compute positions of a tile's", 'padding rows'],
  };
}

/** Every q − k fits int32 (the runtime's spanProblem, docs/LANGUAGE.md "Int arithmetic"). */
function spanChecks(): string[] {
  const hi = '(long long)a.q_offset + a.Nq - 1 - a.k_offset';
  const lo = '(long long)a.q_offset - ((long long)a.k_offset + a.Nk - 1)';
  return [
    `if (a.Nq > 0 && a.Nk > 0 && (${hi} > ${INT_MAX}LL || ${lo} < -${INT_MAX}LL))`,
    `  return fail(ATTNC_ERR_ARGS, "q - k ranges over [%lld, %lld], which leaves int32 (q_offset = %d, k_offset = %d)", ${lo}, ${hi}, a.q_offset, a.k_offset);`,
  ];
}

/** Sizes, positions, scale and params: checked before any pointer. */
export function valueChecks(k: AttentionKernel, layout: CudaLayout): string[] {
  const f = (key: string): string => `a.${layout.field(key)}`;
  const paramDims = [
    ...new Set(k.tensors.flatMap((t) => t.dims.filter((d) => d.kind === 'param').map((d) => d.name))),
  ];
  return [
    `if (a.B < 1 || a.H < 1 || a.Hkv < 1 || a.Nq < 0 || a.Nk < 0)`,
    `  return fail(ATTNC_ERR_ARGS, "need B, H, Hkv >= 1 and Nq, Nk >= 0 (got B=%d H=%d Hkv=%d Nq=%d Nk=%d)", a.B, a.H, a.Hkv, a.Nq, a.Nk);`,
    `if (a.H % a.Hkv != 0) return fail(ATTNC_ERR_ARGS, "H (%d) must be a multiple of Hkv (%d)", a.H, a.Hkv);`,
    `if (a.H > 65535 || a.B > 65535) return fail(ATTNC_ERR_ARGS, "H (%d) and B (%d) must be at most 65535", a.H, a.B);`,
    `if ((long long)a.B * a.H > ${INT_MAX}LL) return fail(ATTNC_ERR_ARGS, "B * H (%d * %d) must be at most ${INT_MAX}", a.B, a.H);`,
    `if (a.Nq > ${MAX_ROWS} || a.Nk > ${MAX_ROWS}) return fail(ATTNC_ERR_ARGS, "Nq (%d) and Nk (%d) must be at most ${MAX_ROWS} (2^31 - 2^20)", a.Nq, a.Nk);`,
    ...(['q', 'k'] as const).map((s) => {
      const [n, side] = s === 'q' ? ['Nq', 'query'] : ['Nk', 'key'];
      const { room, why } = positionRoom(k);
      const top = INT_MAX - room;
      return `if (a.${n} > 0 && (long long)a.${s}_offset + a.${n} - 1 > ${top}LL) return fail(ATTNC_ERR_ARGS, "${side} positions [%d, %lld] are too close to the int32 limit (${s}_offset + ${n} - 1 must be <= ${top}, 2^31 - 1 - ${room}: ${why}; got ${s}_offset = %d, ${n} = %d)", a.${s}_offset, (long long)a.${s}_offset + a.${n} - 1, a.${s}_offset, a.${n});`;
    }),
    ...spanChecks(),
    `if (!isfinite(a.scale)) return fail(ATTNC_ERR_ARGS, "scale must be finite (got %g)", (double)a.scale);`,
    ...k.params
      .filter((p) => p.dtype === 'f32')
      .map(
        (p) =>
          `if (!isfinite(${f(`param:${p.name}`)})) return fail(ATTNC_ERR_ARGS, "param ${p.name} (f32) must be finite (got %g)", (double)${f(`param:${p.name}`)});`,
      ),
    ...paramDims.map(
      (p) =>
        `if (${f(`param:${p}`)} < 0 || ${f(`param:${p}`)} > ${MAX_ROWS}) return fail(ATTNC_ERR_ARGS, "param ${p} sizes a tensor and must be in [0, ${MAX_ROWS}] (got %d)", ${f(`param:${p}`)});`,
    ),
  ];
}

/** Pointers: q, k, v, out present and vector-aligned, tensors and summaries present, every other
 * pointer aligned to its loads. Run after the `Nq == 0` early return. */
export function pointerChecks(k: AttentionKernel, layout: CudaLayout, align: number): string[] {
  const f = (key: string): string => `a.${layout.field(key)}`;
  const dimC = (d: ShapeDim): string => dimText(d, layout.field);
  const summaryLen = (t: string): string => dimC(k.tensors.find((x) => x.name === t)!.dims[0]!);
  return [
    `if (!ptr_ok(a.q, ${align}) || !ptr_ok(a.out, ${align}) || (a.Nk > 0 && (!ptr_ok(a.k, ${align}) || !ptr_ok(a.v, ${align}))))`,
    `  return fail(ATTNC_ERR_ARGS, "q, k, v and out must be non-NULL and ${align}-byte aligned");`,
    ...k.tensors.map((t) => {
      const n = t.dims.map((d) => `(long long)${dimC(d)}`).join(' * ');
      return `if (${n} > 0 && ${f(`tensor:${t.name}`)} == NULL) return fail(ATTNC_ERR_ARGS, "tensor ${t.name} is NULL");`;
    }),
    ...k.summaries.map(
      ({ tensor }) =>
        `if (${summaryLen(tensor)} > 0 && ${f(`summary:${tensor}`)} == NULL) return fail(ATTNC_ERR_ARGS, "summary scratch ${layout.field(`summary:${tensor}`)} is NULL");`,
    ),
    // A quantized cache's side tensors are read for every key: required when there are keys.
    ...layout.fields
      .filter((f) => f.role === 'cache')
      .map(
        (f) =>
          `if (a.Nk > 0 && a.${f.field} == NULL) return fail(ATTNC_ERR_ARGS, "${f.field} (a tensor of the quantized cache) must not be NULL");`,
      ),
    ...pointerAlignments(layout).map(
      ({ field, align: n }) =>
        `if ((uintptr_t)a.${field} % ${n} != 0) return fail(ATTNC_ERR_ARGS, "${field} must be ${n}-byte aligned (got %p)", (const void*)a.${field});`,
    ),
  ];
}

/** The K/V stride fields of the layout (float caches only: a quantized one is packed). */
const strideFieldsOf = (layout: CudaLayout): string[] =>
  layout.fields.filter((f) => f.role === 'stride' || f.role === 'qo_stride').map((f) => f.field);

/**
 * Host helper (in the launcher's namespace): every K/V stride, and q's and out's (qo-rows.ts), a
 * multiple of `elems`, so that the kernels' vector loads and stores (and decode's) stay aligned.
 */
export function stridesAlignedFn(layout: CudaLayout): string {
  const all = strideFieldsOf(layout).map((s) => `a.${s} % elems == 0`);
  return `[[maybe_unused]] static bool kv_strides_ok(const Args& a, long long elems) { return ${all.length ? all.join(' && ') : 'true'}; }`;
}

/**
 * K/V strides (kv-rows.ts) and a paged cache's block table: non-negative strides, rows at least a
 * row wide, strides that keep `vecElems`-element loads aligned; kernels that read keys outside
 * kv-rows.ts (routing, importance) need the packed strides args_init sets. Run after the `Nq == 0`
 * early return (with Nk == 0 nothing is read).
 */
export function strideChecks(k: AttentionKernel, vecElems: number): string[] {
  const out: string[] = [];
  for (const t of ['k', 'v'] as const) {
    if (k.formats[t].kind !== 'float') continue;
    const [sb, sh, sn] = [`${t}_stride_b`, `${t}_stride_h`, `${t}_stride_n`];
    const width = String(t === 'k' ? k.schedule.headDim : k.schedule.valueDim);
    out.push(
      `if (a.${sb} < 0 || a.${sh} < 0 || a.${sn} < 0) return fail(ATTNC_ERR_ARGS, "${t} strides must be >= 0 (got ${sb} = %lld, ${sh} = %lld, ${sn} = %lld)", a.${sb}, a.${sh}, a.${sn});`,
      `if (a.Nk > 1 && a.${sn} < ${width}) return fail(ATTNC_ERR_ARGS, "${sn} (%lld) is smaller than a row of ${t} (%d elements): its rows would overlap", a.${sn}, ${width});`,
      `if (a.${sb} % ${vecElems} || a.${sh} % ${vecElems} || a.${sn} % ${vecElems}) return fail(ATTNC_ERR_ARGS, "${t} strides must be multiples of ${vecElems} elements, the kernel's vector loads (got %lld, %lld, %lld)", a.${sb}, a.${sh}, a.${sn});`,
    );
    // A paged kernel's passes read through the block table (kv-rows.ts; storage-support.ts
    // refuses the routing that does not).
    if ((k.routing || k.outputs.importance) && !k.formats.paged) {
      const packed = `a.${sn} == ${width} && a.${sh} == (long long)a.Nk * ${width} && a.${sb} == (long long)a.Hkv * a.Nk * ${width}`;
      const why = k.routing ? 'its routing pass' : 'its importance pass';
      out.push(
        `if (a.Nk > 0 && !(${packed})) return fail(ATTNC_ERR_ARGS, "this kernel needs ${t} packed [B, Hkv, Nk, %d] (${why} reads keys by their packed rows); pass args_init's strides", ${width});`,
      );
    }
  }
  const P = k.formats.paged?.pageSize;
  if (P !== undefined)
    out.push(
      `if (a.Nk > 0 && a.block_table == NULL) return fail(ATTNC_ERR_ARGS, "block_table is NULL (a paged cache reads its keys through it)");`,
      `if (a.Nk > 0 && (a.max_pages < 1 || (long long)a.max_pages * ${P} < a.Nk)) return fail(ATTNC_ERR_ARGS, "the block table's max_pages = %d pages of ${P} rows hold fewer than Nk = %d keys", a.max_pages, a.Nk);`,
      `if ((uintptr_t)a.block_table % 4 != 0) return fail(ATTNC_ERR_ARGS, "block_table must be 4-byte aligned (got %p)", (const void*)a.block_table);`,
    );
  return out;
}

/** args_init's K/V strides: packed [B, Hkv, Nk, W] rows, or [pages, Hkv, P, W] pages when paged. */
export function strideDefaults(k: AttentionKernel, args: string): string[] {
  const P = k.formats.paged?.pageSize;
  const out: string[] = [];
  for (const t of ['k', 'v'] as const) {
    if (k.formats[t].kind !== 'float') continue;
    const w = t === 'k' ? k.schedule.headDim : k.schedule.valueDim;
    const rows = P === undefined ? '(long long)Nk' : `${P}LL`;
    out.push(
      `  ${args}->${t}_stride_n = ${w};`,
      `  ${args}->${t}_stride_h = ${rows} * ${w};`,
      `  ${args}->${t}_stride_b = (long long)Hkv * ${rows} * ${w};`,
    );
  }
  if (P !== undefined) out.push(`  ${args}->max_pages = (Nk + ${P - 1}) / ${P};`);
  return out;
}
