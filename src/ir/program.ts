// The program as it flows through the pass pipeline: the graph-level attention op (mask and
// score expressions, inputs, outputs) that passes refine until it is a complete AttentionKernel.
import type { Graph, Node } from './graph.js';
import type {
  AttentionKernel,
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
  readonly rowInvariants?: readonly Node[];
  /** Set by schedule. */
  readonly schedule?: Schedule;
}

export function toKernel(ir: AttentionIR): AttentionKernel {
  if (!ir.tiles || !ir.schedule) throw new Error(`internal: ${ir.name} was not tiled and scheduled`);
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
    ...(ir.rowInvariants ? { rowInvariants: ir.rowInvariants } : {}),
    ...(ir.routing ? { routing: ir.routing } : {}),
    ...(ir.residue ? { residue: ir.residue } : {}),
    ...(ir.neighbourhood ? { neighbourhood: ir.neighbourhood } : {}),
  };
}
