// Hand-built AttentionKernels, for testing backends independently of the frontend and passes.
// Each mirrors what the pass pipeline produces for a small .attn program (shown in comments).
import { Graph, type Node } from '../../src/ir/graph.js';
import type { ArtifactSchedule } from '../../src/codegen/artifact.js';
import { uniformFormats } from '../../src/ir/formats.js';
import type { AttentionKernel, TileClassifier } from '../../src/ir/kernel.js';
import { Op } from '../../src/ir/ops.js';
import { elementRoots, hoistPlan } from '../../src/ir/passes/fuse.js';
import { kernelStages } from '../../src/ir/stages.js';

/**
 * What a hand-built kernel is made from: its schedule plus the one storage dtype of q, k, v and
 * out (the kernel's formats), in one record as an artifact shows it.
 */
export type TestSchedule = ArtifactSchedule;

export const testSchedule: TestSchedule = Object.freeze({
  blockQ: 16,
  blockK: 16,
  threads: 16,
  stages: 1,
  headDim: 16,
  valueDim: 16,
  dtype: 'f32',
  summaryBlock: 16,
});

function kernel(
  name: string,
  g: Graph,
  parts: Partial<AttentionKernel>,
  stored: TestSchedule,
): AttentionKernel {
  const { dtype, ...schedule } = stored;
  // The stage list follows the summaries and routing in `parts`, as the pipeline's `stages` pass.
  const stages = kernelStages({
    summaries: parts.summaries ?? [],
    ...(parts.routing ? { routing: parts.routing } : {}),
  });
  const base = {
    stages,
    kind: 'attention' as const,
    name,
    graph: g,
    score: g.var('score'),
    mask: g.const(true),
    tiles: { kind: 'static', value: 'full' } as const,
    params: [],
    tensors: [],
    summaries: [],
    outputs: { lse: true },
    formats: uniformFormats(dtype),
    schedule: Object.freeze(schedule),
    ...parts,
  };
  // The hoisting plan of the final expressions, as the pipeline's `fuse` pass makes it.
  return { hoists: hoistPlan(elementRoots(base.mask, base.score, base.tiles)), ...base };
}

/**
 * `k` with its hoisting plan made again from its own mask, score and tiles: a test that spreads a
 * hand kernel and replaces those must not keep the hoists of the expressions it replaced (they
 * belong to another graph).
 */
export function rehoisted<K extends AttentionKernel>(k: K): K {
  return { ...k, hoists: hoistPlan(elementRoots(k.mask, k.score, k.tiles)) };
}

const bool = (g: Graph, op: Op, a: Node, b: Node): Node => g.node(op, 'bool', [a, b]);
const int = (g: Graph, op: Op, a: Node, b: Node): Node => g.node(op, 'i32', [a, b]);

/** attention full() {} */
export function fullKernel(schedule = testSchedule): AttentionKernel {
  return kernel('full', new Graph(), {}, schedule);
}

/**
 * attention sliding_window(window: int = 8) { mask causal && q - k < window }
 * Tile classes: canBeTrue = q_hi >= k_lo && q_lo - k_hi < window;
 *               canBeFalse = q_lo < k_hi || q_hi - k_lo >= window.
 */
export function slidingWindowKernel(schedule = testSchedule): AttentionKernel {
  const g = new Graph();
  const [q, k, w] = [g.var('q'), g.var('k'), g.node(Op.PARAM, 'i32', [], 'window')];
  const mask = bool(g, Op.AND, bool(g, Op.GE, q, k), bool(g, Op.LT, int(g, Op.SUB, q, k), w));
  const [qlo, qhi, klo, khi] = [g.var('q_lo'), g.var('q_hi'), g.var('k_lo'), g.var('k_hi')];
  const tiles: TileClassifier = {
    kind: 'dynamic',
    canBeTrue: bool(g, Op.AND, bool(g, Op.GE, qhi, klo), bool(g, Op.LT, int(g, Op.SUB, qlo, khi), w)),
    canBeFalse: bool(g, Op.OR, bool(g, Op.LT, qlo, khi), bool(g, Op.GE, int(g, Op.SUB, qhi, klo), w)),
  };
  return kernel(
    'sliding_window',
    g,
    { mask, tiles, params: [{ name: 'window', dtype: 'i32', default: 8 }] },
    schedule,
  );
}

/**
 * attention document(doc: i32[kv]) { mask doc[q] == doc[k] && causal }
 * Tile classes from per-block min/max summaries of `doc`.
 */
export function documentKernel(schedule = testSchedule): AttentionKernel {
  const g = new Graph();
  const [q, k] = [g.var('q'), g.var('k')];
  const docQ = g.node(Op.LOAD, 'i32', [q], 'doc');
  const docK = g.node(Op.LOAD, 'i32', [k], 'doc');
  const mask = bool(g, Op.AND, bool(g, Op.EQ, docQ, docK), bool(g, Op.GE, q, k));
  const [qlo, qhi, klo, khi] = [g.var('q_lo'), g.var('q_hi'), g.var('k_lo'), g.var('k_hi')];
  const qmin = g.node(Op.RANGE_MIN, 'i32', [qlo, qhi], 'doc');
  const qmax = g.node(Op.RANGE_MAX, 'i32', [qlo, qhi], 'doc');
  const kmin = g.node(Op.RANGE_MIN, 'i32', [klo, khi], 'doc');
  const kmax = g.node(Op.RANGE_MAX, 'i32', [klo, khi], 'doc');
  // Equality can hold iff the id intervals overlap; must hold iff both are the same singleton.
  const overlap = bool(g, Op.AND, bool(g, Op.LE, qmin, kmax), bool(g, Op.LE, kmin, qmax));
  const sameSingleton = bool(
    g,
    Op.AND,
    bool(g, Op.AND, bool(g, Op.EQ, qmin, qmax), bool(g, Op.EQ, kmin, kmax)),
    bool(g, Op.EQ, qmin, kmin),
  );
  const tiles: TileClassifier = {
    kind: 'dynamic',
    canBeTrue: bool(g, Op.AND, overlap, bool(g, Op.GE, qhi, klo)),
    canBeFalse: bool(g, Op.OR, g.node(Op.NOT, 'bool', [sameSingleton]), bool(g, Op.LT, qlo, khi)),
  };
  return kernel(
    'document',
    g,
    {
      mask,
      tiles,
      tensors: [{ name: 'doc', dtype: 'i32', dims: [{ kind: 'size', name: 'Nk' }] }],
      summaries: [{ tensor: 'doc' }],
    },
    schedule,
  );
}

/** attention softcap_alibi(cap: f32 = 5.0, slopes: f32[heads]) { score cap * tanh(score / cap) - slopes[h] * float(q - k) ; mask causal } */
export function softcapAlibiKernel(schedule = testSchedule): AttentionKernel {
  const g = new Graph();
  const [q, k, h, s] = [g.var('q'), g.var('k'), g.var('h'), g.var('score')];
  const cap = g.node(Op.PARAM, 'f32', [], 'cap');
  const capped = g.node(Op.MUL, 'f32', [cap, g.node(Op.TANH, 'f32', [g.node(Op.DIV, 'f32', [s, cap])])]);
  const dist = g.node(Op.CAST, 'f32', [int(g, Op.SUB, q, k)]);
  const slope = g.node(Op.LOAD, 'f32', [h], 'slopes');
  const score = g.node(Op.SUB, 'f32', [capped, g.node(Op.MUL, 'f32', [slope, dist])]);
  const mask = bool(g, Op.GE, q, k);
  const [qhi, klo, qlo, khi] = [g.var('q_hi'), g.var('k_lo'), g.var('q_lo'), g.var('k_hi')];
  return kernel(
    'softcap_alibi',
    g,
    {
      score,
      mask,
      tiles: { kind: 'dynamic', canBeTrue: bool(g, Op.GE, qhi, klo), canBeFalse: bool(g, Op.LT, qlo, khi) },
      params: [{ name: 'cap', dtype: 'f32', default: 5 }],
      tensors: [{ name: 'slopes', dtype: 'f32', dims: [{ kind: 'size', name: 'H' }] }],
    },
    schedule,
  );
}
