// The dense gradient reference (issue 14): given dO (and optionally dLse), the gradients of
// L = Σ dO·O + Σ dLse·lse with respect to q, k, v, every f32 scalar param and every f32 tensor
// element the score reads, in float64, by the definition of softmax attention (DESIGN §2):
// P = softmax(score′) over the allowed keys, dP_ij = dO_i·v_j, ∂O_i/∂score′_ij gives
// P_ij (dP_ij − Σ_l P_il dP_il) and ∂lse_i/∂score′_ij = P_ij gives dLse_i P_ij, then the chain rule
// through the score expression (its partials come from the caller: reference-grad-ast.ts).
// It recomputes everything from q, k, v (no saved lse) and shares no code with the kernels.
import { referenceAttention, type RefInputs } from './reference.js';
import type { Partials, ScoreDual } from './reference-grad-ast.js';

export interface GradPredicates {
  /** Whether query position `q` may see key position `k`; masks have no gradient. */
  readonly mask?: (b: number, h: number, q: number, k: number) => boolean;
  /** score′ and its partials ('score', '$param', 'tensor#flat'); the identity when absent. */
  readonly score?: (s: number, b: number, h: number, q: number, k: number) => ScoreDual;
}

export interface RefGradients {
  /** [B, Hq, Nq, D]. */
  readonly dq: Float64Array;
  /** [B, Hkv, Nk, D]: summed over each kv head's query-head group. */
  readonly dk: Float64Array;
  /** [B, Hkv, Nk, Dv]. */
  readonly dv: Float64Array;
  /** ∂L/∂p by f32 param name (only params some partial named). */
  readonly dParams: ReadonlyMap<string, number>;
  /** ∂L/∂t[flat] by tensor name, each the tensor's length. */
  readonly dTensors: ReadonlyMap<string, Float64Array>;
  /**
   * Σ |term| of each param's sum, each term's dS = P (dP − Σ P dP) taken before its own
   * cancellation, as P (|dP| + |Σ P dP|): the size an f32 sum's rounding error grows with (a score
   * that adds a constant c has ∂L/∂c = 0 exactly, a sum of terms that cancel; a key with P ≈ 1
   * has dP ≈ Σ P dP, so its dS is a tiny difference of O(1) values), the floor to compare at.
   */
  readonly dParamsScale: ReadonlyMap<string, number>;
  /** Per tensor, the largest Σ |term| of one element's sum (the same floor for tensor gradients). */
  readonly dTensorsScale: ReadonlyMap<string, number>;
  /** The forward's out and lse (float64), for kernels that need them as inputs. */
  readonly out: Float64Array;
  readonly lse: Float64Array;
}

const addAt = (a: Float64Array, i: number, x: number): void => {
  a[i] = (a[i] as number) + x;
};

/** The sums the backward pass adds into, and the Σ |term| beside each param and tensor sum. */
interface Accumulators {
  readonly dq: Float64Array;
  readonly dk: Float64Array;
  readonly dv: Float64Array;
  readonly dParams: Map<string, number>;
  readonly dParamsScale: Map<string, number>;
  readonly dTensors: ReadonlyMap<string, Float64Array>;
  readonly dTensorsAbs: ReadonlyMap<string, Float64Array>;
}

/** Accumulates c · partials into the param and tensor sums, and cAbs · |partials| into their scales. */
function addPartials(c: number, cAbs: number, partials: Partials, acc: Accumulators): void {
  const { dParams, dParamsScale, dTensors, dTensorsAbs } = acc;
  for (const [key, d] of partials) {
    if (key === 'score') continue;
    if (key.startsWith('$')) {
      dParams.set(key.slice(1), (dParams.get(key.slice(1)) ?? 0) + c * d);
      dParamsScale.set(key.slice(1), (dParamsScale.get(key.slice(1)) ?? 0) + cAbs * Math.abs(d));
      continue;
    }
    const hash = key.lastIndexOf('#');
    const t = dTensors.get(key.slice(0, hash));
    if (!t) throw new Error(`referenceGradients: no length given for tensor '${key.slice(0, hash)}'`);
    const i = Number(key.slice(hash + 1));
    t[i] = (t[i] as number) + c * d;
    addAt(dTensorsAbs.get(key.slice(0, hash))!, i, cAbs * Math.abs(d));
  }
}

/**
 * Gradients of Σ dO·O + Σ dLse·lse. `dO` is [B, Hq, Nq, Dv], `dLse` (none: zeros) [B, Hq, Nq];
 * `tensorLengths` names each f32 tensor whose gradient is wanted (with its flat length). Rows with
 * no allowed key contribute nothing (their lse is −∞ whatever the inputs).
 */
export function referenceGradients(
  inp: RefInputs,
  pred: GradPredicates,
  dO: ArrayLike<number>,
  tensorLengths: Readonly<Record<string, number>> = {},
  dLse?: ArrayLike<number>,
): RefGradients {
  const { B, Hq, Hkv, Nq, Nk, Dv } = inp;
  const scoreOf = pred.score;
  const fwd = referenceAttention(inp, {
    ...(pred.mask ? { mask: pred.mask } : {}),
    ...(scoreOf ? { score: (s, b, h, qp, kp) => scoreOf(s, b, h, qp, kp).value } : {}),
  });
  if (dO.length !== B * Hq * Nq * Dv)
    throw new Error(`referenceGradients: dO has length ${dO.length}, expected ${B * Hq * Nq * Dv}`);
  if (dLse && dLse.length !== B * Hq * Nq)
    throw new Error(`referenceGradients: dLse has length ${dLse.length}, expected ${B * Hq * Nq}`);
  const c: GradCall = {
    inp,
    dO,
    scoreOf,
    mask: fwd.mask,
    qOffset: inp.qOffset ?? Nk - Nq,
    kOffset: inp.kOffset ?? 0,
    scale: Math.fround(inp.scale ?? 1 / Math.sqrt(inp.D)),
  };
  const acc = accumulators(inp, tensorLengths);
  const scratch: RowScratch = {
    p: new Float64Array(Nk),
    dp: new Float64Array(Nk),
    duals: new Array<ScoreDual | undefined>(Nk),
  };
  const group = Hq / Hkv;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * Nk;
      for (let i = 0; i < Nq; i++) {
        const row = (b * Hq + h) * Nq + i;
        const lse = fwd.lse[row] as number;
        if (lse === -Infinity) continue; // no allowed key: O = 0 whatever the inputs
        const at: RowAt = { b, h, i, row, kvBase, lse, dLse: dLse ? (dLse[row] as number) : 0 };
        const pdp = rowProbabilities(c, at, scratch);
        rowBackward(c, at, scratch, pdp, acc);
      }
    }
  const { dq, dk, dv, dParams, dParamsScale, dTensors, dTensorsAbs } = acc;
  const dTensorsScale = new Map([...dTensorsAbs].map(([n, a]) => [n, a.reduce((m, x) => Math.max(m, x), 0)]));
  return { dq, dk, dv, dParams, dParamsScale, dTensors, dTensorsScale, out: fwd.out, lse: fwd.lse };
}

/** What every row's gradient reads: the inputs, dO, the score's duals and the forward's mask. */
interface GradCall {
  readonly inp: RefInputs;
  readonly dO: ArrayLike<number>;
  readonly scoreOf: GradPredicates['score'];
  /** The forward's allowed pairs, [B, Hq, Nq, Nk]. */
  readonly mask: Uint8Array;
  readonly qOffset: number;
  readonly kOffset: number;
  readonly scale: number;
}

/** One query row: its (b, h, i), flat row index, first kv row, and the forward's lse. */
interface RowAt {
  readonly b: number;
  readonly h: number;
  readonly i: number;
  readonly row: number;
  readonly kvBase: number;
  readonly lse: number;
  /** ∂L/∂lse of the row (0 without dLse). */
  readonly dLse: number;
}

/** Per-key values of the current row, reused across rows to avoid an allocation per row. */
interface RowScratch {
  readonly p: Float64Array;
  readonly dp: Float64Array;
  readonly duals: (ScoreDual | undefined)[];
}

function accumulators(inp: RefInputs, tensorLengths: Readonly<Record<string, number>>): Accumulators {
  return {
    dq: new Float64Array(inp.q.length),
    dk: new Float64Array(inp.k.length),
    dv: new Float64Array(inp.v.length),
    dParams: new Map<string, number>(),
    dParamsScale: new Map<string, number>(),
    dTensors: new Map(Object.entries(tensorLengths).map(([n, len]) => [n, new Float64Array(len)])),
    dTensorsAbs: new Map(Object.entries(tensorLengths).map(([n, len]) => [n, new Float64Array(len)])),
  };
}

/**
 * Fills P from the definition (the forward's lse only normalizes), dP = dO·v and each key's score
 * dual for one row; returns Σ P dP.
 */
function rowProbabilities(c: GradCall, at: RowAt, s: RowScratch): number {
  const { q, k, v, Nk, D, Dv } = c.inp;
  const { dO, scoreOf } = c;
  const { row, kvBase } = at;
  let pdp = 0;
  for (let j = 0; j < Nk; j++) {
    s.p[j] = 0;
    s.duals[j] = undefined;
    if (!c.mask[row * Nk + j]) continue;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += (q[row * D + d] as number) * (k[(kvBase + j) * D + d] as number);
    const raw = c.scale * dot;
    const dual = scoreOf ? scoreOf(raw, at.b, at.h, at.i + c.qOffset, j + c.kOffset) : undefined;
    s.duals[j] = dual;
    s.p[j] = Math.exp((dual ? dual.value : raw) - at.lse);
    let g = 0;
    for (let d = 0; d < Dv; d++) g += (dO[row * Dv + d] as number) * (v[(kvBase + j) * Dv + d] as number);
    s.dp[j] = g;
    pdp += (s.p[j] as number) * g;
  }
  return pdp;
}

/** Adds one row's contributions to dv, dq, dk and (through the score's partials) params and tensors. */
function rowBackward(c: GradCall, at: RowAt, s: RowScratch, pdp: number, acc: Accumulators): void {
  const { q, k, Nk, D, Dv } = c.inp;
  const { dO, scale } = c;
  const { row, kvBase } = at;
  for (let j = 0; j < Nk; j++) {
    const pj = s.p[j] as number;
    if (pj === 0) continue;
    for (let d = 0; d < Dv; d++) addAt(acc.dv, (kvBase + j) * Dv + d, pj * (dO[row * Dv + d] as number));
    // ∂L/∂score′: through O, then through lse (∂lse/∂score′ = P).
    const dScoreP = pj * ((s.dp[j] as number) - pdp) + at.dLse * pj;
    const dual = s.duals[j];
    const dRaw = dScoreP * (dual ? (dual.partials.get('score') ?? 0) : 1); // ∂L/∂score
    // The scale: dScoreP's size before its own cancellation (see dParamsScale).
    const dScoreAbs = pj * (Math.abs(s.dp[j] as number) + Math.abs(pdp) + Math.abs(at.dLse));
    if (dual) addPartials(dScoreP, dScoreAbs, dual.partials, acc);
    for (let d = 0; d < D; d++) {
      addAt(acc.dq, row * D + d, scale * dRaw * (k[(kvBase + j) * D + d] as number));
      addAt(acc.dk, (kvBase + j) * D + d, scale * dRaw * (q[row * D + d] as number));
    }
  }
}
