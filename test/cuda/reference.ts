// A dense float64 reference for the CUDA tests: evaluates the kernel's score and mask graphs per
// (b, h, i, j) with attnc semantics (DESIGN §2, docs/LANGUAGE.md) and runs plain softmax attention.
import type { Node } from '../../src/ir/graph.js';
import type { AttentionKernel, ShapeDim } from '../../src/ir/kernel.js';
import { Op } from '../../src/ir/ops.js';

export interface Sizes {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

export interface Problem extends Sizes {
  readonly qOffset: number;
  readonly kOffset: number;
  readonly scale: number;
  /** Already rounded to the storage dtype. */
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly params: Readonly<Record<string, number>>;
  readonly tensors: Readonly<Record<string, ArrayLike<number>>>;
}

type Val = number | boolean;
interface Env {
  vars: Record<string, number>;
  readonly p: Problem;
  readonly kernel: AttentionKernel;
}

const i32 = (x: number): number => x | 0;
const num = (v: Val): number => (typeof v === 'boolean' ? Number(v) : v);

export function dimValue(d: ShapeDim, p: Problem): number {
  if (d.kind === 'literal') return d.value;
  if (d.kind === 'param') return p.params[d.name] ?? 0;
  return p[d.name];
}

function load(env: Env, name: string, idx: readonly number[]): number {
  const t = env.kernel.tensors.find((x) => x.name === name)!;
  const dims = t.dims.map((d) => dimValue(d, env.p));
  let lin = 0;
  for (let i = 0; i < dims.length; i++) {
    if (idx[i]! < 0 || idx[i]! >= dims[i]!) return 0;
    lin = lin * dims[i]! + idx[i]!;
  }
  return env.p.tensors[name]![lin]!;
}

function evalNode(n: Node, env: Env): Val {
  const a = n.src.map((s) => evalNode(s, env));
  const [x, y] = [num(a[0] ?? 0), num(a[1] ?? 0)];
  const int = n.dtype === 'i32';
  switch (n.op) {
    case Op.CONST:
      return n.arg as Val;
    case Op.VAR:
      return env.vars[String(n.arg)]!;
    case Op.PARAM: {
      const p = env.kernel.params.find((s) => s.name === n.arg)!;
      const v = env.p.params[p.name] ?? p.default ?? 0;
      return p.dtype === 'bool' ? v !== 0 : v;
    }
    case Op.LOAD:
      return load(env, String(n.arg), a.map(num));
    case Op.RANGE_MIN:
    case Op.RANGE_MAX: {
      const vals: number[] = [];
      for (let i = x; i <= y; i++) vals.push(load(env, String(n.arg), [i]));
      return n.op === Op.RANGE_MIN ? Math.min(...vals) : Math.max(...vals);
    }
    case Op.ADD:
      return int ? i32(x + y) : x + y;
    case Op.SUB:
      return int ? i32(x - y) : x - y;
    case Op.MUL:
      return int ? Math.imul(x, y) : x * y;
    case Op.DIV:
      return int ? (y === 0 ? 0 : i32(Math.floor(x / y))) : x / y;
    case Op.MOD:
      if (!int) return x - y * Math.floor(x / y);
      return y === 0 ? 0 : i32(x - y * Math.floor(x / y));
    case Op.NEG:
      return int ? i32(-x) : -x;
    case Op.MIN:
      return Math.min(x, y);
    case Op.MAX:
      return Math.max(x, y);
    case Op.ABS:
      return int ? i32(Math.abs(x)) : Math.abs(x);
    case Op.LT:
      return x < y;
    case Op.LE:
      return x <= y;
    case Op.GT:
      return x > y;
    case Op.GE:
      return x >= y;
    case Op.EQ:
      return x === y;
    case Op.NE:
      return x !== y;
    case Op.AND:
      return Boolean(a[0]) && Boolean(a[1]);
    case Op.OR:
      return Boolean(a[0]) || Boolean(a[1]);
    case Op.NOT:
      return !a[0];
    case Op.SELECT:
      return a[0] ? a[1]! : a[2]!;
    case Op.EXP:
      return Math.exp(x);
    case Op.LOG:
      return Math.log(x);
    case Op.EXP2:
      return 2 ** x;
    case Op.LOG2:
      return Math.log2(x);
    case Op.SQRT:
      return Math.sqrt(x);
    case Op.TANH:
      return Math.tanh(x);
    case Op.FLOOR:
      return Math.floor(x);
    case Op.CAST:
      if (n.dtype === 'bool') return x !== 0;
      // int → f32 rounds on the GPU (16777217 → 16777216), and masks may compare the result exactly.
      if (n.dtype === 'f32') return n.src[0]?.dtype === 'i32' ? Math.fround(x) : x;
      if (Number.isNaN(x)) return 0;
      return Math.max(-2147483648, Math.min(2147483647, Math.trunc(x)));
  }
  throw new Error(`reference: unknown op ${n.op}`);
}

/** Dense attention: out [B,H,Nq,Dv] and lse [B,H,Nq] (natural log, -inf for empty rows). */
export function referenceAttention(
  kernel: AttentionKernel,
  p: Problem,
): { out: Float64Array; lse: Float64Array } {
  const { B, H, Hkv, Nq, Nk } = p;
  const D = kernel.schedule.headDim;
  const Dv = kernel.schedule.valueDim;
  const out = new Float64Array(B * H * Nq * Dv);
  const lse = new Float64Array(B * H * Nq);
  const env: Env = { vars: { B, H, Hkv, Nq, Nk, D }, p, kernel };
  const s = new Float64Array(Nk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let i = 0; i < Nq; i++) {
        const qb = ((b * H + h) * Nq + i) * D;
        let mx = -Infinity;
        for (let j = 0; j < Nk; j++) {
          const kb = ((b * Hkv + hk) * Nk + j) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += p.q[qb + d]! * p.k[kb + d]!;
          env.vars = { ...env.vars, b, h, q: i + p.qOffset, k: j + p.kOffset, score: p.scale * dot };
          const allowed = Boolean(evalNode(kernel.mask, env));
          s[j] = allowed ? num(evalNode(kernel.score, env)) : -Infinity;
          mx = Math.max(mx, s[j]!);
        }
        const row = (b * H + h) * Nq + i;
        if (mx === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Nk; j++) {
          const w = Math.exp(s[j]! - mx);
          sum += w;
          const vb = ((b * Hkv + hk) * Nk + j) * Dv;
          for (let d = 0; d < Dv; d++) out[row * Dv + d] = out[row * Dv + d]! + w * p.v[vb + d]!;
        }
        for (let d = 0; d < Dv; d++) out[row * Dv + d] = out[row * Dv + d]! / sum;
        lse[row] = mx + Math.log(sum);
      }
    }
  }
  return { out, lse };
}
