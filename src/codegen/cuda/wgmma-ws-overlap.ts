// The consumers' loop with intra-warpgroup overlap (FlashAttention-3's two-stage pipelining):
// while O += P·V of tile j runs on the tensor cores, S = Q·Kᵀ of the next tile j' is issued too,
// and its mask and softmax run on the FMA/MUFU units as soon as S lands — so exp2 hides under the
// P·V wgmma instead of following it. O is rescaled by the new row max only after P·V of j has
// retired (its accumulators belong to the wgmma until then), and P of j stays untouched in its
// registers until then as well: the softmax of j' leaves its probabilities in S (f32), and they
// are packed into P's one register set only after P·V of j has retired — FlashAttention-3's
// order, which keeps a second P set (BK/4 registers a thread, 44 at 176 keys) out of the budget.
// With ping-pong (Schedule.wsConsumers 'fa3') each warpgroup issues its pair of matrix products
// (the next S = Q·Kᵀ and this P·V) in its turn, so one warpgroup's softmax runs under the other's.
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';
import { routedTileBits } from './routing-attn.js';
import { hoistViews, readTileCode } from './wgmma-ws-walk.js';
import {
  foldsScale,
  rescaleOCode,
  rowSoftmaxCode,
  softmaxTweaked,
  wsElementCode,
} from './wgmma-ws-softmax.js';
import { pvIssueCode, qkIssueCode, releaseK, type WsTweaks } from './wgmma-ws-tweaks.js';
import { elementLoopCode } from './mma-body.js';

/** How the overlapped loop is built: ping-pong turns, and the producer's tile walk. */
export interface OverlapOptions {
  readonly pingpong: boolean;
  readonly walk: boolean;
  /** Schedule.wsTweaks (wgmma-ws-tweaks.ts). */
  readonly tweaks: WsTweaks;
  /** Another S = Q·Kᵀ than the 16-bit one (qk int8: int8qk-wgmma.ts); absent: the 16-bit one. */
  readonly qk?: OverlapQk;
}

/** A different S = Q·Kᵀ: how it is issued, and how its accumulators become f32 scores. */
export interface OverlapQk {
  /** Defines Qw and `issue_qk(float (&s)[NT][4], const int st)` (issue and commit). */
  readonly issue: readonly string[];
  /**
   * First in the softmax lambda (tile kt in buffer st): s made the scores the 16-bit product gives
   * (under foldScale, `fold`, the raw q·k, with the `qs` the exp2 takes).
   */
  readonly scores: (fold: boolean) => readonly string[];
}

/** The wgmma issues of one turn, between the ping-pong barriers when there are any. */
const turn = (pp: boolean, issues: readonly string[]): string[] =>
  pp
    ? [
        "pp_sync(); // the other warpgroup's matrix products are issued",
        ...issues,
        'pp_arrive(); // its turn',
      ]
    : [...issues];

/** Per-key hoists of tile `kt`, computed by the consumers between two consumer-only barriers. */
function keyHoistCode(e: CoreExprs, kt: string, walk: boolean): string[] {
  if (!e.keyHoists.length || walk) return []; // the producer's walk computes them per stage
  return [
    "consumer_sync(); // every consumer is done with the previous tile's values",
    'for (int kk = tid; kk < BK; kk += CTHREADS) {',
    `  const int kpos = a.k_offset + ${kt} * BK + kk;`,
    ...indent(e.keyStmts, '  '),
    '}',
    'consumer_sync();',
  ];
}

/** The row softmax of the untweaked overlapped loop (alpha out; O is rescaled after P·V). */
const untweakedRows = [
  '#pragma unroll',
  '  for (int r = 0; r < 2; ++r) {',
  '    float mx = m[r];',
  '#pragma unroll',
  '    for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));',
  '    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));',
  '    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));',
  '    // A row with nothing allowed yet keeps m = -inf; `base` keeps exp2 away from inf - inf.',
  '    const float base = mx == -INFINITY ? 0.f : mx;',
  '    alpha[r] = exp2f(m[r] - base);',
  '    float sum = 0.f;',
  '#pragma unroll',
  '    for (int j = 0; j < NT; ++j) {',
  '      s[j][2 * r] = exp2f(s[j][2 * r] - base);',
  '      s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - base);',
  '      sum += s[j][2 * r] + s[j][2 * r + 1];',
  '    }',
  '    m[r] = mx;',
  "    l[r] = l[r] * alpha[r] + sum; // this lane's share; the quad is summed once, at the end",
  '  }',
];

/** The lambdas: issue S = Q·Kᵀ, mask + softmax + pack P, issue O += P·V. */
function lambdas(e: CoreExprs, walk: boolean, t: WsTweaks, qk?: OverlapQk): string[] {
  return [
    ...(qk ? qk.issue : issueQk16(t)),
    '// Issues O += P·V of the tile in buffer st: P k-step kv is n-tiles 2kv, 2kv+1 of S; V MN-major.',
    'auto issue_pv = [&](const unsigned (&p)[BK / 16][4], const int st) {',
    '  const T* Vb = Vs + st * (BK * DV);',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    ...indent(pvIssueCode(t, 'p[kv]'), '    '),
    '  }',
    '  wg_commit();',
    '};',
    '// Modifier, tail and mask (MASKED tiles only), then the online softmax (base 2) per row: new',
    '// m and l, the probabilities left in s (f32), and alpha, the factor O must take once P·V of the',
    '// last tile ends.',
    'auto softmax = [&](auto masked, const int kt, const int st, float (&s)[NT][4], float (&alpha)[2]) {',
    '  constexpr bool MASKED = decltype(masked)::value;',
    '  const int kbase = kt * BK;',
    '  (void)kbase;',
    '  (void)st;',
    ...indent(qk ? qk.scores(foldsScale(e, t)) : [], '  '),
    ...indent(walk ? hoistViews(e, true) : [], '  '),
    ...indent(routedTileBits(e), '  '),
    ...indent(elementLoopCode(wsElementCode(e, t)), '  '),
    ...(softmaxTweaked(t) ? indent(rowSoftmaxCode(t, foldsScale(e, t)), '  ') : untweakedRows),
    '};',
    'auto softmax_tile = [&](const int kt, const bool kt_full, const int st, float (&s)[NT][4], float (&alpha)[2]) {',
    '  if ((kt + 1) * BK > a.Nk || !kt_full) softmax(Flag<true>{}, kt, st, s, alpha);',
    '  else softmax(Flag<false>{}, kt, st, s, alpha); // full tile: no predicate',
    '};',
    '// P to 16 bits: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv.',
    'auto pack_p = [&](const float (&s)[NT][4], unsigned (&p)[BK / 16][4]) {',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    '    p[kv][0] = pack2(s[2 * kv][0], s[2 * kv][1]);',
    '    p[kv][1] = pack2(s[2 * kv][2], s[2 * kv][3]);',
    '    p[kv][2] = pack2(s[2 * kv + 1][0], s[2 * kv + 1][1]);',
    '    p[kv][3] = pack2(s[2 * kv + 1][2], s[2 * kv + 1][3]);',
    '  }',
    '};',
  ];
}

/** Qw and issue_qk of the 16-bit S = Q·Kᵀ. */
const issueQk16 = (t: WsTweaks): string[] => [
  "// This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.",
  'const T* Qw = Qs + (warp / 4) * 64 * 64;',
  '// Issues S = Q·Kᵀ of the tile in buffer st (K-major: a k16 step is 32 bytes along a panel row).',
  'auto issue_qk = [&](float (&s)[NT][4], const int st) {',
  '  const T* Kb = Ks + st * (BK * D);',
  ...(t.zeroInit
    ? []
    : ['#pragma unroll', '  for (int j = 0; j < NT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;']),
  '  wg_fence();',
  ...indent(qkIssueCode(t), '  '),
  '  wg_commit();',
  '};',
];

/** The first visited tile: classified here, or read from the ring (its stage waited for). */
function firstTile(walk: boolean): string[] {
  if (!walk) return ['bool kt_full, nk_full;', 'int kt = next_tile(0, kt_full);'];
  return [
    'mbar_wait(&full_bar[st], ph);',
    ...readTileCode('kt0', 'kt0_full', 'st'),
    'int kt = kt0;',
    'bool kt_full = kt0_full;',
  ];
}

/**
 * The overlapped loop. Invariant at the top of an iteration: P of tile kt (buffer st) is packed,
 * m and l include it, O holds every earlier tile (scaled to m).
 */
export function overlapLoopCode(e: CoreExprs, o: OverlapOptions): string[] {
  return [
    ...lambdas(e, o.walk, o.tweaks, o.qk),
    'mbar_wait(qbar, 0);',
    'int st = 0;',
    'unsigned ph = 0;',
    ...firstTile(o.walk),
    'if (kt < nkt) {',
    '  unsigned p[BK / 16][4];',
    '  float alpha[2];',
    ...firstSoftmax(e, o),
    '  for (;;) {',
    ...lastTileExit(o),
    ...overlappedStep(e, o),
    '  }',
    '}',
  ];
}

// splitKv: V of tile kt has its own barrier; K goes back once its S has landed.
const waitVOf = (t: WsTweaks): string[] => (t.splitKv ? ['mbar_wait(&full_v[st], ph);'] : []);
// rescaleInTurn: the pending alpha of tile kt reaches O just before its P·V is issued.
const rescaleTurnOf = (t: WsTweaks): string[] => (t.rescaleInTurn ? rescaleOCode(t) : []);

// The next stage (st2, ph2) of the ring.
const STAGE2 = [
  'int st2 = st + 1;',
  'unsigned ph2 = ph;',
  'if (st2 == STAGES) {',
  '  st2 = 0;',
  '  ph2 ^= 1u;',
  '}',
];

/** S of the first tile and its softmax, P packed: O is still 0, so alpha needs no applying. */
function firstSoftmax(e: CoreExprs, o: OverlapOptions): string[] {
  return [
    '  {',
    '    float s[NT][4];',
    ...(o.walk ? [] : ['    mbar_wait(&full_bar[st], ph);']),
    ...indent(turn(o.pingpong, ['issue_qk(s, st);']), '    '),
    ...indent(keyHoistCode(e, 'kt', o.walk), '    '),
    '    wg_wait<0>();',
    '    acc_fence(s);',
    ...indent(o.tweaks.splitKv ? releaseK('st') : [], '    '),
    '    softmax_tile(kt, kt_full, st, s, alpha); // O is still 0: alpha needs no applying',
    '    pack_p(s, p);',
    '  }',
  ];
}

/** The next tile (classified here, or read from the ring); when there is none, the last P·V alone. */
function lastTileExit(o: OverlapOptions): string[] {
  const t = o.tweaks;
  const next = o.walk
    ? [
        'mbar_wait(&full_bar[st2], ph2);',
        ...readTileCode('nk', 'nk_full', 'st2'),
        "if (nk >= nkt) { // the producer's end mark: the last tile's P·V alone",
      ]
    : ['const int nk = next_tile(kt + 1, nk_full);', 'if (nk >= nkt) { // the last tile: its P·V alone'];
  return [
    ...indent(o.walk ? STAGE2 : [], '    '),
    ...indent(next, '    '),
    ...indent(waitVOf(t), '      '),
    ...indent(turn(o.pingpong, [...rescaleTurnOf(t), 'issue_pv(p, st);']), '      '),
    '      wg_wait<0>();',
    '      acc_fence(o);',
    '      break; // (its buffer is never refilled: nothing to release)',
    '    }',
  ];
}

/** The next tile's S issued ahead of this tile's P·V, its softmax while P·V runs, then the hand-over. */
function overlappedStep(e: CoreExprs, o: OverlapOptions): string[] {
  const t = o.tweaks;
  return [
    ...indent(o.walk ? [] : [...STAGE2, 'mbar_wait(&full_bar[st2], ph2);'], '    '),
    ...indent(waitVOf(t), '    '),
    '    float s[NT][4];',
    ...indent(
      turn(o.pingpong, [
        'issue_qk(s, st2); // the next S, ahead of this P·V on the tensor cores',
        ...rescaleTurnOf(t),
        'issue_pv(p, st);',
      ]),
      '    ',
    ),
    ...indent(keyHoistCode(e, 'nk', o.walk), '    '),
    '    wg_wait<1>(); // the next S has landed; P·V may still run',
    '    acc_fence(s);',
    ...indent(t.splitKv ? releaseK('st2') : [], '    '),
    '    softmax_tile(nk, nk_full, st2, s, alpha);',
    '    wg_wait<0>();',
    '    acc_fence(o);',
    "    // This warp's wgmmas have read buffer st: hand it back to the producer.",
    '    __syncwarp();',
    '    if (lane == 0) mbar_arrive(&empty_bar[st]);',
    ...indent(t.rescaleInTurn ? [] : rescaleOCode(t), '    '),
    '    pack_p(s, p); // into the registers P·V of kt has just finished reading',
    '    st = st2;',
    '    ph = ph2;',
    '    kt = nk;',
    '    kt_full = nk_full;',
  ];
}
