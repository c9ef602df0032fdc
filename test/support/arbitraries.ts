// fast-check arbitraries for property tests: random attention programs (as ASTs that print to
// valid .attn source), shapes and inputs. Expression generators are built bottom-up per depth
// with the simplest alternative first and cross-shrinking on, so a failing program shrinks
// toward `mask true` / `mask causal` / `score score`.
import fc from 'fast-check';
import { noSpan } from '../../src/diagnostics.js';
import type { AttentionDecl, BinaryOp, Expr, ParamDecl, Stmt } from '../../src/dsl/ast.js';
import { rng } from '../../src/runtime/inputs.js';

// ---- AST builders (dummy spans) ----

const sp = noSpan;
export const ast = {
  /** Non-negative literal; negative values become unary minus so print → parse round-trips. */
  int: (value: number): Expr =>
    value < 0 ? ast.neg(ast.int(-value)) : { kind: 'num', value, isFloat: false, span: sp },
  f32: (value: number): Expr =>
    value < 0 ? ast.neg(ast.f32(-value)) : { kind: 'num', value, isFloat: true, span: sp },
  bool: (value: boolean): Expr => ({ kind: 'bool', value, span: sp }),
  name: (name: string): Expr => ({ kind: 'name', name, span: sp }),
  neg: (operand: Expr): Expr => ({ kind: 'unary', op: '-', operand, span: sp }),
  not: (operand: Expr): Expr => ({ kind: 'unary', op: '!', operand, span: sp }),
  bin: (op: BinaryOp, left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right, span: sp }),
  tern: (cond: Expr, then: Expr, otherwise: Expr): Expr => ({
    kind: 'ternary',
    cond,
    then,
    otherwise,
    span: sp,
  }),
  call: (callee: string, ...args: Expr[]): Expr => ({ kind: 'call', callee, calleeSpan: sp, args, span: sp }),
  index: (tensor: string, ...indices: Expr[]): Expr => ({
    kind: 'index',
    tensor,
    tensorSpan: sp,
    indices,
    span: sp,
  }),
  mask: (expr: Expr): Stmt => ({ kind: 'mask', expr, span: sp }),
  score: (expr: Expr): Stmt => ({ kind: 'score', expr, span: sp }),
  let: (name: string, expr: Expr): Stmt => ({ kind: 'let', name, nameSpan: sp, expr, span: sp }),
  scalarParam: (name: string, type: 'int' | 'f32' | 'bool', def?: Expr): ParamDecl => ({
    name,
    nameSpan: sp,
    type: { kind: 'scalar', name: type, span: sp },
    ...(def ? { default: def } : {}),
    span: sp,
  }),
  tensorParam: (name: string, elem: 'i32' | 'f32', dim: 'kv' | 'heads'): ParamDecl => ({
    name,
    nameSpan: sp,
    type: { kind: 'tensor', elem, dims: [{ kind: 'size', name: dim, span: sp }], span: sp },
    span: sp,
  }),
  decl: (name: string, params: ParamDecl[], body: Stmt[]): AttentionDecl => ({
    kind: 'attention',
    name,
    nameSpan: sp,
    params,
    body,
    doc: '',
    span: sp,
  }),
};

// ---- expression arbitraries ----

/** `store` statements the checker accepts, one of each K/V format family (docs/LANGUAGE.md). */
export const STORE_STATEMENTS: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 32 zero f16',
  'store v int2 scale f16 per token group 16 zero f16 recent 16 f16',
  'store k e4m3 scale f32 per tensor',
  'store v e5m2',
  'store kv int4 scale f16 per token zero f16 norm f16',
];

export type TensorName = 'doc' | 'keep' | 'slopes' | 'table' | 'flags';

export interface ExprCtx {
  /** Int params and int lets in scope. */
  readonly intNames: readonly string[];
  /** f32 params in scope; divisors only through max(p, 1.0), so any value is safe. */
  readonly f32Names: readonly string[];
  readonly tensors: readonly TensorName[];
  /**
   * Wrap-prone int arithmetic: constants near ±2^31, products with large factors and of two
   * variables, divisions by −1 — so sums and products wrap at 32 bits somewhere in a tile.
   */
  readonly wrap?: boolean;
  /** Bool params in scope (mask leaves). */
  readonly boolNames?: readonly string[];
  /** Draw `int(float(x) * 0.5)`: an int → f32 → int round trip the tile classifier must bound. */
  readonly conversions?: boolean;
}

type Arb = fc.Arbitrary<Expr>;
const shrinky = { withCrossShrink: true };
const oneof = (...arbs: Arb[]): Arb => fc.oneof(shrinky, ...arbs);
const q = ast.name('q');
const k = ast.name('k');

const I32_MAX = 2147483647;

/**
 * An int within `spread` of ±2^31 (never the literal 2^31 itself, which is no int): printed as a
 * literal, or as `MAX - c` / `-MAX - c` so the checker sees only in-range literals.
 */
export function arbNearLimit(spread = 4096): fc.Arbitrary<number> {
  return fc
    .tuple(fc.boolean(), fc.integer({ min: 0, max: spread }))
    .map(([top, d]) => (top ? I32_MAX - d : -I32_MAX + d));
}

/** A large factor: products of positions with it wrap. */
const bigFactor = fc.oneof(
  fc.integer({ min: 1 << 16, max: 1 << 30 }),
  fc.integer({ min: -(1 << 30), max: -(1 << 16) }),
  fc.constantFrom(46341, -46341, 65536, I32_MAX),
);

/** Leaves favour q and k: masks that do not relate them tend to be all-true or all-false. */
function intLeaf(ctx: ExprCtx): Arb {
  const others = ['h', 'b', ...ctx.intNames].map(ast.name);
  return fc.oneof(
    shrinky,
    { weight: 4, arbitrary: fc.constantFrom(q, k) },
    { weight: 2, arbitrary: fc.integer({ min: -8, max: 64 }).map(ast.int) },
    { weight: 1, arbitrary: fc.constantFrom(...others) },
    ...(ctx.wrap ? [{ weight: 2, arbitrary: arbNearLimit().map(ast.int) }] : []),
  );
}

/** A divisor: a nonzero constant of either sign, occasionally a param (0 is fine: x / 0 = 0). */
function divisor(ctx: ExprCtx): Arb {
  const small = fc.integer({ min: -8, max: 8 }).map((n) => ast.int(n === 0 ? 2 : n));
  // −1 (MIN / −1 wraps) and divisors near the limits (quotients 0, ±1) when wrap-prone.
  const c = ctx.wrap ? oneof(small, fc.constant(ast.int(-1)), arbNearLimit().map(ast.int)) : small;
  return ctx.intNames.length === 0
    ? c
    : fc.oneof(
        shrinky,
        { weight: 4, arbitrary: c },
        { weight: 1, arbitrary: fc.constantFrom(...ctx.intNames.map(ast.name)) },
      );
}

const cmpOps: BinaryOp[] = ['<', '<=', '>', '>=', '==', '!='];

/** Recognisable mask shapes (window, dilation, block-causal, sinks) so masks are not all noise. */
function patternMask(ctx: ExprCtx): Arb {
  const n = fc.integer({ min: 1, max: 48 }).map(ast.int);
  const bound = ctx.intNames.length === 0 ? n : oneof(n, fc.constantFrom(...ctx.intNames.map(ast.name)));
  const qk = ast.bin('-', q, k);
  const pats: Arb[] = [
    fc.constant(ast.name('causal')),
    fc.tuple(fc.constantFrom(...cmpOps), bound).map(([op, w]) => ast.bin(op, qk, w)),
    fc
      .tuple(divisor(ctx), fc.integer({ min: 0, max: 3 }))
      .map(([d, r]) => ast.bin('==', ast.bin('%', qk, d), ast.int(r))),
    divisor(ctx).map((d) => ast.bin('>=', ast.bin('/', q, d), ast.bin('/', k, d))),
    bound.map((w) => ast.bin('<', k, w)),
  ];
  if (ctx.tensors.includes('doc'))
    pats.push(fc.constant(ast.bin('==', ast.index('doc', q), ast.index('doc', k))));
  if (ctx.tensors.includes('keep')) pats.push(fc.constant(ast.bin('!=', ast.index('keep', k), ast.int(0))));
  // A 2-D tensor indexed by batch and key position.
  if (ctx.tensors.includes('flags'))
    pats.push(fc.constant(ast.bin('!=', ast.index('flags', ast.name('b'), k), ast.int(0))));
  if (ctx.boolNames?.length) pats.push(fc.constantFrom(...ctx.boolNames.map(ast.name)));
  return fc.oneof(
    shrinky,
    { weight: 1, arbitrary: fc.constant(ast.bool(true)) },
    ...pats.map((arbitrary) => ({ weight: 3, arbitrary })),
    { weight: 1, arbitrary: fc.constant(ast.bool(false)) },
  );
}

function intExprs(ctx: ExprCtx, depth: number): { ints: Arb[]; bools: Arb[] } {
  const ints: Arb[] = [intLeaf(ctx)];
  const bools: Arb[] = [patternMask(ctx)];
  for (let d = 1; d <= depth; d++) {
    const i = ints[d - 1] as Arb;
    const bo = bools[d - 1] as Arb;
    const small = fc.integer({ min: -3, max: 3 }).map(ast.int);
    const intAlts: Arb[] = [
      ints[0] as Arb,
      fc.tuple(fc.constantFrom<BinaryOp>('+', '-'), i, i).map(([op, l, r]) => ast.bin(op, l, r)),
      fc.tuple(i, small).map(([l, r]) => ast.bin('*', l, r)),
      ...(ctx.wrap
        ? [
            fc.tuple(i, bigFactor).map(([l, r]) => ast.bin('*', l, ast.int(r))),
            fc.tuple(i, i).map(([l, r]) => ast.bin('*', l, r)),
            i.map(ast.neg),
          ]
        : []),
      fc.tuple(fc.constantFrom<BinaryOp>('/', '%'), i, divisor(ctx)).map(([op, l, r]) => ast.bin(op, l, r)),
      fc.tuple(fc.constantFrom('min', 'max'), i, i).map(([f, a, b]) => ast.call(f, a, b)),
      i.map((a) => ast.call('abs', a)),
      fc
        .tuple(i, fc.integer({ min: -8, max: 16 }), fc.integer({ min: 0, max: 64 }))
        .map(([x, lo, w]) => ast.call('clamp', x, ast.int(lo), ast.int(lo + w))),
      fc.tuple(bo, i, i).map(([c, a, b]) => ast.tern(c, a, b)),
    ];
    if (ctx.tensors.includes('doc')) intAlts.push(i.map((x) => ast.index('doc', x)));
    // Exact in f32 for |x| < 2^24; int() truncates toward zero, so negatives round up.
    if (ctx.conversions)
      intAlts.push(i.map((x) => ast.call('int', ast.bin('*', ast.call('float', x), ast.f32(0.5)))));
    ints.push(oneof(...intAlts));
    bools.push(
      oneof(
        bools[0] as Arb,
        fc.tuple(fc.constantFrom(...cmpOps), i, i).map(([op, l, r]) => ast.bin(op, l, r)),
        fc.tuple(fc.constantFrom<BinaryOp>('&&', '||'), bo, bo).map(([op, l, r]) => ast.bin(op, l, r)),
        bo.map(ast.not),
        fc.tuple(bo, bo, bo).map(([c, a, b]) => ast.tern(c, a, b)),
      ),
    );
  }
  return { ints, bools };
}

/** A bool mask expression over q k b h, int params and the context's tensors. */
export function arbMaskExpr(ctx: ExprCtx, depth = 3): Arb {
  return intExprs(ctx, depth).bools[depth] as Arb;
}

/** An int expression (index arithmetic), for lets and tests. */
export function arbIntExpr(ctx: ExprCtx, depth = 2): Arb {
  return intExprs(ctx, depth).ints[depth] as Arb;
}

/** Position terms of a score: float(q) / 128 and the like. */
function positionLeaves(): Arb[] {
  return [
    fc
      .tuple(fc.constantFrom('q', 'k', 'h'), fc.constantFrom(1 / 128, 1 / 32, 1 / 4))
      .map(([n, s]) => ast.bin('*', ast.call('float', ast.name(n)), ast.f32(s))),
    fc
      .constantFrom(1 / 128, 1 / 32)
      .map((s) => ast.bin('*', ast.call('float', ast.bin('-', k, q)), ast.f32(s))),
  ];
}

/**
 * Position terms near ±2^31: float(q) / 128 would be ~1.7e7 there and swamp the score (one f32
 * rounding of it apart, kernel and reference would disagree), so the wrap-prone int expression is
 * reduced mod 64 first: float((q + c) % 64) / 32 with c near the limits, and the like.
 */
function wrappedPositionLeaves(): Arb[] {
  const wrapped = fc.oneof(
    fc.constantFrom(q, k, ast.bin('-', k, q)),
    arbNearLimit().map((c) => ast.bin('+', q, ast.int(c))),
    bigFactor.map((c) => ast.bin('*', k, ast.int(c))),
  );
  return [
    fc
      .tuple(wrapped, fc.constantFrom(1 / 32, 1 / 4))
      .map(([x, s]) => ast.bin('*', ast.call('float', ast.bin('%', x, ast.int(64))), ast.f32(s))),
  ];
}

/**
 * An f32 score expression. Intermediates stay small (|x| ≲ 100): exp only of min(x, 2.0), divisors
 * are positive, position terms are scaled down — so f32 rounding stays far below test tolerances.
 */
export function arbScoreExpr(ctx: ExprCtx, depth = 3): Arb {
  const score = ast.name('score');
  const c = fc.integer({ min: -16, max: 16 }).map((n) => ast.f32(n / 4));
  const posC = fc.integer({ min: 1, max: 64 }).map((n) => ast.f32(n / 2));
  const leaves: Arb[] = [
    fc.constant(score),
    c,
    ...(ctx.wrap ? wrappedPositionLeaves() : positionLeaves()),
    ...ctx.f32Names.map((n) => fc.constant(ast.name(n))),
  ];
  if (ctx.tensors.includes('slopes')) {
    // ALiBi; near the limits k - q can be ~2^31, so it is reduced mod 64 there too.
    const slope = ast.index('slopes', ast.name('h'));
    const distance = ctx.wrap ? ast.bin('%', ast.bin('-', k, q), ast.int(64)) : ast.bin('-', k, q);
    leaves.push(fc.constant(ast.bin('*', slope, ast.call('float', distance))));
  }
  // A relative-position bias table (2-D: head × clamped distance).
  if (ctx.tensors.includes('table'))
    leaves.push(
      fc.constant(
        ast.index(
          'table',
          ast.name('h'),
          ast.call('clamp', ast.bin('-', k, q), ast.int(0), ast.int(TABLE_WIDTH - 1)),
        ),
      ),
    );
  const positive: Arb = ctx.f32Names.length
    ? oneof(
        posC,
        fc.constantFrom(...ctx.f32Names).map((n) => ast.call('max', ast.name(n), ast.f32(1))),
      )
    : posC;
  const levels: Arb[] = [oneof(...leaves)];
  const mask = arbMaskExpr({ ...ctx, f32Names: [] }, 1);
  for (let d = 1; d <= depth; d++) {
    const x = levels[d - 1] as Arb;
    levels.push(
      oneof(
        levels[0] as Arb,
        fc.tuple(fc.constantFrom<BinaryOp>('+', '-'), x, x).map(([op, l, r]) => ast.bin(op, l, r)),
        fc.tuple(x, c).map(([l, r]) => ast.bin('*', l, r)),
        fc.tuple(x, positive).map(([l, p]) => ast.bin('*', p, ast.call('tanh', ast.bin('/', l, p)))),
        x.map((a) => ast.call('exp', ast.call('min', a, ast.f32(2)))),
        x.map((a) => ast.call('log', ast.bin('+', ast.call('abs', a), ast.f32(1)))),
        // sqrt(|a| + 1/4), not sqrt(|a|): near 0 the slope of sqrt is unbounded, so f32 rounding in a
        // (e.g. log(|x| + 1) for tiny x) would be amplified past any fixed tolerance.
        x.map((a) => ast.call('sqrt', ast.bin('+', ast.call('abs', a), ast.f32(0.25)))),
        fc.tuple(fc.constantFrom('min', 'max'), x, x).map(([f, a, b]) => ast.call(f, a, b)),
        fc.tuple(x, posC).map(([a, p]) => ast.call('clamp', a, ast.neg(p), p)),
        x.map(ast.neg),
        fc.tuple(mask, x, x).map(([m, a, b]) => ast.tern(m, a, b)),
      ),
    );
  }
  return levels[depth] as Arb;
}

// ---- programs ----

/** Columns of the `table: f32[heads, 16]` bias table (a literal dim). */
const TABLE_WIDTH = 16;

const tensorDecls: Record<TensorName, ParamDecl> = {
  doc: ast.tensorParam('doc', 'i32', 'kv'),
  keep: ast.tensorParam('keep', 'i32', 'kv'),
  slopes: ast.tensorParam('slopes', 'f32', 'heads'),
  table: {
    name: 'table',
    nameSpan: sp,
    type: {
      kind: 'tensor',
      elem: 'f32',
      dims: [
        { kind: 'size', name: 'heads', span: sp },
        { kind: 'literal', value: TABLE_WIDTH, span: sp },
      ],
      span: sp,
    },
    span: sp,
  },
  flags: {
    name: 'flags',
    nameSpan: sp,
    type: {
      kind: 'tensor',
      elem: 'i32',
      dims: [
        { kind: 'size', name: 'batch', span: sp },
        { kind: 'size', name: 'kv', span: sp },
      ],
      span: sp,
    },
    span: sp,
  },
};

/**
 * A random declaration: int params `w0 w1` (defaults −2..48), maybe an f32 param `c0` (positive
 * default), maybe tensors `doc: i32[kv]`, `keep: i32[kv]`, `slopes: f32[heads]`, maybe a
 * `let d0 = …`, one or two masks and maybe a score. `extended` adds the axes the campaign
 * (scripts/fuzz-campaign.mjs) found CI never drew: a bool param `on` (a mask leaf), the 2-D
 * tensors `table: f32[heads, 16]` (a bias by clamped distance) and `flags: i32[batch, kv]`, an
 * f32 `let f0` (a score leaf) and `int(float(x) * 0.5)` round trips in index arithmetic.
 */
export function arbProgram(
  opts: { depth?: number; wrap?: boolean; extended?: boolean } = {},
): fc.Arbitrary<AttentionDecl> {
  const depth = opts.depth ?? 3;
  const wrap = opts.wrap ?? false;
  const ext = opts.extended === true;
  const header = fc.record({
    ints: fc.array(
      wrap ? fc.oneof(fc.integer({ min: -2, max: 48 }), arbNearLimit()) : fc.integer({ min: -2, max: 48 }),
      {
        maxLength: 2,
      },
    ),
    f32: fc.option(fc.integer({ min: 1, max: 64 }), { nil: undefined }),
    doc: fc.boolean(),
    keep: fc.boolean(),
    slopes: fc.boolean(),
    useLet: fc.boolean(),
    // The extended axes (constant when off, so the draws of the others keep their shape).
    on: ext ? fc.option(fc.boolean(), { nil: undefined }) : fc.constant(undefined),
    table: ext ? fc.boolean() : fc.constant(false),
    flags: ext ? fc.boolean() : fc.constant(false),
    f32Let: ext ? fc.boolean() : fc.constant(false),
  });
  return header.chain((hd) => {
    const params: ParamDecl[] = hd.ints.map((v, i) => ast.scalarParam(`w${i}`, 'int', ast.int(v)));
    if (hd.f32 !== undefined) params.push(ast.scalarParam('c0', 'f32', ast.f32(hd.f32 / 4)));
    if (hd.on !== undefined) params.push(ast.scalarParam('on', 'bool', ast.bool(hd.on)));
    const tensors = (['doc', 'keep', 'slopes', 'table', 'flags'] as const).filter((t) => hd[t]);
    params.push(...tensors.map((t) => tensorDecls[t]));
    const boolNames = hd.on !== undefined ? ['on'] : [];
    const conversions = ext && !wrap;
    const base: ExprCtx = {
      intNames: params.slice(0, hd.ints.length).map((p) => p.name),
      f32Names: [],
      tensors,
      wrap,
      boolNames,
      conversions,
    };
    const ctx: ExprCtx = {
      intNames: hd.useLet ? [...base.intNames, 'd0'] : base.intNames,
      f32Names: [...(hd.f32 !== undefined ? ['c0'] : []), ...(hd.f32Let ? ['f0'] : [])],
      tensors,
      wrap,
      boolNames,
      conversions,
    };
    // f0 in [0, 15/16]: a per-key f32 value, exact in f32.
    const f32Let = hd.f32Let
      ? [ast.let('f0', ast.bin('*', ast.call('float', ast.bin('%', k, ast.int(16))), ast.f32(0.0625)))]
      : [];
    return fc
      .record({
        let: hd.useLet ? arbIntExpr(base, 2).map((e) => [ast.let('d0', e)]) : fc.constant([]),
        masks: fc.oneof(
          shrinky,
          { weight: 3, arbitrary: fc.tuple(arbMaskExpr(ctx, depth)) },
          { weight: 1, arbitrary: fc.tuple(arbMaskExpr(ctx, depth), arbMaskExpr(ctx, depth)) },
        ),
        score: fc.option(arbScoreExpr(ctx, depth), { nil: undefined }),
      })
      .map((b) => {
        const body: Stmt[] = [...f32Let, ...b.let];
        if (b.score) body.push(ast.score(b.score));
        body.push(...b.masks.map(ast.mask));
        return ast.decl('prop', params, body);
      });
  });
}

// ---- shapes and inputs ----

export interface Shape {
  B: number;
  Hq: number;
  Hkv: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  /** Undefined means the default (Nk − Nq for q, 0 for k). */
  qOffset?: number | undefined;
  kOffset?: number | undefined;
}

/** `undefined` (the default offset) three times in four; shrinks toward it. */
function mostlyDefault(arb: fc.Arbitrary<number>): fc.Arbitrary<number | undefined> {
  return fc.oneof(shrinky, { weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

/**
 * Offsets that put positions at the ends of int32 — every position still inside it, and every
 * difference q − k too (the span the runtime accepts): queries at the top with keys at the top or
 * at 0.., or both at the bottom.
 */
function nearLimitOffsets(Nq: number, Nk: number): fc.Arbitrary<{ qOffset: number; kOffset: number }> {
  const top = (n: number, s: number): number => I32_MAX - n + 1 - s;
  const bottom = (s: number): number => -I32_MAX - 1 + s;
  const slack = fc.integer({ min: 0, max: 40 });
  return fc.oneof(
    fc.tuple(slack, slack).map(([a, b]) => ({ qOffset: top(Nq, a), kOffset: top(Nk, b) })),
    fc.tuple(slack, fc.integer({ min: 0, max: 64 })).map(([a, k]) => ({ qOffset: top(Nq, a), kOffset: k })),
    fc.tuple(slack, slack).map(([a, b]) => ({ qOffset: bottom(a), kOffset: bottom(b) })),
  );
}

/** Shapes that are not tile multiples, GQA ratios 1–4, odd head dims, Nq ≠ Nk both ways, optional offsets. */
export function arbShape(opts: { maxN?: number; nearLimits?: boolean } = {}): fc.Arbitrary<Shape> {
  const maxN = opts.maxN ?? 200;
  if (opts.nearLimits)
    return arbShape({ maxN }).chain((s) => nearLimitOffsets(s.Nq, s.Nk).map((o): Shape => ({ ...s, ...o })));
  return fc
    .record({
      B: fc.integer({ min: 1, max: 2 }),
      Hkv: fc.integer({ min: 1, max: 2 }),
      ratio: fc.integer({ min: 1, max: 4 }),
      Nq: fc.integer({ min: 1, max: maxN }),
      Nk: fc.integer({ min: 1, max: maxN }),
      // Odd and non-power-of-two head dims too: the compiler takes any positive D (WGSL pads
      // vec4 columns, CUDA fits a schedule or says why), and a column tail is where a D = 5 hides.
      D: fc.constantFrom(5, 8, 16, 20, 32, 64),
      Dv: fc.option(fc.constantFrom(3, 8, 24, 40), { nil: undefined }),
      qOffset: mostlyDefault(fc.integer({ min: -16, max: 2 * maxN })),
      kOffset: mostlyDefault(fc.integer({ min: 0, max: 64 })),
    })
    .map(({ ratio, Dv, ...s }) => ({ ...s, Hq: s.Hkv * ratio, Dv: Dv ?? s.D }));
}

export interface TensorValue {
  data: Int32Array | Float32Array;
  shape: number[];
}

export interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Buffers for every tensor arbProgram may declare (a program uses a subset). */
  tensors: Record<TensorName, TensorValue>;
}

/**
 * Deterministic inputs. q/k/v are multiples of 1/128 in [−1, 1] (exact in bf16/f16) times
 * `magnitude` (a power of two keeps that exactness; 32 gives scores large enough to overflow a
 * naive exp). Doc ids are sorted segment ids; keep and flags ~75% ones; slopes ALiBi-like / 16;
 * table entries multiples of 1/64 in [−1/2, 1/2].
 */
export function makeInputs(shape: Shape, seed: number, opts: { magnitude?: number } = {}): Inputs {
  const r = rng(seed);
  const mag = opts.magnitude ?? 1;
  const { B, Hq, Hkv, Nq, Nk, D, Dv } = shape;
  const fill = (n: number): Float32Array =>
    Float32Array.from({ length: n }, () => ((Math.floor(r() * 257) - 128) / 128) * mag);
  const segment = 1 + Math.floor(r() * Math.max(1, Nk / 2));
  const doc = new Int32Array(Nk);
  for (let j = 1; j < Nk; j++) doc[j] = (doc[j - 1] as number) + (r() < 1 / segment ? 1 : 0);
  const keep = Int32Array.from({ length: Nk }, () => (r() < 0.75 ? 1 : 0));
  const slopes = Float32Array.from({ length: Hq }, (_, h) => 2 ** ((-8 * (h + 1)) / Hq) / 16);
  const q = fill(B * Hq * Nq * D);
  const k = fill(B * Hkv * Nk * D);
  const v = fill(B * Hkv * Nk * Dv);
  // Drawn after q/k/v, so those stay what they were before the 2-D tensors existed.
  const table = Float32Array.from({ length: Hq * TABLE_WIDTH }, () => (Math.floor(r() * 65) - 32) / 64);
  const flags = Int32Array.from({ length: B * Nk }, () => (r() < 0.75 ? 1 : 0));
  return {
    q,
    k,
    v,
    tensors: {
      doc: { data: doc, shape: [Nk] },
      keep: { data: keep, shape: [Nk] },
      slopes: { data: slopes, shape: [Hq] },
      table: { data: table, shape: [Hq, TABLE_WIDTH] },
      flags: { data: flags, shape: [B, Nk] },
    },
  };
}

/** Inputs for `shape` from a drawn seed; with `large`, one draw in four uses magnitude 32. */
export function arbInputs(shape: Shape, opts: { large?: boolean } = {}): fc.Arbitrary<Inputs> {
  const mag = opts.large ? fc.constantFrom(1, 1, 1, 32) : fc.constant(1);
  return fc.tuple(fc.integer(), mag).map(([seed, magnitude]) => makeInputs(shape, seed, { magnitude }));
}
