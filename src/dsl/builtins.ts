// The language's predefined names, functions and operator typing, as data. The checker and the
// IR lowering both read these tables, so a new builtin is added in one place.
import type { BinaryOp, Expr, UnaryOp } from './ast.js';

export type ValueType = 'int' | 'f32' | 'bool';

export interface BuiltinVar {
  readonly type: ValueType;
  readonly doc: string;
  /** `score` exists only while forming the score (a `score` statement or a `let` it uses). */
  readonly onlyInScore?: boolean;
}

export interface BuiltinFunction {
  readonly arity: number;
  readonly doc: string;
  /** The result type for argument types of the right arity, or an error message. */
  result(args: readonly ValueType[]): ValueType | string;
}

// Prototype-less tables: `builtinVars['toString']` must be undefined, not Object's method.
function table<T>(entries: Record<string, T>): Readonly<Record<string, T>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
}

export const builtinVars: Readonly<Record<string, BuiltinVar>> = table<BuiltinVar>({
  b: { type: 'int', doc: 'batch index' },
  h: { type: 'int', doc: 'query head (its kv head is h / (H / Hkv))' },
  q: { type: 'int', doc: 'query position i + q_offset' },
  k: { type: 'int', doc: 'key position j + k_offset' },
  score: { type: 'f32', doc: 'scale · <q_i, k_j>', onlyInScore: true },
  causal: { type: 'bool', doc: 'q >= k' },
  B: { type: 'int', doc: 'batch size' },
  H: { type: 'int', doc: 'number of query heads' },
  Hkv: { type: 'int', doc: 'number of kv heads' },
  Nq: { type: 'int', doc: 'query length' },
  Nk: { type: 'int', doc: 'key length' },
  D: { type: 'int', doc: 'head dimension' },
});

export const isNumeric = (t: ValueType): boolean => t !== 'bool';

/** Numeric promotion: int op int is int, anything with f32 is f32; undefined if either is bool. */
export function promote(a: ValueType, b: ValueType): ValueType | undefined {
  if (!isNumeric(a) || !isNumeric(b)) return undefined;
  return a === 'f32' || b === 'f32' ? 'f32' : 'int';
}

function numericArgs(name: string, args: readonly ValueType[]): string | undefined {
  const bad = args.find((t) => !isNumeric(t));
  return bad === undefined ? undefined : `\`${name}\` takes numbers, found ${bad}`;
}

/** f32 → f32; int arguments are converted. */
const math = (name: string, doc: string): BuiltinFunction => ({
  arity: 1,
  doc,
  result: (args) => numericArgs(name, args) ?? 'f32',
});

/** int or f32; mixed arguments are promoted to f32. */
const poly = (name: string, arity: number, doc: string): BuiltinFunction => ({
  arity,
  doc,
  result: (args) =>
    numericArgs(name, args) ?? args.reduce<ValueType>((a, b) => promote(a, b) ?? 'f32', 'int'),
});

// `float` and `int` also accept their own type (a no-op) so generated code needs no special case.
export const builtinFunctions: Readonly<Record<string, BuiltinFunction>> = table<BuiltinFunction>({
  exp: math('exp', 'e^x'),
  log: math('log', 'natural logarithm'),
  exp2: math('exp2', '2^x'),
  log2: math('log2', 'base-2 logarithm'),
  sqrt: math('sqrt', 'square root'),
  tanh: math('tanh', 'hyperbolic tangent'),
  floor: math('floor', 'round down (result is f32)'),
  abs: poly('abs', 1, 'absolute value'),
  min: poly('min', 2, 'smaller of two numbers'),
  max: poly('max', 2, 'larger of two numbers'),
  clamp: poly('clamp', 3, 'clamp(x, lo, hi) = min(max(x, lo), hi)'),
  float: { arity: 1, doc: 'int → f32', result: (args) => numericArgs('float', args) ?? 'f32' },
  int: {
    arity: 1,
    doc: 'f32 → int, truncating toward zero',
    result: (args) => numericArgs('int', args) ?? 'int',
  },
});

/** What each binary operator takes. */
export const operandKind: Readonly<Record<BinaryOp, 'number' | 'bool'>> = {
  '+': 'number',
  '-': 'number',
  '*': 'number',
  '/': 'number',
  '%': 'number',
  '<': 'number',
  '<=': 'number',
  '>': 'number',
  '>=': 'number',
  '==': 'number',
  '!=': 'number',
  '&&': 'bool',
  '||': 'bool',
};

const isArithmetic = (op: BinaryOp): boolean =>
  op === '+' || op === '-' || op === '*' || op === '/' || op === '%';

/** Result type of `l op r`, or an error message. Comparisons compare promoted numbers. */
export function binaryResult(op: BinaryOp, l: ValueType, r: ValueType): ValueType | string {
  if (operandKind[op] === 'bool') {
    return l === 'bool' && r === 'bool' ? 'bool' : `\`${op}\` takes bools, found ${l} and ${r}`;
  }
  const t = promote(l, r);
  if (t === undefined) return `\`${op}\` takes numbers, found ${l} and ${r}`;
  return isArithmetic(op) ? t : 'bool';
}

export function unaryResult(op: UnaryOp, t: ValueType): ValueType | string {
  if (op === '!') return t === 'bool' ? 'bool' : `\`!\` takes a bool, found ${t}`;
  return isNumeric(t) ? t : `\`-\` takes a number, found ${t}`;
}

export type ConstValue = number | boolean;

/** Int semantics of the language: 32-bit wrap, floor division/modulo, x / 0 = x % 0 = 0. */
function intOp(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return (a + b) | 0;
    case '-':
      return (a - b) | 0;
    case '*':
      return Math.imul(a, b);
    case '/':
      return b === 0 ? 0 : Math.floor(a / b) | 0;
    case '%':
      return b === 0 ? 0 : (a - Math.floor(a / b) * b) | 0;
    default:
      return NaN;
  }
}

function f32Op(op: BinaryOp, a: number, b: number): number {
  const r =
    op === '+'
      ? a + b
      : op === '-'
        ? a - b
        : op === '*'
          ? a * b
          : op === '/'
            ? a / b
            : a - Math.fround(b * Math.floor(Math.fround(a / b)));
  return Math.fround(r);
}

/**
 * Folds `a op b` where both are constants already converted to `operandType` (the promoted
 * type for numbers). Used for parameter defaults; the IR's simplify pass can reuse it.
 */
export function foldBinary(op: BinaryOp, a: ConstValue, b: ConstValue, operandType: ValueType): ConstValue {
  if (op === '&&') return Boolean(a) && Boolean(b);
  if (op === '||') return Boolean(a) || Boolean(b);
  const x = Number(a);
  const y = Number(b);
  if (isComparison(op)) return compareNumbers(op, x, y);
  return operandType === 'int' ? intOp(op, x, y) : f32Op(op, x, y);
}

export type ComparisonOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export const isComparison = (op: string): op is ComparisonOp =>
  op === '<' || op === '<=' || op === '>' || op === '>=' || op === '==' || op === '!=';

/** `x op y` on numbers: the constant folder's and the runtime evaluators' comparisons. */
export function compareNumbers(op: ComparisonOp, x: number, y: number): boolean {
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    case '==':
      return x === y;
    case '!=':
      return x !== y;
  }
}

export function foldUnary(op: UnaryOp, a: ConstValue, type: ValueType): ConstValue {
  if (op === '!') return !a;
  return type === 'int' ? -Number(a) | 0 : Math.fround(-Number(a));
}

/**
 * Converts a constant to `to`: int → f32 rounds to the nearest f32; f32 → int truncates toward
 * zero and saturates at the int range (NaN → 0), as `int(x)` does.
 */
export function convertConst(v: ConstValue, to: ValueType): ConstValue {
  if (to === 'bool') return Boolean(v);
  const x = Number(v);
  if (to === 'f32') return Math.fround(x);
  return Number.isNaN(x) ? 0 : Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(x)));
}

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/**
 * The mathematically exact result of int `a op b` (before the 32-bit wrap), for the operators
 * that can leave the int range: + - * and `/` (only INT_MIN / -1). Products of two ints may not
 * be exact in a double, but are then far outside the range, which is all that matters here.
 */
function exactIntOp(op: BinaryOp, a: number, b: number): number | undefined {
  if (op === '+') return a + b;
  if (op === '-') return a - b;
  if (op === '*') return a * b;
  if (op === '/') return b === 0 ? 0 : Math.floor(a / b);
  return undefined;
}

/** Called with a constant int subexpression whose exact value is outside the int range. */
export type OnOverflow = (e: Expr, exact: number) => void;

const outside = (x: number): boolean => x < INT_MIN || x > INT_MAX;

/**
 * Evaluates a constant expression (literals and operators only) given each node's checked type;
 * `undefined` if it contains a name, call or lookup. Used for parameter defaults and counts.
 * Int arithmetic wraps at 32 bits, as at run time; `onOverflow` hears of every subexpression
 * that wrapped (a count or default that silently wrapped would be a wrong answer).
 */
export function foldConst(
  e: Expr,
  typeOf: (e: Expr) => ValueType | undefined,
  onOverflow?: OnOverflow,
): ConstValue | undefined {
  const t = typeOf(e) ?? 'int';
  const fold = (x: Expr): ConstValue | undefined => foldConst(x, typeOf, onOverflow);
  switch (e.kind) {
    case 'num':
      return e.isFloat ? Math.fround(e.value) : e.value;
    case 'bool':
      return e.value;
    case 'unary': {
      const a = fold(e.operand);
      if (a === undefined) return undefined;
      if (e.op === '-' && t === 'int' && outside(-Number(a))) onOverflow?.(e, -Number(a));
      return foldUnary(e.op, a, t);
    }
    case 'binary': {
      const ot = promote(typeOf(e.left) ?? 'int', typeOf(e.right) ?? 'int') ?? 'bool';
      const a = fold(e.left);
      const b = fold(e.right);
      if (a === undefined || b === undefined) return undefined;
      const [x, y] = [convertConst(a, ot), convertConst(b, ot)];
      const exact = ot === 'int' ? exactIntOp(e.op, Number(x), Number(y)) : undefined;
      if (exact !== undefined && outside(exact)) onOverflow?.(e, exact);
      return foldBinary(e.op, x, y, ot);
    }
    case 'ternary': {
      const c = fold(e.cond);
      const v = c === undefined ? undefined : fold(c ? e.then : e.otherwise);
      return v === undefined ? undefined : convertConst(v, t);
    }
    default:
      return undefined;
  }
}
