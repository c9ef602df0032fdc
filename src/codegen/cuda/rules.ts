// The CUDA C rule table: one entry per graph-IR op, rendering CUDA C text from operand text. Ops
// whose C meaning differs from attnc semantics (int floor division, wrapping int arithmetic —
// signed overflow is undefined in C++ and the optimizer exploits it —, bounds-checked loads, tile
// summaries, saturating casts) render as calls to `__device__` helpers (rules-helpers.ts), and
// `helperSource` emits only the helpers that rendering used.
import { I32_MIN, f32DecimalText } from '../common.js';
import { toposort, type Node } from '../../ir/graph.js';
import type { ParamSlot, ShapeDim, TensorSlot } from '../../ir/kernel.js';
import { Op, type DType } from '../../ir/ops.js';
import type { Renderer } from '../linearize.js';

/** What rules need beyond the node: C text of vars, args-struct fields of params and tensors. */
export interface CudaContext {
  /** C text of each VAR the surrounding code defines (attnc vars, and hoisted values by name). */
  readonly vars: Readonly<Record<string, string>>;
  readonly params: ReadonlyMap<string, ParamSlot>;
  readonly tensors: ReadonlyMap<string, TensorSlot>;
  /** Args-struct field of a param, tensor or summary scratch (keys 'param:x', 'tensor:x', 'summary:x'). */
  readonly field: (key: string) => string;
  /** Positions per block of the min/max summaries that RANGE_MIN/RANGE_MAX read. */
  readonly summaryBlock: number;
  /** Helpers referenced so far ('floordiv_i', 'load:doc', 'range:doc', …); filled by rules. */
  readonly used: Set<string>;
  /**
   * How f32 score math is rendered. 'precise' (the default): libdevice tanhf and IEEE division.
   * 'fast' (the tensor-core engines' per-element score, see scoreMathOf): tanh is the hardware
   * tanh.approx.f32 (max relative error 2^-11) and division by a divisor that is the same for
   * all keys of a row (params, literals, q, row hoists) is a multiplication by its reciprocal (relative error at most 2^-23, against
   * 2^-24 for the division), as FlashAttention-3 does for softcap: a per-element tanhf and IEEE
   * division cost tens of instructions each beside the two tensor-core GEMMs.
   */
  readonly scoreMath?: ScoreMath;
  /**
   * f32 products as `__fmul_rn`, which nvcc never contracts into an FMA (exactMulOf). nvcc's
   * default -fmad=true turns `x * 0.1f - 0.3f` into one fma.rn.f32 (one rounding), so a mask
   * could decide a key differently from the reference's two roundings.
   */
  readonly exactMul?: boolean;
}

/**
 * Whether a kernel's mask or tile classifier multiplies f32 values: its products are then
 * rendered uncontracted everywhere (exactMul), so the mask decides each key as the reference
 * does. Score values keep nvcc's contraction (an ulp; the tensor-core engines' score math is
 * approximate anyway).
 */
export function exactMulOf(kernel: {
  readonly mask: Node;
  readonly tiles: { readonly kind: string; readonly canBeTrue?: Node; readonly canBeFalse?: Node };
}): boolean {
  const t = kernel.tiles;
  const roots = [kernel.mask, ...(t.canBeTrue ? [t.canBeTrue] : []), ...(t.canBeFalse ? [t.canBeFalse] : [])];
  return toposort(roots).some((n) => n.op === Op.MUL && n.dtype === 'f32');
}

export type ScoreMath = 'precise' | 'fast';

export type Rule = (n: Node, a: readonly string[], cx: CudaContext) => string;

export const cudaType: Readonly<Record<DType, string>> = { i32: 'int', f32: 'float', bool: 'bool' };

export { rangeMaxBlocks } from '../common.js';

/** The args struct is visible as `a` in every kernel and helper. */
export const ARGS = 'a';

/** The size vars of an expression, read from the launch's args (D: the compile-time head dim). */
export const cudaSizeVars: Readonly<Record<string, string>> = Object.freeze({
  B: `${ARGS}.B`,
  H: `${ARGS}.H`,
  Hkv: `${ARGS}.Hkv`,
  Nq: `${ARGS}.Nq`,
  Nk: `${ARGS}.Nk`,
  D: 'D',
});

function need(cx: CudaContext, helper: string): void {
  cx.used.add(helper);
}

/** `helper`'s name, marked used. */
function needed(cx: CudaContext, helper: string): string {
  need(cx, helper);
  return helper;
}

/** An f32 literal that rounds to the same f32 as `v`. */
export function f32Literal(v: number): string {
  const x = Math.fround(v);
  if (Number.isNaN(x)) return 'NAN';
  if (!Number.isFinite(x)) return x > 0 ? 'INFINITY' : '(-INFINITY)';
  if (Object.is(x, -0)) return '(-0.0f)';
  const s = f32DecimalText(v);
  return x < 0 ? `(${s}f)` : `${s}f`;
}

export function i32Literal(v: number): string {
  const x = v | 0;
  if (x === I32_MIN) return '(-2147483647 - 1)';
  return x < 0 ? `(${x})` : String(x);
}

/** C text of a tensor dimension (an int) inside a kernel or helper. */
export function dimText(d: ShapeDim, field: (key: string) => string): string {
  if (d.kind === 'literal') return i32Literal(d.value);
  if (d.kind === 'param') return `${ARGS}.${field(`param:${d.name}`)}`;
  return `${ARGS}.${d.name}`;
}

function tensorOf(n: Node, cx: CudaContext): TensorSlot {
  const t = cx.tensors.get(String(n.arg));
  if (!t) throw new Error(`CUDA: ${n.op} reads tensor "${String(n.arg)}", which the kernel does not declare`);
  return t;
}

/** `(x)` → `x` when the parentheses wrap the whole text: function arguments need none. */
export function bare(s: string): string {
  if (!s.startsWith('(') || !s.endsWith(')')) return s;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    if (depth === 0 && i < s.length - 1) return s;
  }
  return s.slice(1, -1);
}
const args = (a: readonly string[]): string => a.map(bare).join(', ');

const bin =
  (op: string): Rule =>
  (_n, a) =>
    `${a[0]} ${op} ${a[1]}`;
/** An f32 function, or an int helper (wrapping / floor semantics) when the node is i32. */
const arith =
  (f32: (a: readonly string[]) => string, intHelper: string): Rule =>
  (n, a, cx) => {
    if (n.dtype !== 'i32') return f32(a);
    need(cx, intHelper);
    return `${intHelper}(${args(a)})`;
  };
/**
 * Whether `n` is the same for all keys of a query row: it reads no key position, score, per-key
 * hoist (`hk<n>[kk]`) or tensor. The compiler then computes its reciprocal once per row, not per
 * element.
 */
const keyInvariant = (n: Node): boolean =>
  toposort([n]).every((m) =>
    m.op === Op.VAR
      ? !['k', 'score'].includes(String(m.arg)) && !String(m.arg).startsWith('hk')
      : m.op !== Op.LOAD && m.op !== Op.RANGE_MIN && m.op !== Op.RANGE_MAX,
  );
const call =
  (fn: string): Rule =>
  (_n, a) =>
    `${fn}(${args(a)})`;

export const cudaRules: Readonly<Record<Op, Rule>> = {
  [Op.CONST]: (n) => {
    if (n.dtype === 'bool') return n.arg ? 'true' : 'false';
    const v = Number(n.arg);
    return n.dtype === 'i32' ? i32Literal(v) : f32Literal(v);
  },
  [Op.VAR]: (n, _a, cx) => {
    const text = cx.vars[String(n.arg)];
    if (text === undefined) throw new Error(`CUDA: variable "${String(n.arg)}" is not available here`);
    return text;
  },
  [Op.PARAM]: (n, _a, cx) => {
    const p = cx.params.get(String(n.arg));
    if (!p) throw new Error(`CUDA: unknown param "${String(n.arg)}"`);
    // Bool params travel as int so that the args struct has one C layout in C and C++.
    const ref = `${ARGS}.${cx.field(`param:${p.name}`)}`;
    return p.dtype === 'bool' ? `(${ref} != 0)` : ref;
  },
  [Op.LOAD]: (n, a, cx) => {
    const t = tensorOf(n, cx);
    if (a.length !== t.dims.length) {
      throw new Error(`CUDA: tensor "${t.name}" has ${t.dims.length} dims but is indexed with ${a.length}`);
    }
    need(cx, `load:${t.name}`);
    return `load_${t.name}(${args([ARGS, ...a])})`;
  },
  [Op.RANGE_MIN]: (n, a, cx) => {
    need(cx, `range:${tensorOf(n, cx).name}`);
    return `range_min_${String(n.arg)}(${args([ARGS, ...a])})`;
  },
  [Op.RANGE_MAX]: (n, a, cx) => {
    need(cx, `range:${tensorOf(n, cx).name}`);
    return `range_max_${String(n.arg)}(${args([ARGS, ...a])})`;
  },
  [Op.ADD]: arith((a) => `${a[0]} + ${a[1]}`, 'add_i'),
  [Op.SUB]: arith((a) => `${a[0]} - ${a[1]}`, 'sub_i'),
  [Op.MUL]: (n, a, cx) =>
    arith((a) => (cx.exactMul ? `__fmul_rn(${a[0]}, ${a[1]})` : `${a[0]} * ${a[1]}`), 'mul_i')(n, a, cx),
  [Op.DIV]: (n, a, cx) => {
    if (n.dtype === 'f32' && cx.scoreMath === 'fast' && keyInvariant(n.src[1]!))
      return `${a[0]} * (1.0f / ${a[1]})`;
    return arith((a) => `${a[0]} / ${a[1]}`, 'floordiv_i')(n, a, cx);
  },
  [Op.MOD]: (n, a, cx) => {
    const h = n.dtype === 'i32' ? 'floormod_i' : 'floormod_f';
    need(cx, h);
    return `${h}(${args(a)})`;
  },
  [Op.NEG]: arith((a) => `-${a[0]}`, 'neg_i'),
  [Op.MIN]: (n, a, cx) => `${n.dtype === 'i32' ? 'min' : needed(cx, 'fmin_nan')}(${args(a)})`,
  [Op.MAX]: (n, a, cx) => `${n.dtype === 'i32' ? 'max' : needed(cx, 'fmax_nan')}(${args(a)})`,
  [Op.ABS]: arith((a) => `fabsf(${args(a)})`, 'abs_i'),
  [Op.LT]: bin('<'),
  [Op.LE]: bin('<='),
  [Op.GT]: bin('>'),
  [Op.GE]: bin('>='),
  [Op.EQ]: bin('=='),
  [Op.NE]: bin('!='),
  [Op.AND]: bin('&&'),
  [Op.OR]: bin('||'),
  [Op.NOT]: (_n, a) => `!${a[0]}`,
  [Op.SELECT]: (_n, a) => `${a[0]} ? ${a[1]} : ${a[2]}`,
  // The accurate libdevice functions, not the __expf-style intrinsics: scores feed a softmax whose
  // reference is float64, and these run once per score at most.
  [Op.EXP]: call('expf'),
  [Op.LOG]: call('logf'),
  [Op.EXP2]: call('exp2f'),
  [Op.LOG2]: call('log2f'),
  [Op.SQRT]: call('sqrtf'),
  [Op.TANH]: (n, a, cx) => {
    if (cx.scoreMath !== 'fast') return call('tanhf')(n, a, cx);
    need(cx, 'tanh_approx');
    return `tanh_approx(${args(a)})`;
  },
  [Op.FLOOR]: call('floorf'),
  // Without fast-math (attnc never passes it) isfinite is exact.
  [Op.IS_FINITE]: call('isfinite'),
  [Op.CAST]: (n, a, cx) => {
    const from = n.src[0]?.dtype ?? n.dtype;
    if (from === n.dtype) return a[0]!;
    if (n.dtype === 'bool') return from === 'f32' ? `${a[0]} != 0.0f` : `${a[0]} != 0`;
    if (from === 'bool') return n.dtype === 'f32' ? `(${a[0]} ? 1.0f : 0.0f)` : `(${a[0]} ? 1 : 0)`;
    if (n.dtype === 'f32') return `(float)${a[0]}`;
    need(cx, 'f2i');
    return `f2i(${args(a)})`;
  },
};

/** A linearize.ts Renderer over the rule table. */
export function cudaRenderer(cx: CudaContext): Renderer {
  return {
    op: (n, args) => cudaRules[n.op](n, args, cx),
    type: (t) => cudaType[t],
    declare: (name, t, value) => `const ${cudaType[t]} ${name} = ${value};`,
  };
}

export function dimLabel(d: ShapeDim): string {
  return d.kind === 'literal' ? String(d.value) : d.name;
}
