// The WGSL artifact's entry points, rendered from the kernel's stage list (ir/stages.ts) through
// one table keyed by stage kind: the runtime launches them in this order (summaries, routing
// passes, the attention).
import type { AttentionKernel, TensorSlot } from '../../ir/kernel.js';
import { renderStages, type StageTable } from '../../ir/stages.js';
import type { EntryPoint } from '../artifact.js';
import { summaryBinding, summaryBlocksExpr } from './layout.js';
import type { WgslFeatures } from './features.js';

/** What the stage renderers read besides the stage. */
/** Invocations per workgroup of a summary entry point. */
export const SUMMARY_THREADS = 64;

export interface StageCx {
  readonly kernel: AttentionKernel;
  readonly tensors: ReadonlyMap<string, TensorSlot>;
  /** The routing code generator (features.ts), for kernels with routing stages. */
  readonly routing: WgslFeatures['routing'] | undefined;
  /** Tensors and summaries the routing passes' candidacy test reads. */
  readonly routingReads: readonly string[];
  readonly attnBindings: readonly string[];
  /** The importance pass's launch record (importance.ts renders it with its source). */
  readonly importanceEntry: EntryPoint | undefined;
}

/** The launch records of each stage (ir/stages.ts), in the order the runtime launches them. */
const table: StageTable<EntryPoint[], StageCx> = {
  summary: ({ tensor }, { kernel, tensors }) => {
    const t = tensors.get(tensor)!;
    return [
      {
        name: `summarize_${t.name}`,
        role: 'summary',
        tensor: t.name,
        workgroupSize: [SUMMARY_THREADS, 1, 1],
        grid: [`cdiv(${summaryBlocksExpr(t, kernel.schedule.summaryBlock)}, ${SUMMARY_THREADS})`, '1', '1'],
        bindings: [t.name, summaryBinding(t.name), 'uniforms'],
      },
    ];
  },
  pool: ({ side }, { kernel, routing }) => [routing!.routingPoolEntry(kernel.routing!, side)],
  rank: (_stage, { kernel, routing, routingReads }) =>
    routing!.routingRankEntries(kernel.routing!, routingReads),
  attention: (_stage, { kernel, attnBindings }) => [
    {
      name: 'attention',
      role: 'attention',
      workgroupSize: [kernel.schedule.threads, 1, 1],
      grid: [`cdiv(Nq, ${kernel.schedule.blockQ})`, 'H', 'B'],
      bindings: [...attnBindings],
    },
  ],
  importance: (_stage, { importanceEntry }) => [importanceEntry!],
};

/** The entry points of the artifact, one or more per stage, in launch order. */
export const stageEntryPoints = (cx: StageCx): EntryPoint[] =>
  renderStages(cx.kernel.stages, table, cx).flat();
