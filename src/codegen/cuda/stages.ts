// The CUDA artifact's entry points, rendered from the kernel's stage list (ir/stages.ts) through
// one table keyed by stage kind. Routing stages go to the pass family that runs the plan
// (routing-case.ts): ranked blocks (routing-host.ts) or slot-based selection (select-host.ts, select-records.ts).
// The records are informational for CUDA (the generated launcher runs the kernels), but they
// name every kernel in launch order, with its grid and the buffers it binds.
import type { AttentionKernel } from '../../ir/kernel.js';
import { renderStages, type StageTable } from '../../ir/stages.js';
import type { EntryPoint } from '../artifact.js';
import { attentionEntry, SUMMARY_THREADS, summaryEntry } from './launcher.js';
import { importanceEntryPoint } from './importance.js';
import { selectHandles } from './routing-case.js';
import { routingPoolEntry, routingRankEntries } from './routing-host.js';
import { dimLabel } from './rules.js';
import { selectAttentionEntries, selectPoolEntry, selectRankEntries } from './select-records.js';
import { tokenAttentionEntries } from './token-host.js';
import { tokenPlan } from './token-form.js';
import { salientEntryPoints } from './salient-list.js';

interface StageCx {
  readonly kernel: AttentionKernel;
  /** Threads per block of the attention core. */
  readonly threads: number;
}

const table: StageTable<EntryPoint[], StageCx> = {
  summary: ({ tensor }, { kernel: k }) => {
    const SB = k.schedule.summaryBlock;
    const dim = dimLabel(k.tensors.find((t) => t.name === tensor)!.dims[0]!);
    return [
      {
        name: summaryEntry(k, tensor),
        role: 'summary',
        tensor,
        workgroupSize: [SUMMARY_THREADS, 1, 1],
        grid: [`cdiv(cdiv(${dim}, ${SB}), ${SUMMARY_THREADS / 32})`, '1', '1'],
        bindings: [tensor, `${tensor}_summary`],
      },
    ];
  },
  pool: ({ side }, { kernel: k }) => [
    selectHandles(k) ? selectPoolEntry(k, side) : routingPoolEntry(k, side),
  ],
  rank: (_stage, { kernel: k }) => (selectHandles(k) ? selectRankEntries(k) : routingRankEntries(k)),
  attention: ({ keys }, { kernel: k, threads }) => {
    const used = ['q', 'k', 'v', 'out', ...(k.outputs.lse ? ['lse'] : []), ...k.tensors.map((t) => t.name)];
    if (k.routing) used.push('indices');
    // Selection attends in its own split-and-merge kernels; the core's entry follows them (it runs
    // the unrestricted attention of `emit`, and block routing's selected tiles).
    const selected = keys === 'selected' && selectHandles(k) ? selectAttentionEntries(k) : [];
    // Raw-query block routing attends per token (token-attn.ts); the core's entry stays as the
    // fallback for pointers the token kernel cannot use (token-host.ts).
    const token = keys === 'selected' ? tokenPlan(k) : undefined;
    return [
      ...selected,
      ...(token ? tokenAttentionEntries(k, token) : []),
      {
        name: attentionEntry(k),
        role: 'attention',
        workgroupSize: [threads, 1, 1],
        grid: [`cdiv(Nq, ${k.schedule.blockQ})`, 'H', 'B'],
        bindings: [...used, ...k.summaries.map((s) => `${s.tensor}_summary`)],
      },
    ];
  },
  importance: (_stage, { kernel: k }) => [importanceEntryPoint(k)],
};

/** The entry points of `kernel`'s artifact, one or more per stage, in launch order. */
export const stageEntryPoints = (kernel: AttentionKernel, threads: number): EntryPoint[] => [
  // Salient index lists become flags before any pass dequantizes (salient-list.ts).
  ...salientEntryPoints(kernel),
  ...renderStages(kernel.stages, table, { kernel, threads }).flat(),
];
