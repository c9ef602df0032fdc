// The WGSL rule table: one entry per graph-IR op, rendering WGSL text from operand text. Ops whose
// WGSL built-in differs from attnc semantics (int floor division, bounds-checked loads, tile
// summaries, saturating casts) render as calls to helper functions, and `helperSource` emits only
// the helpers that rendering actually used.
import { I32_MIN, f32DecimalText, rangeMaxBlocks } from '../common.js';
import type { Node } from '../../ir/graph.js';
import type { ParamSlot, ShapeDim, TensorSlot } from '../../ir/kernel.js';
import { Op, type DType, type VarName } from '../../ir/ops.js';
import type { Renderer } from '../linearize.js';

/** What rules need to know beyond the node: names of vars, params and tensors in the module. */
export interface WgslContext {
  /** WGSL text of each VAR (only the vars the surrounding code defines). */
  readonly vars: Partial<Readonly<Record<VarName, string>>>;
  readonly params: ReadonlyMap<string, ParamSlot>;
  readonly tensors: ReadonlyMap<string, TensorSlot>;
  /** Positions per block of the min/max summaries that RANGE_MIN/RANGE_MAX read. */
  readonly summaryBlock: number;
  /** Helpers referenced so far ('floor_div_i32', 'load:doc', 'range:doc', …); filled by rules. */
  readonly used: Set<string>;
}

export type Rule = (n: Node, a: readonly string[], cx: WgslContext) => string;

export const wgslType: Readonly<Record<DType, string>> = { i32: 'i32', f32: 'f32', bool: 'bool' };

export { rangeMaxBlocks } from '../common.js';

// Uniform field and module-variable names, shared with kernel.ts.
export const paramField = (name: string): string => `p_${name}`;
export const tensorVar = (name: string): string => `t_${name}`;
export const summaryVar = (name: string): string => `s_${name}`;

function need(cx: WgslContext, helper: string): void {
  cx.used.add(helper);
}

/** An f32 literal that round-trips to the same f32; non-finite values go through bitcast at run time. */
export function f32Literal(v: number, cx: WgslContext): string {
  const x = Math.fround(v);
  if (!Number.isFinite(x)) {
    // Constant-folding inf/NaN is a WGSL shader-creation error, so these come from a function call.
    need(cx, 'f32_bits');
    const bits = Number.isNaN(x) ? '0x7fc00000u' : x > 0 ? '0x7f800000u' : '0xff800000u';
    return `f32_bits(${bits})`;
  }
  if (Object.is(x, -0)) return '(-0.0f)';
  const s = f32DecimalText(v);
  return x < 0 ? `(${s}f)` : `${s}f`;
}

export function i32Literal(v: number): string {
  const x = v | 0;
  if (x === I32_MIN) return '(-2147483647i - 1i)';
  return x < 0 ? `(${x}i)` : `${x}i`;
}

/** WGSL text of a tensor dimension (an i32). */
export function dimText(d: ShapeDim): string {
  if (d.kind === 'literal') return i32Literal(d.value);
  if (d.kind === 'param') return `u.${paramField(d.name)}`;
  return `u.${d.name}`;
}

function tensorOf(n: Node, cx: WgslContext): TensorSlot {
  const t = cx.tensors.get(String(n.arg));
  if (!t) throw new Error(`WGSL: ${n.op} reads tensor "${String(n.arg)}", which the kernel does not declare`);
  return t;
}

const bin =
  (op: string): Rule =>
  (_n, a) =>
    `${a[0]} ${op} ${a[1]}`;
const call =
  (fn: string): Rule =>
  (_n, a) =>
    `${fn}(${a.join(', ')})`;
const isInt = (n: Node): boolean => n.dtype === 'i32';

export const wgslRules: Readonly<Record<Op, Rule>> = {
  [Op.CONST]: (n, _a, cx) => {
    if (n.dtype === 'bool') return n.arg ? 'true' : 'false';
    const v = typeof n.arg === 'boolean' ? Number(n.arg) : Number(n.arg);
    return n.dtype === 'i32' ? i32Literal(v) : f32Literal(v, cx);
  },
  [Op.VAR]: (n, _a, cx) => {
    const text = cx.vars[String(n.arg) as VarName];
    if (text === undefined) throw new Error(`WGSL: variable "${String(n.arg)}" is not available here`);
    return text;
  },
  [Op.PARAM]: (n, _a, cx) => {
    const p = cx.params.get(String(n.arg));
    if (!p) throw new Error(`WGSL: unknown param "${String(n.arg)}"`);
    // Bool params travel as u32 (WGSL uniforms cannot hold bool).
    return p.dtype === 'bool' ? `(u.${paramField(p.name)} != 0u)` : `u.${paramField(p.name)}`;
  },
  [Op.LOAD]: (n, a, cx) => {
    const t = tensorOf(n, cx);
    if (a.length !== t.dims.length) {
      throw new Error(`WGSL: tensor "${t.name}" has ${t.dims.length} dims but is indexed with ${a.length}`);
    }
    need(cx, `load:${t.name}`);
    return `load_${t.name}(${a.join(', ')})`;
  },
  [Op.RANGE_MIN]: (n, a, cx) => {
    need(cx, `range:${tensorOf(n, cx).name}`);
    return `range_${String(n.arg)}(${a[0]}, ${a[1]}).x`;
  },
  [Op.RANGE_MAX]: (n, a, cx) => {
    need(cx, `range:${tensorOf(n, cx).name}`);
    return `range_${String(n.arg)}(${a[0]}, ${a[1]}).y`;
  },
  [Op.ADD]: bin('+'),
  [Op.SUB]: bin('-'),
  [Op.MUL]: bin('*'),
  [Op.DIV]: (n, a, cx) => {
    if (!isInt(n)) return `${a[0]} / ${a[1]}`;
    need(cx, 'floor_div_i32');
    return `floor_div_i32(${a[0]}, ${a[1]})`;
  },
  [Op.MOD]: (n, a, cx) => {
    need(cx, isInt(n) ? 'floor_mod_i32' : 'floor_mod_f32');
    return `${isInt(n) ? 'floor_mod_i32' : 'floor_mod_f32'}(${a[0]}, ${a[1]})`;
  },
  [Op.NEG]: (_n, a) => `-${a[0]}`,
  [Op.MIN]: call('min'),
  [Op.MAX]: call('max'),
  [Op.ABS]: call('abs'),
  [Op.LT]: bin('<'),
  [Op.LE]: bin('<='),
  [Op.GT]: bin('>'),
  [Op.GE]: bin('>='),
  [Op.EQ]: bin('=='),
  [Op.NE]: bin('!='),
  [Op.AND]: bin('&&'),
  [Op.OR]: bin('||'),
  [Op.NOT]: (_n, a) => `!${a[0]}`,
  // WGSL's select is (false value, true value, condition).
  [Op.SELECT]: (_n, a) => `select(${a[2]}, ${a[1]}, ${a[0]})`,
  [Op.EXP]: call('exp'),
  [Op.LOG]: call('log'),
  [Op.EXP2]: call('exp2'),
  [Op.LOG2]: call('log2'),
  [Op.SQRT]: call('sqrt'),
  [Op.TANH]: (_n, a, cx) => {
    need(cx, 'tanh_f32');
    return `tanh_f32(${a[0]})`;
  },
  [Op.FLOOR]: call('floor'),
  [Op.IS_FINITE]: (_n, a, cx) => {
    need(cx, 'f32_is_finite');
    return `f32_is_finite(${a[0]})`;
  },
  [Op.CAST]: (n, a, cx) => {
    const from = n.src[0]?.dtype ?? n.dtype;
    if (from === n.dtype) return a[0]!;
    if (n.dtype === 'bool') return from === 'f32' ? `${a[0]} != 0.0f` : `${a[0]} != 0i`;
    if (from === 'bool') return n.dtype === 'f32' ? `select(0.0f, 1.0f, ${a[0]})` : `select(0i, 1i, ${a[0]})`;
    if (n.dtype === 'f32') return `f32(${a[0]})`;
    need(cx, 'f32_to_i32');
    return `f32_to_i32(${a[0]})`;
  },
};

/** A linearize.ts Renderer over the rule table. */
export function wgslRenderer(cx: WgslContext): Renderer {
  return {
    op: (n, args) => wgslRules[n.op](n, args, cx),
    type: (t) => wgslType[t],
    declare: (name, t, value) => `let ${name}: ${wgslType[t]} = ${value};`,
  };
}

const fixedHelpers: Readonly<Record<string, string>> = {
  f32_bits: `fn f32_bits(b: u32) -> f32 {
  return bitcast<f32>(b);
}`,
  // Floor division with x / 0 = 0. WGSL's own i32 '/' truncates and returns x for x / 0.
  floor_div_i32: `fn floor_div_i32(a: i32, b: i32) -> i32 {
  if (b == 0i) { return 0i; }
  if (b == -1i) { return -a; } // wraps for i32 min, like every other i32 overflow
  let t = a / b;
  if (t * b != a && ((a < 0i) != (b < 0i))) { return t - 1i; }
  return t;
}`,
  // Floor modulo (result has the divisor's sign) with x % 0 = 0.
  floor_mod_i32: `fn floor_mod_i32(a: i32, b: i32) -> i32 {
  if (b == 0i || b == -1i) { return 0i; }
  let r = a % b;
  if (r != 0i && ((r < 0i) != (b < 0i))) { return r + b; }
  return r;
}`,
  // Neither NaN nor ±inf, read off the exponent bits (a comparison could be folded away).
  f32_is_finite: `fn f32_is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}`,
  // tanh to f32 accuracy. Drivers' own tanh is often (e^2x - 1) / (e^2x + 1): all relative
  // precision is lost near 0 (softcap with a large cap: score / cap is small) and it overflows to
  // NaN for |x| >~ 44. Near 0 a Taylor polynomial (next term < 1e-11 relative at 0.125); beyond,
  // (1 - e) / (1 + e) with e = exp(-2|x|) <= 0.78; tanh(15) rounds to 1. NaN is found in the bits.
  tanh_f32: `fn tanh_f32(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  let a = min(abs(x), 15.0f);
  var t: f32;
  if (a < 0.125f) {
    let s = a * a;
    t = a * (1.0f + s * (-0.33333334f + s * (0.13333334f + s * (-0.053968254f + s * 0.021869488f))));
  } else {
    let e = exp(-2.0f * a);
    t = (1.0f - e) / (1.0f + e);
  }
  return select(t, -t, x < 0.0f);
}`,
  floor_mod_f32: `fn floor_mod_f32(a: f32, b: f32) -> f32 {
  return a - b * floor(a / b);
}`,
  // Truncation toward zero, saturating at the i32 range (docs/LANGUAGE.md: every f32 >= 2^31,
  // +inf included, gives 2147483647; WGSL's own i32() saturates at 2147483520, the largest f32
  // below 2^31); NaN converts to 0. NaN is found in the bits: WGSL lets a compiler assume no NaN
  // and fold x != x to false (lavapipe does).
  f32_to_i32: `fn f32_to_i32(x: f32) -> i32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return 0i; }
  if (x >= 2147483648.0f) { return 2147483647i; }
  return i32(max(x, -2147483648.0f));
}`,
};

function loadHelper(t: TensorSlot): string {
  const ty = wgslType[t.dtype];
  const params = t.dims.map((_, i) => `i${i}: i32`).join(', ');
  const dims = t.dims.map((d, i) => `  let d${i} = ${dimText(d)};`);
  const oob = t.dims.map((_, i) => `i${i} < 0i || i${i} >= d${i}`).join(' || ');
  let idx = 'u32(i0)';
  for (let i = 1; i < t.dims.length; i++) idx = `(${idx}) * u32(d${i}) + u32(i${i})`;
  if (t.dims.length === 1) idx = 'u32(i0)';
  return [
    `// ${t.name}: ${t.dtype}[${t.dims.map(dimLabel).join(', ')}], row-major; indices out of range read 0.`,
    `fn load_${t.name}(${params}) -> ${ty} {`,
    ...dims,
    `  if (${oob}) { return ${ty}(0); }`,
    `  return ${tensorVar(t.name)}[${idx}];`,
    `}`,
  ].join('\n');
}

export function dimLabel(d: ShapeDim): string {
  return d.kind === 'literal' ? String(d.value) : d.name;
}

function rangeHelper(t: TensorSlot, block: number): string {
  const ty = wgslType[t.dtype];
  const [lowest, highest] = t.dtype === 'i32' ? ['I32_MIN', 'I32_MAX'] : ['-F32_MAX', 'F32_MAX'];
  const s = summaryVar(t.name);
  return [
    `// (min, max) of ${t.name}[lo..hi] from its per-block summary (${block} positions a block). Blocks`,
    `// are whole, so the result may be wider than exact: sound for tile classification. Positions`,
    `// outside [0, len) read 0; spans over ${rangeMaxBlocks} blocks give the full ${ty} range.`,
    `fn range_${t.name}(lo: i32, hi: i32) -> vec2<${ty}> {`,
    `  let len = ${dimText(t.dims[0]!)};`,
    `  var r = vec2<${ty}>(${highest}, ${lowest});`,
    `  if (hi < lo) { return r; }`,
    `  if (lo < 0i || hi >= len) { r = vec2<${ty}>(${ty}(0), ${ty}(0)); }`,
    `  let first = max(lo, 0i) / ${block}i;`,
    `  let last = min(hi, len - 1i) / ${block}i;`,
    `  if (max(lo, 0i) > min(hi, len - 1i)) { return r; }`,
    `  if (last - first >= ${rangeMaxBlocks}i) { return vec2<${ty}>(${lowest}, ${highest}); }`,
    `  for (var blk = first; blk <= last; blk++) {`,
    `    r = vec2<${ty}>(min(r.x, ${s}[2 * blk]), max(r.y, ${s}[2 * blk + 1]));`,
    `  }`,
    `  return r;`,
    `}`,
  ].join('\n');
}

/** Source of every helper in `cx.used`, in a stable order. */
export function helperSource(cx: WgslContext): string {
  const out: string[] = [];
  for (const [name, src] of Object.entries(fixedHelpers)) if (cx.used.has(name)) out.push(src);
  for (const t of [...cx.tensors.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (cx.used.has(`load:${t.name}`)) out.push(loadHelper(t));
    if (cx.used.has(`range:${t.name}`)) out.push(rangeHelper(t, cx.summaryBlock));
  }
  return out.join('\n\n');
}
