// Issue 13 item 2, round 17: the document mask (and sinks + window) on the wgmma-ws consumers with
// the dense default's wsTweaks. The defaults (schedule-preferred.ts) give document FlashAttention-
// 3's consumers and the producer walk but none of the tweaks the dense masks gained 1.4× from
// (round 3: untweaked 9.69 → 6.63 ms full), and sinks + window the serial walk. Candidates, bf16
// D = 128, for run-table.sh:
//   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/doc-list.mjs --out bench/build/cuda-doc
//   BUILD=bench/build/cuda-doc bash bench/cuda/run-table.sh 16384,32768
import { candidateEntries } from './tune-list.mjs';

const ws = (blockK, extra = {}) => ({
  engine: 'wgmma-ws',
  blockQ: 128,
  blockK,
  threads: 384,
  stages: 2,
  ...extra,
});
const common = ['splitKv', 'fastExp', 'lazyRescale', 'zeroInit', 'pvN128'];
const fa3Tweaks = [...common, 'rescaleInTurn', 'foldScale'];
const walk = { wsProducerWalk: true };
// splitKv (K and V on their own barriers) does not combine with the producer's walk.
const walkTweaks = fa3Tweaks.filter((t) => t !== 'splitKv');

export const docCandidates = [
  { id: 'default', defaultSchedule: true },
  { id: 'walk_fa3_tw', schedule: ws(128, { ...walk, wsConsumers: 'fa3', wsTweaks: walkTweaks }) },
  // On document (per-key values) racecheck reported hazards in round 17: refused there since.
  {
    id: 'walk_ov_tw',
    schedule: ws(128, { ...walk, wsConsumers: 'overlap', wsTweaks: walkTweaks }),
    only: ['sink_window'],
  },
  { id: 'fa3_tw_ballot', schedule: ws(128, { wsConsumers: 'fa3', wsTweaks: fa3Tweaks, tileScan: 'ballot' }) },
  { id: 'walk_fa3_tw_k64', schedule: ws(64, { ...walk, wsConsumers: 'fa3', wsTweaks: walkTweaks }) },
  // Round 17, second pass on document: 112-key tiles, and 96-key tiles with three stages (three at
  // 128 keys do not fit beside the walk's static ring: call 15, refused since).
  ...[
    ['walk_fa3_tw_k112', ws(112, { ...walk, wsConsumers: 'fa3', wsTweaks: walkTweaks })],
    ['walk_fa3_tw_k96_s3', ws(96, { ...walk, stages: 3, wsConsumers: 'fa3', wsTweaks: walkTweaks })],
  ].map(([id, schedule]) => ({ id, schedule, only: ['document'] })),
  {
    id: 'walk_serial_tw',
    schedule: ws(128, {
      ...walk,
      wsTweaks: ['fastExp', 'lazyRescale', 'zeroInit', 'pvN128', 'packFirst', 'foldScale'],
    }),
    only: ['sink_window'],
  },
];

export default candidateEntries(['document', 'sink_window'], docCandidates);
