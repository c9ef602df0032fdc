// The dense reference every kernel is checked against (DESIGN §2). Deliberately naive: float64,
// an explicit N×N mask, a two-pass softmax per row. It shares no code with src/ir or codegen, so
// a bug in the compiler cannot hide by being reproduced here.

export interface RefInputs {
  /** [B, Hq, Nq, D], row-major, contiguous. */
  q: ArrayLike<number>;
  /** [B, Hkv, Nk, D]. */
  k: ArrayLike<number>;
  /** [B, Hkv, Nk, Dv]. */
  v: ArrayLike<number>;
  B: number;
  Hq: number;
  Hkv: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  /** Position of query row 0; default Nk − Nq (bottom-right aligned). */
  qOffset?: number;
  /** Position of key row 0; default 0. */
  kOffset?: number;
  /** Score scale; default 1/sqrt(D). Rounded to f32 either way, as kernels receive it. */
  scale?: number;
}

export interface RefPredicates {
  /** Whether query position `q` may see key position `k` (positions, not row indices). */
  mask?: (b: number, h: number, q: number, k: number) => boolean;
  /** Maps the scaled score `s` to the final score; evaluated only for pairs the mask allows. */
  score?: (s: number, b: number, h: number, q: number, k: number) => number;
}

export interface RefResult {
  /** [B, Hq, Nq, Dv]; a row with a NaN or +Infinity score is NaN (docs/LANGUAGE.md "Non-finite values"). */
  out: Float64Array;
  /** [B, Hq, Nq], natural log; −Infinity for rows with no allowed key, NaN for a poisoned row. */
  lse: Float64Array;
  /** [B, Hq, Nq, Nk], 1 where the pair is allowed. */
  mask: Uint8Array;
  /** [B, Hq, Nk]: Σ_i p_ij, the per-key attention mass (unnormalized; NaN rows add nothing). */
  importance: Float64Array;
  /**
   * [B, Hq, Nk]: `importance` divided by the number of query rows whose mask allows key j (the
   * queries that may see it, as ZipCache normalizes); 0 for a key no query may see.
   */
  importanceNormalized: Float64Array;
  /**
   * max over rows and dims of Σ_j p_j·|v_jd|: the magnitude of the terms each output sums. An f32
   * sum's error grows with it, not with |out| (uniform weights over many v of both signs give an
   * |out| far below it), so `out` is compared relative to it (compareArrays' floor).
   */
  outScale: number;
  /**
   * [B, Hq, Nq, Dv], 1 where a kernel may answer NaN although `out` is not NaN: a column whose
   * `out` is ±Infinity (an infinite v), or one where a key of weight 0 (disallowed, or score
   * −Infinity) has a non-finite v. compareArrays takes it as its `nanAllowed`.
   */
  outNaNAllowed: Uint8Array;
}

function checkDim(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`referenceAttention: ${name} must be an integer >= ${min}, got ${value}`);
  }
}

function checkBuffer(name: string, buf: ArrayLike<number>, dims: Record<string, number>): void {
  const expected = Object.values(dims).reduce((a, b) => a * b, 1);
  if (buf.length !== expected) {
    const shape = Object.entries(dims)
      .map(([n, d]) => `${n}=${d}`)
      .join(', ');
    throw new Error(
      `referenceAttention: buffer '${name}' has length ${buf.length}, expected ${expected} for shape [${shape}]`,
    );
  }
}

function validate(inp: RefInputs): void {
  checkDim('B', inp.B, 0);
  checkDim('Hq', inp.Hq, 1);
  checkDim('Hkv', inp.Hkv, 1);
  checkDim('Nq', inp.Nq, 0);
  checkDim('Nk', inp.Nk, 0);
  checkDim('D', inp.D, 1);
  checkDim('Dv', inp.Dv, 0);
  if (inp.Hq % inp.Hkv !== 0) {
    throw new Error(`referenceAttention: Hq (${inp.Hq}) must be a multiple of Hkv (${inp.Hkv})`);
  }
  const { B, Hq, Hkv, Nq, Nk, D, Dv } = inp;
  checkBuffer('q', inp.q, { B, Hq, Nq, D });
  checkBuffer('k', inp.k, { B, Hkv, Nk, D });
  checkBuffer('v', inp.v, { B, Hkv, Nk, Dv });
  for (const name of ['qOffset', 'kOffset'] as const) {
    const off = inp[name];
    if (off !== undefined && !Number.isInteger(off)) {
      throw new Error(`referenceAttention: ${name} must be an integer, got ${off}`);
    }
  }
}

/** Dense attention in float64 per DESIGN §2, with GQA, offsets, masks and score modifiers. */
export function referenceAttention(inp: RefInputs, pred: RefPredicates): RefResult {
  validate(inp);
  const { B, Hq, Hkv, Nq, Nk, D, Dv } = inp;
  const qOffset = inp.qOffset ?? Nk - Nq;
  const cx: RowContext = {
    inp,
    pred,
    kOffset: inp.kOffset ?? 0,
    // DESIGN §2: the scale is an f32 value; using the same rounded constant keeps the reference
    // from differing from every kernel by a systematic 1-ulp factor.
    scale: Math.fround(inp.scale ?? 1 / Math.sqrt(D)),
    out: new Float64Array(B * Hq * Nq * Dv),
    lse: new Float64Array(B * Hq * Nq),
    mask: new Uint8Array(B * Hq * Nq * Nk),
    importance: new Float64Array(B * Hq * Nk),
    outNaNAllowed: new Uint8Array(B * Hq * Nq * Dv),
    s: new Float64Array(Nk),
    absOut: new Float64Array(Dv),
  };
  const group = Hq / Hkv;
  let outScale = 0;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kBase = (b * Hkv + Math.floor(h / group)) * Nk;
      for (let i = 0; i < Nq; i++) {
        const at: RowAt = { b, h, bh: b * Hq + h, row: (b * Hq + h) * Nq + i, qPos: i + qOffset, kBase };
        outScale = Math.max(outScale, attendRow(cx, at));
      }
    }
  }
  const { out, lse, mask, importance, outNaNAllowed } = cx;
  const importanceNormalized = normalizeImportance(importance, mask, B * Hq, Nq, Nk);
  return { out, lse, mask, importance, importanceNormalized, outScale, outNaNAllowed };
}

/** The inputs, and the result arrays and per-row scratch every row writes into. */
interface RowContext {
  readonly inp: RefInputs;
  readonly pred: RefPredicates;
  readonly kOffset: number;
  readonly scale: number;
  readonly out: Float64Array;
  readonly lse: Float64Array;
  readonly mask: Uint8Array;
  readonly importance: Float64Array;
  readonly outNaNAllowed: Uint8Array;
  /** One row's scores (scratch). */
  readonly s: Float64Array;
  /** One row's Σ_j p_j·|v_jd| per column (scratch). */
  readonly absOut: Float64Array;
}

/** A query row: its batch, head, index into [B, Hq, Nq], position, and its kv head's first k row. */
interface RowAt {
  readonly b: number;
  readonly h: number;
  /** b * Hq + h. */
  readonly bh: number;
  readonly row: number;
  readonly qPos: number;
  readonly kBase: number;
}

/** One query row's out, lse, mask and importance; returns the row's largest Σ_j p_j·|v_jd|. */
function attendRow(cx: RowContext, at: RowAt): number {
  const { Dv } = cx.inp;
  const oBase = at.row * Dv;
  const { max, poisoned } = scoreRow(cx, at);
  markZeroWeightV(cx, at);
  if (poisoned) {
    cx.out.fill(NaN, oBase, oBase + Dv);
    cx.lse[at.row] = NaN;
    return 0;
  }
  // No allowed key (or every allowed score is -inf): the row contributes nothing.
  if (max === -Infinity) {
    cx.lse[at.row] = -Infinity;
    return 0;
  }
  return softmaxRow(cx, at, max);
}

/**
 * The row's mask and scores (into cx.mask and cx.s): the max over the finite scores of allowed
 * keys, and whether the row is poisoned (docs/LANGUAGE.md "Non-finite values": a NaN q·k or a NaN
 * or +inf score of an allowed key poisons the whole row).
 */
function scoreRow(cx: RowContext, at: RowAt): { max: number; poisoned: boolean } {
  const { q, k, Nk, D } = cx.inp;
  const { mask: maskFn, score: scoreFn } = cx.pred;
  const { b, h, row, qPos, kBase } = at;
  const qBase = row * D;
  let max = -Infinity;
  let poisoned = false;
  for (let j = 0; j < Nk; j++) {
    const kPos = j + cx.kOffset;
    const allowed = maskFn ? Boolean(maskFn(b, h, qPos, kPos)) : true;
    cx.mask[row * Nk + j] = allowed ? 1 : 0;
    // A disallowed pair's score is never computed: its k (and score expression) cannot matter.
    if (!allowed) continue;
    const kRow = (kBase + j) * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += (q[qBase + d] as number) * (k[kRow + d] as number);
    const raw = cx.scale * dot;
    const sc = scoreFn ? scoreFn(raw, b, h, qPos, kPos) : raw;
    cx.s[j] = sc;
    // A NaN q·k poisons the row whatever the score expression makes of it (a NaN in q or
    // in an allowed k is a NaN row, as in dense attention); so does a NaN or +inf score.
    if (Number.isNaN(raw) || Number.isNaN(sc) || sc === Infinity) poisoned = true;
    else if (sc > max) max = sc;
  }
  return { max, poisoned };
}

/**
 * Keys of weight 0 (disallowed, or score -inf) never enter the sum, but a kernel may still
 * multiply their v by 0 (a tensor-core P·V over a partial tile): where such a v is not finite,
 * NaN is an accepted answer for that column (never a finite wrong one).
 */
function markZeroWeightV(cx: RowContext, at: RowAt): void {
  const { v, Nk, Dv } = cx.inp;
  const oBase = at.row * Dv;
  for (let j = 0; j < Nk; j++) {
    if (cx.mask[at.row * Nk + j] && cx.s[j] !== -Infinity) continue;
    const vRow = (at.kBase + j) * Dv;
    for (let d = 0; d < Dv; d++) {
      if (!Number.isFinite(v[vRow + d] as number)) cx.outNaNAllowed[oBase + d] = 1;
    }
  }
}

/** The two-pass softmax of a row with a finite max: out, lse and importance; its Σ p·|v| scale. */
function softmaxRow(cx: RowContext, at: RowAt, max: number): number {
  const { v, Nk, Dv } = cx.inp;
  const { row, kBase } = at;
  const { out, mask, s, absOut, importance } = cx;
  const oBase = row * Dv;
  const impBase = at.bh * Nk;
  let sum = 0;
  for (let j = 0; j < Nk; j++) {
    if (mask[row * Nk + j] && s[j] !== -Infinity) sum += Math.exp((s[j] as number) - max);
  }
  absOut.fill(0);
  for (let j = 0; j < Nk; j++) {
    if (!mask[row * Nk + j] || s[j] === -Infinity) continue;
    const p = Math.exp((s[j] as number) - max) / sum;
    importance[impBase + j] = (importance[impBase + j] as number) + p;
    const vRow = (kBase + j) * Dv;
    for (let d = 0; d < Dv; d++) {
      const pv = p * (v[vRow + d] as number);
      out[oBase + d] = (out[oBase + d] as number) + pv;
      // A non-finite v shows in `out` itself; the error floor stays the finite terms' size.
      if (Number.isFinite(pv)) absOut[d] = (absOut[d] as number) + Math.abs(pv);
    }
  }
  let rowScale = 0;
  for (let d = 0; d < Dv; d++) {
    rowScale = Math.max(rowScale, absOut[d] as number);
    // An infinite v makes out ±inf here; a kernel's running rescale (inf·0) may turn it NaN.
    if (Math.abs(out[oBase + d] as number) === Infinity) cx.outNaNAllowed[oBase + d] = 1;
  }
  cx.lse[row] = max + Math.log(sum);
  return rowScale;
}

/** importance[bh, j] / #{i : mask[bh, i, j]}, 0 where no row may see key j. */
function normalizeImportance(
  importance: Float64Array,
  mask: Uint8Array,
  heads: number,
  Nq: number,
  Nk: number,
): Float64Array {
  const out = new Float64Array(importance.length);
  for (let bh = 0; bh < heads; bh++)
    for (let j = 0; j < Nk; j++) {
      let seen = 0;
      for (let i = 0; i < Nq; i++) seen += mask[(bh * Nq + i) * Nk + j] as number;
      out[bh * Nk + j] = seen === 0 ? 0 : (importance[bh * Nk + j] as number) / seen;
    }
  return out;
}
