// The program as it flows through the pass pipeline: the graph-level attention op (mask and
// score expressions, inputs, outputs) that passes refine until it is a complete AttentionKernel.
import type { Stage } from './stages.js';
import type { Graph, Node } from './graph.js';
import type {
  AttentionKernel,
  Hoists,
  KernelOutputs,
  ParamSlot,
  NeighbourhoodPatches,
  ResidueClasses,
  Schedule,
  SummarySlot,
  TensorSlot,
  TileClassifier,
} from './kernel.js';
import type { TensorFormats } from './formats.js';
import type { RoutingPlan } from './routing.js';
import type { QkInt8 } from './int8qk.js';
import type { PvE4m3 } from './pv-e4m3.js';

export interface AttentionIR {
  readonly name: string;
  readonly graph: Graph;
  readonly score: Node;
  readonly mask: Node;
  readonly params: readonly ParamSlot[];
  readonly tensors: readonly TensorSlot[];
  readonly outputs: KernelOutputs;
  /** Storage formats of q, k, v and out (set by lowering, from the compile options). */
  readonly formats: TensorFormats;
  /** `qk int8` (set by lowering): SageAttention-style int8 Q·Kᵀ. */
  readonly qkInt8?: QkInt8;
  /** `pv e4m3` (set by lowering): SageAttention2-style fp8 P·V. */
  readonly pvE4m3?: PvE4m3;
  /** Block routing (set by lowering): pool → affinity → top-k before the attention. */
  readonly routing?: RoutingPlan;
  /** Set by analyze-tiles. */
  readonly tiles?: TileClassifier;
  readonly summaries?: readonly SummarySlot[];
  /** Set by residue-classes (dilated masks only). */
  readonly residue?: ResidueClasses;
  /** Set by neighbourhood-patches (2-D neighbourhood masks only). */
  readonly neighbourhood?: NeighbourhoodPatches;
  /** Set by fuse. */
  readonly hoists?: Hoists;
  /** Set by schedule. */
  readonly schedule?: Schedule;
  /** Set by stages (last). */
  readonly stages?: readonly Stage[];
}

export function toKernel(ir: AttentionIR): AttentionKernel {
  if (!ir.tiles || !ir.schedule || !ir.stages || !ir.hoists)
    throw new Error(`internal: ${ir.name} was not tiled, fused, scheduled and staged`);
  return {
    kind: 'attention',
    name: ir.name,
    graph: ir.graph,
    score: ir.score,
    mask: ir.mask,
    tiles: ir.tiles,
    params: ir.params,
    tensors: ir.tensors,
    summaries: ir.summaries ?? [],
    outputs: ir.outputs,
    formats: ir.formats,
    schedule: ir.schedule,
    stages: ir.stages,
    hoists: ir.hoists,
    ...(ir.routing ? { routing: ir.routing } : {}),
    ...(ir.residue ? { residue: ir.residue } : {}),
    ...(ir.neighbourhood ? { neighbourhood: ir.neighbourhood } : {}),
    ...(ir.qkInt8 ? { qkInt8: ir.qkInt8 } : {}),
    ...(ir.pvE4m3 ? { pvE4m3: ir.pvE4m3 } : {}),
  };
}
