// The autotuner's search space (bench/cuda/table.py): for each DESIGN §6 pattern, a handful of
// candidate schedules, each compiled as its own variant `std_<pattern>__<candidate>` (bf16,
// D = 128, checked, sanitized, then timed at every benchmark size; the fastest is the table row).
// Candidates are data: an engine is one line in `candidates` (perf-tma's warp-specialized
// `wgmma-ws` is listed; the committed 2026-11-24 table predates it). A candidate that fails the
// check or the sanitizer is not timed, so a new line cannot make the table wrong.
//   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/tune-list.mjs --out bench/build/cuda-table
// The list also carries check-only variants of the residue-class permutation (dilated kernels with
// other moduli, both tensor-core engines, f16 and D = 64), which are not timed.
import base from './stdlib-list.mjs';

const wg = (blockQ, blockK) => ({ engine: 'wgmma', blockQ, blockK, threads: 2 * blockQ, stages: 2 });
const ws = (blockK) => ({ engine: 'wgmma-ws', blockQ: 128, blockK, threads: 384, stages: 2 });
// Issue 13 item 5: Schedule.wsTweaks (codegen/cuda/wgmma-ws-tweaks.ts).
const common = ['splitKv', 'fastExp', 'lazyRescale', 'zeroInit', 'pvN128'];
const serialTweaks = [...common, 'packFirst'];
// foldScale (the scale in the exp2's FFMA) is timed alone and on top of the best-looking sets.
const fold = (ts) => [...ts, 'foldScale'];
const fa3Tweaks = [...common, 'rescaleInTurn'];
function denseCandidates() {
  const dense = ['full', 'causal'];
  const tw = (base, wsTweaks) => ({ ...base, wsTweaks });
  const fa3 = (blockK, stages = 2) => ({ ...ws(blockK), stages, wsConsumers: 'fa3' });
  const overlap = (blockK) => ({ ...ws(blockK), wsConsumers: 'overlap' });
  return [
    // The default's serial consumers (full k176, causal k128), one tweak at a time, then all.
    ...[...serialTweaks, 'foldScale'].map((t) => ({
      id: `ws_k176_${t}`,
      schedule: tw(ws(176), [t]),
      only: ['full'],
    })),
    { id: 'ws_k176_tw', schedule: tw(ws(176), serialTweaks), only: ['full'] },
    { id: 'ws_k176_tw_fold', schedule: tw(ws(176), fold(serialTweaks)), only: ['full'] },
    { id: 'ws_k176_tw_r240', schedule: tw(ws(176), [...serialTweaks, 'regs240']), only: ['full'] },
    { id: 'ws_tw', schedule: tw(ws(128), serialTweaks), only: dense },
    { id: 'ws_s3_tw', schedule: tw({ ...ws(128), stages: 3 }, serialTweaks), only: dense },
    // Ping-pong turns on the serial tile: packFirst takes away the warpgroup.arrive ptxas injected
    // into the P·V issue, which serialized every wgmma of ws_pingpong (C7520).
    {
      id: 'ws_pp_k176_pack',
      schedule: tw({ ...ws(176), wsConsumers: 'pingpong' }, ['packFirst']),
      only: ['full'],
    },
    {
      id: 'ws_pp_k176_tw',
      schedule: tw({ ...ws(176), wsConsumers: 'pingpong' }, [...serialTweaks, 'regs240']),
      only: ['full'],
    },
    { id: 'ws_pp_tw', schedule: tw({ ...ws(128), wsConsumers: 'pingpong' }, serialTweaks), only: dense },
    // FlashAttention-3's consumers: the prefetch distance first (split K/V, or 3 stages), then all.
    { id: 'ws_fa3_split', schedule: tw(fa3(128), ['splitKv']), only: dense },
    { id: 'ws_fa3_s3', schedule: fa3(128, 3), only: dense },
    { id: 'ws_fa3_tw', schedule: tw(fa3(128), fa3Tweaks), only: dense },
    { id: 'ws_fa3_tw_fold', schedule: tw(fa3(128), fold(fa3Tweaks)), only: dense },
    { id: 'ws_fa3_tw_late', schedule: tw(fa3(128), common), only: dense },
    { id: 'ws_fa3_s3_tw', schedule: tw(fa3(128, 3), fa3Tweaks), only: dense },
    // FlashAttention-3's 176-key tile with these consumers spills 40–68 bytes here, even with
    // regs240, as the untweaked ws_fa3_k176 does (not listed); 160 and 144 keys fit in 240.
    { id: 'ws_fa3_k160_tw', schedule: tw(fa3(160), [...fa3Tweaks, 'regs240']), only: ['full'] },
    { id: 'ws_fa3_k160_tw_fold', schedule: tw(fa3(160), fold([...fa3Tweaks, 'regs240'])), only: ['full'] },
    { id: 'ws_fa3_k144_tw', schedule: tw(fa3(144), [...fa3Tweaks, 'regs240']), only: ['full'] },
    { id: 'ws_overlap_tw', schedule: tw({ ...ws(128), wsConsumers: 'overlap' }, fa3Tweaks), only: dense },
    // Round 3 (after the 2026-12-04 run: fa3_tw_fold, now the default, 0.98× / 1.02× SDPA; overlap_tw
    // matched it without foldScale): the overlap alone with foldScale, its wider tiles (176 and 160
    // keys fit in 240 registers with one P set), regs240, and the default without lazyRescale.
    ...[
      ['ws_overlap_tw_fold', overlap(128), fold(fa3Tweaks), dense],
      ['ws_overlap_tw_fold_r240', overlap(128), fold([...fa3Tweaks, 'regs240']), dense],
      ['ws_overlap_k176_tw_fold', overlap(176), fold([...fa3Tweaks, 'regs240']), ['full']],
      ['ws_overlap_k160_tw_fold', overlap(160), fold([...fa3Tweaks, 'regs240']), ['full']],
      ['ws_fa3_tw_fold_r240', fa3(128), fold([...fa3Tweaks, 'regs240']), dense],
      ['ws_fa3_fold_eager', fa3(128), fold(fa3Tweaks.filter((t) => t !== 'lazyRescale')), ['full']],
    ].map(([id, s, ts, only]) => ({ id, schedule: tw(s, ts), only })),
  ];
}

export const candidates = [
  { id: 'wg_q128_k128', schedule: wg(128, 128) },
  { id: 'wg_q128_k64', schedule: wg(128, 64) },
  { id: 'wg_q64_k128', schedule: wg(64, 128) },
  { id: 'wg_q64_k64', schedule: wg(64, 64) },
  { id: 'wg_q128_k32', schedule: wg(128, 32), only: ['document', 'sink_window', 'dilated', 'neighbourhood'] },
  // The tile scan (Schedule.tileScan): 32 tiles per ballot skips the empty run between a sink
  // tile and the window; the per-tile walk saves the ballots' registers on contiguous ranges.
  {
    id: 'wg_q128_k128_ballot',
    schedule: { ...wg(128, 128), tileScan: 'ballot' },
    only: ['sink_window', 'prefix_lm'],
  },
  { id: 'wg_q64_k64_ballot', schedule: { ...wg(64, 64), tileScan: 'ballot' }, only: ['sink_window'] },
  { id: 'wg_q128_k128_bounds', schedule: { ...wg(128, 128), tileScan: 'bounds' }, only: ['document'] },
  { id: 'ws_q128_k128', schedule: ws(128) },
  // Issue 13 round two (not yet measured): wgmma-ws with the ballot scan for the gapped mask (the
  // default now takes wg_q64_k64_ballot, the 2026-12-03 winner); FlashAttention-3's consumer
  // schedule (Schedule.wsConsumers 'fa3': next S = Q·Kᵀ and this P·V issued together in ping-pong
  // turns, softmax under the other warpgroup's products, one P register set) and the overlap alone;
  // the producer's tile walk (Schedule.wsProducerWalk: consumers run no classifier, no ballots and
  // no per-tile barrier; per-key values come through the stage ring).
  { id: 'ws_q128_k128_ballot', schedule: { ...ws(128), tileScan: 'ballot' }, only: ['sink_window'] },
  { id: 'ws_q128_k64_ballot', schedule: { ...ws(64), tileScan: 'ballot' }, only: ['sink_window'] },
  {
    id: 'ws_walk',
    schedule: { ...ws(128), wsProducerWalk: true },
    only: ['causal', 'sliding_window', 'document', 'prefix_lm'],
  },
  {
    id: 'ws_walk_ballot',
    schedule: { ...ws(128), wsProducerWalk: true, tileScan: 'ballot' },
    only: ['sink_window'],
  },
  {
    id: 'ws_fa3',
    schedule: { ...ws(128), wsConsumers: 'fa3' },
    only: ['full', 'causal', 'sliding_window', 'prefix_lm', 'softcap'],
  },
  { id: 'ws_fa3_k176', schedule: { ...ws(176), wsConsumers: 'fa3' }, only: ['full'] },
  { id: 'ws_overlap', schedule: { ...ws(128), wsConsumers: 'overlap' }, only: ['full', 'causal'] },
  // The ping-pong turns alone (issue 13 item 5: which of FlashAttention-3's two techniques costs).
  { id: 'ws_pingpong', schedule: { ...ws(128), wsConsumers: 'pingpong' }, only: ['full', 'causal'] },
  {
    id: 'ws_fa3_walk',
    schedule: { ...ws(128), wsConsumers: 'fa3', wsProducerWalk: true },
    only: ['causal', 'document', 'prefix_lm'],
  },
  {
    id: 'ws_fa3_walk_ballot',
    schedule: { ...ws(128), wsConsumers: 'fa3', wsProducerWalk: true, tileScan: 'ballot' },
    only: ['sink_window'],
  },
  // Issue 13 item 5 (dense at SDPA speed): Schedule.wsTweaks, FlashAttention-3's mainloop details
  // (codegen/cuda/wgmma-ws-tweaks.ts), alone on the default's serial consumers and together on the
  // overlapped ones; 'split' = K and V on their own barriers (the next K streams in under P·V),
  // 's3' = three stages (the other way to get that prefetch distance at 128 keys).
  ...denseCandidates(),
  // What the schedule pass picks unasked (the CLI's and Python package's choice).
  { id: 'default', defaultSchedule: true },
];

const patterns = [
  'full',
  'causal',
  'sliding_window',
  'sink_window',
  'prefix_lm',
  'document',
  'dilated',
  'softcap',
  'neighbourhood',
];

/** One bf16 D = 128 perf variant `std_<pattern>__<id>` per pattern and candidate (`only` filters). */
export function candidateEntries(patterns, list) {
  return patterns.flatMap((pattern) => {
    const e = base.find((x) => x.name === `std_${pattern}`);
    if (!e) throw new Error(`tune-list: no stdlib entry for ${pattern}`);
    return list
      .filter((c) => !c.only || c.only.includes(pattern))
      .map((c) => ({
        ...e,
        name: `${e.name}__${c.id}`,
        dtypes: ['bf16'],
        headDims: [128],
        schedule: c.schedule,
        ...(c.defaultSchedule ? { defaultSchedule: true } : {}),
        perf: true,
        pattern,
        candidate: c.id,
      }));
  });
}

const tuned = candidateEntries(patterns, candidates);

const dilated = base.find((x) => x.name === 'std_dilated');
const checkOnly = (name, extra) => ({ ...dilated, name, perf: false, pattern: null, ...extra });
const residueChecks = [
  checkOnly('res_dilated3', { params: { dilation: 3 }, dtypes: ['bf16', 'f16'], headDims: [64, 128] }),
  checkOnly('res_dilated3_mma', {
    params: { dilation: 3 },
    dtypes: ['f16'],
    headDims: [64, 128],
    schedule: { engine: 'mma', blockK: 64 },
  }),
  checkOnly('res_dilated_neg5_k64', {
    params: { dilation: -5 },
    dtypes: ['bf16'],
    headDims: [128],
    schedule: { blockK: 64 },
  }),
  checkOnly('res_dilated0', { params: { dilation: 0 }, dtypes: ['bf16'], headDims: [64] }),
  checkOnly('res_dilated_big', { params: { dilation: 1500 }, dtypes: ['bf16'], headDims: [64] }),
  checkOnly('res_dilated_window', {
    source: 'bench/cuda/kernels/dilated_window.attn',
    params: { window: 300, dilation: 3 },
    dtypes: ['bf16'],
    headDims: [64, 128],
  }),
];

export default [...tuned, ...residueChecks];
