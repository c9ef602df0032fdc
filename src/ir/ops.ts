// The op enum of the graph IR. One node type (see graph.ts) plus this table.
// Backends are tables of rules keyed by these ops (see codegen/*/rules.ts).

export const Op = {
  // Leaves.
  CONST: 'const', // arg: number | boolean
  VAR: 'var', // arg: VarName — index vars, tile bounds, sizes, the raw score
  PARAM: 'param', // arg: param name — a runtime scalar uniform
  LOAD: 'load', // arg: tensor name; src: one index per dim — out of range reads 0
  // Tile summaries (O(N) per-tile min/max of a tensor; see passes/analyze-tiles.ts).
  RANGE_MIN: 'range_min', // arg: tensor name; src: [lo, hi] — min of t[lo..hi] (1-D), OOB counts as 0
  RANGE_MAX: 'range_max', // arg: tensor name; src: [lo, hi]
  // Arithmetic (int or f32). DIV/MOD on ints are floor division / floor modulo, x/0 = x%0 = 0;
  // f32 MOD is floor modulo too: a - b * floor(a / b).
  ADD: 'add',
  SUB: 'sub',
  MUL: 'mul',
  DIV: 'div',
  MOD: 'mod',
  NEG: 'neg',
  MIN: 'min',
  MAX: 'max',
  ABS: 'abs',
  // Comparisons (→ bool).
  LT: 'lt',
  LE: 'le',
  GT: 'gt',
  GE: 'ge',
  EQ: 'eq',
  NE: 'ne',
  // Logic.
  AND: 'and',
  OR: 'or',
  NOT: 'not',
  SELECT: 'select', // src: [cond, a, b]
  // f32 math.
  EXP: 'exp',
  LOG: 'log',
  EXP2: 'exp2',
  LOG2: 'log2',
  SQRT: 'sqrt',
  TANH: 'tanh',
  FLOOR: 'floor',
  CAST: 'cast', // dtype is the target; int→f32 converts, f32→int truncates toward zero
  // f32 → bool: neither NaN nor ±inf. Not in the language; interval analysis guards with it, and
  // backends test the bits, since WGSL lets a compiler assume that no f32 is NaN or inf.
  IS_FINITE: 'is_finite',
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export type DType = 'i32' | 'f32' | 'bool';

/**
 * Variables a kernel provides. Per element: b h q k score. Per tile (for tile classification):
 * q_lo q_hi k_lo k_hi (inclusive position bounds of the tile). Sizes: B H Hkv Nq Nk D.
 */
export const varNames = [
  'b',
  'h',
  'q',
  'k',
  'score',
  'q_lo',
  'q_hi',
  'k_lo',
  'k_hi',
  'B',
  'H',
  'Hkv',
  'Nq',
  'Nk',
  'D',
] as const;
export type VarName = (typeof varNames)[number];

export const binaryArith: ReadonlySet<Op> = new Set([Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MOD, Op.MIN, Op.MAX]);
export const comparisons: ReadonlySet<Op> = new Set([Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE]);
export const unaryFloat: ReadonlySet<Op> = new Set([
  Op.EXP,
  Op.LOG,
  Op.EXP2,
  Op.LOG2,
  Op.SQRT,
  Op.TANH,
  Op.FLOOR,
]);
