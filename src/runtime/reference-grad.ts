// The dense gradient reference (issue 14): given dO, the gradients of L = Σ dO·O with respect to
// q, k, v, every f32 scalar param and every f32 tensor element the score reads, in float64, by
// the definition of softmax attention (DESIGN §2): P = softmax(score′) over the allowed keys,
// dP_ij = dO_i·v_j, dscore′_ij = P_ij (dP_ij − Σ_l P_il dP_il), then the chain rule through the
// score expression (its partials come from the caller: reference-grad-ast.ts for declarations).
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

/** Accumulates c · partials into the param and tensor sums, and cAbs · |partials| into their scales. */
function addPartials(
  c: number,
  cAbs: number,
  partials: Partials,
  dParams: Map<string, number>,
  dParamsScale: Map<string, number>,
  dTensors: ReadonlyMap<string, Float64Array>,
  dTensorsAbs: ReadonlyMap<string, Float64Array>,
): void {
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
 * Gradients of Σ dO·O. `dO` is [B, Hq, Nq, Dv]; `tensorLengths` names each f32 tensor whose
 * gradient is wanted (with its flat length). Rows with no allowed key contribute nothing.
 */
export function referenceGradients(
  inp: RefInputs,
  pred: GradPredicates,
  dO: ArrayLike<number>,
  tensorLengths: Readonly<Record<string, number>> = {},
): RefGradients {
  const { q, k, v, B, Hq, Hkv, Nq, Nk, D, Dv } = inp;
  const scoreOf = pred.score;
  const fwd = referenceAttention(inp, {
    ...(pred.mask ? { mask: pred.mask } : {}),
    ...(scoreOf ? { score: (s, b, h, qp, kp) => scoreOf(s, b, h, qp, kp).value } : {}),
  });
  if (dO.length !== B * Hq * Nq * Dv)
    throw new Error(`referenceGradients: dO has length ${dO.length}, expected ${B * Hq * Nq * Dv}`);
  const qOffset = inp.qOffset ?? Nk - Nq;
  const kOffset = inp.kOffset ?? 0;
  const scale = Math.fround(inp.scale ?? 1 / Math.sqrt(D));
  const group = Hq / Hkv;
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dParams = new Map<string, number>();
  const dParamsScale = new Map<string, number>();
  const dTensors = new Map(Object.entries(tensorLengths).map(([n, len]) => [n, new Float64Array(len)]));
  const dTensorsAbs = new Map(Object.entries(tensorLengths).map(([n, len]) => [n, new Float64Array(len)]));
  const p = new Float64Array(Nk);
  const dp = new Float64Array(Nk);
  const duals: (ScoreDual | undefined)[] = new Array<ScoreDual | undefined>(Nk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * Nk;
      for (let i = 0; i < Nq; i++) {
        const row = (b * Hq + h) * Nq + i;
        const lse = fwd.lse[row] as number;
        if (lse === -Infinity) continue; // no allowed key: O = 0 whatever the inputs
        // P from the definition (the forward's lse only normalizes), dP = dO·v, and Σ P dP.
        let pdp = 0;
        for (let j = 0; j < Nk; j++) {
          p[j] = 0;
          duals[j] = undefined;
          if (!fwd.mask[row * Nk + j]) continue;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (q[row * D + d] as number) * (k[(kvBase + j) * D + d] as number);
          const raw = scale * dot;
          const dual = scoreOf ? scoreOf(raw, b, h, i + qOffset, j + kOffset) : undefined;
          duals[j] = dual;
          p[j] = Math.exp((dual ? dual.value : raw) - lse);
          let g = 0;
          for (let d = 0; d < Dv; d++)
            g += (dO[row * Dv + d] as number) * (v[(kvBase + j) * Dv + d] as number);
          dp[j] = g;
          pdp += (p[j] as number) * g;
        }
        for (let j = 0; j < Nk; j++) {
          const pj = p[j] as number;
          if (pj === 0) continue;
          for (let d = 0; d < Dv; d++) addAt(dv, (kvBase + j) * Dv + d, pj * (dO[row * Dv + d] as number));
          const dScoreP = pj * ((dp[j] as number) - pdp); // ∂L/∂score′
          const dual = duals[j];
          const dRaw = dScoreP * (dual ? (dual.partials.get('score') ?? 0) : 1); // ∂L/∂score
          // The scale: dScoreP's size before its own cancellation (see dParamsScale).
          const dScoreAbs = pj * (Math.abs(dp[j] as number) + Math.abs(pdp));
          if (dual)
            addPartials(dScoreP, dScoreAbs, dual.partials, dParams, dParamsScale, dTensors, dTensorsAbs);
          for (let d = 0; d < D; d++) {
            addAt(dq, row * D + d, scale * dRaw * (k[(kvBase + j) * D + d] as number));
            addAt(dk, (kvBase + j) * D + d, scale * dRaw * (q[row * D + d] as number));
          }
        }
      }
    }
  const dTensorsScale = new Map([...dTensorsAbs].map(([n, a]) => [n, a.reduce((m, x) => Math.max(m, x), 0)]));
  return { dq, dk, dv, dParams, dParamsScale, dTensors, dTensorsScale, out: fwd.out, lse: fwd.lse };
}
