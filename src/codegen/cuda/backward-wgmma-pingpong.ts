// The pingPong knob of the Hopper backward's producer kernel (backward-wgmma-tune.ts; only with
// dqBulk, whose dQ warp and shared-memory block it reuses): the two consumer warpgroups out of
// lockstep. By default they meet twice a tile — "dS complete" before dQ (at D = 128 warpgroup wg
// computes dQ columns 64·wg.. over all 128 keys, reading the other's dS) and "buffer free" at the
// end — so every exp and dS instruction of both sits between the same wgmmas. Here:
//   - dQ over the warpgroup's own 64 keys and all D columns (m64n128 at D = 128, A = its own dS
//     panel), so its barriers are its own (named barrier 2 + wg, 128 threads);
//   - the two partial dQ blocks are summed in shared memory before the dQ warp's one bulk add a
//     row (L2 reduction traffic stays one block a tile): warpgroup 0 stores its partial and
//     arrives on named barrier 4, warpgroup 1 waits there, adds its own and hands the block to
//     the dQ warp (dq_full[0]); warpgroup 0 waits dq_empty[0] before its next store;
//   - Q/dO buffers released per warpgroup (empty_bar counts 2 arrivals);
//   - FlashAttention-3's forward scheduler barriers around the S/dP issue (named barriers 5 + wg:
//     wait for my turn, issue, pass the turn), warpgroup 0 first: the tensor core takes one
//     warpgroup's S/dP while the other does its exp/dS, and warpgroup 0 leading is the order the
//     one-way dQ dependency (0 stores, 1 adds) wants, so warpgroup 1 rarely waits on barrier 4.
// Cost: a D-wide dQ accumulator (64 registers at D = 128, was 32), so dK's wgmma is waited for
// before dQ's are issued. With dqDouble (backward-wgmma-tune.ts) tile it uses block it & 1, named
// barrier 4 or 7 and dq_full / dq_empty[it & 1]: warpgroup 0 waits for the block of tile it - 2.
// Barriers 4 and 7 alternate because warpgroup 0 may store tile it + 1's partial before warpgroup
// 1 has synced on tile it's (the scheduler barriers keep it from getting two tiles ahead).
import { dqAdd2 } from './backward-wgmma-tile.js';
import { indent } from './indent.js';
import type { DkdvOrder } from './backward-residue.js';

/** Device helpers of the knob (with dqBulk's). */
export const pingPongHelpers: readonly string[] = [
  '// pingPong named barriers: 2 + wg a warpgroup alone; 4 "warpgroup 0 stored its dQ partial";',
  '// 5 + wg "warpgroup wg may issue its S/dP wgmmas" (1 is consumer_sync, 0 __syncthreads).',
  '__device__ __forceinline__ void wg_sync() { asm volatile("bar.sync %0, 128;\\n" ::"r"(2 + (int)threadIdx.x / 128) : "memory"); }',
  '__device__ __forceinline__ void pair_sync(int id) { asm volatile("bar.sync %0, 256;\\n" ::"r"(id) : "memory"); }',
  '__device__ __forceinline__ void pair_arrive(int id) { asm volatile("bar.arrive %0, 256;\\n" ::"r"(id) : "memory"); }',
];

/** The S/dP issue's scheduler barriers (wgmmaTileLambda's TileSync.sdp). */
export const PINGPONG_SDP = {
  before: 'pair_sync(5 + wg); // my turn to issue',
  after: "pair_arrive(5 + (wg ^ 1)); // the other warpgroup's turn",
} as const;

/** Before the consumers' first tile: warpgroup 1 gives warpgroup 0 the first turn. */
export const pingPongStart: readonly string[] = ['if (wg == 1) pair_arrive(5);'];

/**
 * dQ over this warpgroup's own keys (A: its dS panel, K-major; B: its K rows, MN-major, LBO the
 * next 64-wide panel) and the partial-sum hand-over; the 8-byte atomics where dq_acc is not
 * 16-byte aligned (each warpgroup adds its partial).
 */
export const pingPongDqStep = (o: DkdvOrder, double = false): string[] => {
  // The block, its handshake barrier and mbarriers: one, or dqDouble's two by tile parity.
  const b = double ? '(it & 1)' : '0';
  const waitEmpty = double
    ? `if (it > 1) mbar_wait(&dq_empty[${b}], ((it >> 1) - 1) & 1); // the dQ warp has read tile it - 2's sum`
    : 'if (it > 0) mbar_wait(&dq_empty[0], (it - 1) & 1); // the dQ warp has read the previous sum';
  const pair = double ? '4 + 3 * (it & 1)' : '4';
  return [
    'float acc[D / 8][4];',
    '#pragma unroll',
    'for (int j = 0; j < D / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;',
    'const int c0 = 0;',
    'const uint64_t sd = opaque(desc128(Ss + wg * (BM * 64), 16)), kb = opaque(desc128(Kw, BN * 128));',
    '// dK done first: its packed dS fragments in flight beside a 64-register dQ accumulator made',
    '// ptxas serialise every wgmma of the kernel (C7512, insufficient registers).',
    'wg_wait<0>();',
    'wg_fence();',
    '#pragma unroll',
    'for (int ks = 0; ks < 4; ++ks) wg_dq_d(acc, sd + du(ks * 16), kb + du(ks * 16 * 64));',
    'wg_commit();',
    'wg_wait<0>();',
    'acc_fence(acc);',
    'if (v4) {',
    `  float* part = dQs + ${double ? `${b} * (BM * DQ_LD) + ` : ''}((warp & 3) * 16 + g) * DQ_LD + t4 * 2;`,
    '  if (wg == 0) {',
    `    ${waitEmpty}`,
    '#pragma unroll',
    '    for (int r = 0; r < 2; ++r)',
    '#pragma unroll',
    '      for (int n = 0; n < D / 8; ++n)',
    '        *reinterpret_cast<float2*>(part + 8 * r * DQ_LD + n * 8) = make_float2(acc[n][2 * r], acc[n][2 * r + 1]);',
    `    pair_arrive(${pair});${double ? ' // barrier 7 for odd tiles: warpgroup 1 may still be on the last one' : ''}`,
    '  } else {',
    `    pair_sync(${pair}); // warpgroup 0 stored its partial`,
    '#pragma unroll',
    '    for (int r = 0; r < 2; ++r)',
    '#pragma unroll',
    '      for (int n = 0; n < D / 8; ++n) {',
    '        float2* p = reinterpret_cast<float2*>(part + 8 * r * DQ_LD + n * 8);',
    '        const float2 o = *p;',
    '        *p = make_float2(o.x + acc[n][2 * r], o.y + acc[n][2 * r + 1]);',
    '      }',
    '    if ((tid & 127) == 0) {',
    `      dq_meta[${double ? `2 * ${b}` : '0'}] = (long long)(${o.qrow('q0')});`,
    `      dq_meta[${double ? `2 * ${b} + 1` : '1'}] = min(BM, ${o.nq} - q0);`,
    '    }',
    '    proxy_fence(); // generic-proxy stores, read by the bulk adds through the async proxy',
    `    mbar_arrive(&dq_full[${b}]); // releases the sum and dq_meta to the dQ warp`,
    '  }',
    '} else {',
    ...indent(
      dqAdd2(o).map((l) => l.replace('n < 8;', 'n < D / 8;')),
      '  ',
    ),
    '}',
  ];
};

/** After the consumers' last tile: warpgroup 1 stops the dQ warp (a row count of -1). */
export const pingPongDone = (double = false): string[] =>
  double
    ? [
        'if (v4 && wg == 1) { // in block it & 1, as tile it would be',
        '  if (it > 1) mbar_wait(&dq_empty[it & 1], ((it >> 1) - 1) & 1);',
        '  if ((tid & 127) == 0) dq_meta[2 * (it & 1) + 1] = -1;',
        '  mbar_arrive(&dq_full[it & 1]);',
        '}',
      ]
    : [
        'if (v4 && wg == 1) {',
        '  if (it > 0) mbar_wait(&dq_empty[0], (it - 1) & 1);',
        '  if ((tid & 127) == 0) dq_meta[1] = -1;',
        '  mbar_arrive(&dq_full[0]);',
        '}',
      ];

/** The dQ step's wgmma over D columns (m64n128 at D = 128, the m64n64 wg_dq at D = 64). */
export const wgDqD: readonly string[] = [
  'template <int N>',
  '__device__ __forceinline__ void wg_dq_d(float (&d)[N][4], uint64_t da, uint64_t db) {',
  '  if constexpr (N == 16) wg_dq128(d, da, db);',
  '  else wg_dq(d, da, db);',
  '}',
];
