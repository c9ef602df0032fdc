// The device and host pieces of the `qk int8` wgmma-ws kernel (int8qk-wgmma.ts): the s8 wgmma that
// forms S, the TMA maps over the pre-pass's int8 codes, and the producer's stream (Q's codes once,
// then per visited tile K's codes, its block scale and V through the mbarrier ring).
import { kvTmaCoords } from './kv-rows.js';
import { ringAdvanceCode } from './wgmma-ws-body.js';

/** wg_qk8: S (s32) = or += Q·Kᵀ over one k32 step; acc = 0 overwrites (the first step). */
export function s8QkWgmma(n: number): string[] {
  const acc = n / 2;
  const dList = Array.from({ length: acc }, (_, i) => `%${i}`).join(', ');
  const outs = Array.from({ length: acc }, (_, i) => `"+r"(d[${i >> 2}][${i & 3}])`);
  const rows: string[] = [];
  for (let i = 0; i < outs.length; i += 8) rows.push('        ' + outs.slice(i, i + 8).join(', '));
  return [
    `__device__ __forceinline__ void wg_qk8(int (&d)[${n / 8}][4], uint64_t da, uint64_t db, int acc) {`,
    '#if ATTNC_SM90A',
    '  asm volatile(',
    '      "{\\n.reg .pred p;\\n"',
    `      "setp.ne.b32 p, %${acc + 2}, 0;\\n"`,
    `      "wgmma.mma_async.sync.aligned.m64n${n}k32.s32.s8.s8 {${dList}}, %${acc}, %${acc + 1}, p;\\n}\\n"`,
    '      :',
    rows.join(',\n'),
    '      : "l"(da), "l"(db), "r"(acc)',
    '      : "memory");',
    '#endif',
    '}',
    'template <int N>',
    '__device__ __forceinline__ void acc_fence_i(int (&d)[N][4]) {',
    '#pragma unroll',
    '  for (int j = 0; j < N; ++j)',
    '#pragma unroll',
    '    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(d[j][e])::"memory");',
    '}',
  ];
}

/** Host: the codes' 3-D maps (D bytes × rows × heads, box D × box_rows, 128B swizzle) over make_tma_maps. */
export const codeMapsHost: readonly string[] = [
  '// One 128-byte row per token: CU_TENSOR_MAP_DATA_TYPE_UINT8 (0), 128B swizzle, L2 256B promotion.',
  'static int encode_codes(EncodeTiledFn fn, TmaMap* map, const signed char* base, int rows, int heads, int box_rows) {',
  '  const unsigned long long dims[3] = {(unsigned long long)D, (unsigned long long)rows, (unsigned long long)heads};',
  '  const unsigned long long strides[2] = {(unsigned long long)D, (unsigned long long)rows * D};',
  '  const unsigned box[3] = {(unsigned)D, (unsigned)box_rows, 1u};',
  '  const unsigned elem_strides[3] = {1u, 1u, 1u};',
  '  return fn(map, 0, 3, const_cast<signed char*>(base), dims, strides, box, elem_strides, 0, 3, 3, 0);',
  '}',
  '// maps[0] = Q codes, [1] = K codes, [2] = V (the float core fills [2] and its encoder).',
  'static const char* make_qk8_maps(const Args& a, const Qk8Scratch& w, TmaMap* maps) {',
  '  if (const char* why = make_tma_maps(a, maps)) return why;',
  '  EncodeTiledFn encode = nullptr;',
  '  cudaDriverEntryPointQueryResult found;',
  '  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", reinterpret_cast<void**>(&encode), 12000,',
  '                                       cudaEnableDefault, &found) != cudaSuccess || encode == nullptr)',
  '    return "the driver has no cuTensorMapEncodeTiled (TMA needs CUDA 12 and sm_90)";',
  '  if (encode_codes(encode, &maps[0], w.q8, a.Nq, a.B * a.H, BQ) != 0) return "qk int8: cannot describe the Q codes to the TMA unit";',
  '  if (a.Nk > 0 && encode_codes(encode, &maps[1], w.k8, a.Nk, a.B * a.Hkv, BK) != 0)',
  '    return "qk int8: cannot describe the K codes to the TMA unit";',
  '  return nullptr;',
  '}',
];

/**
 * The producer: Q's codes once, then K's codes and V of every visited tile through the ring, with
 * the tile's K scale: loaded while the producer waits for the buffer, stored in the ring before
 * the arrival that publishes the stage (its release orders the store before the consumers'
 * wait), so the consumers read it from shared memory instead of waiting on L2 after S.
 */
export const producerCode: readonly string[] = ringProducerCode(
  'BK * D + BK * DV * (int)sizeof(T)',
  `tma_kv_panels<DV, BK>(Vs + st * (BK * DV), tmv, ${kvTmaCoords('kt * BK', 'b', 'hkv')}, &full_bar[st]);`,
);

/**
 * The producer's loop, shared by producerCode and int8qk-pv-wgmma.ts's pvE4m3ProducerCode: Q's
 * codes once, then per visited tile the K scale, K's codes and V, which differ only in the bytes
 * a stage expects (`stageBytes`) and the statement that loads V's tile (`vLoad`).
 */
export function ringProducerCode(stageBytes: string, vLoad: string): readonly string[] {
  return [
    'int st = 0;',
    'bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes',
    'unsigned ph = 0;',
    'if (lane == 0) {',
    '  mbar_expect_tx(qbar, BQ * D);',
    '  tma_load(reinterpret_cast<T*>(Qs8), tmq, 0, q0, b * a.H + h, qbar);',
    '}',
    'bool kt_full;',
    'for (int kt = next_tile(0, kt_full); kt < nkt; kt = next_tile(kt + 1, kt_full)) {',
    '  const float sk = lane == 0 ? __ldg(qk_sk_head + kt) : 0.f; // in flight during the wait',
    '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
    '  if (lane == 0) {',
    '    qk_sk_ring[st] = sk;',
    `    mbar_expect_tx(&full_bar[st], ${stageBytes});`,
    '    tma_load(reinterpret_cast<T*>(Ks8 + st * (BK * D)), tmk, 0, kt * BK, b * a.Hkv + hkv, &full_bar[st]);',
    `    ${vLoad}`,
    '  }',
    '  __syncwarp();',
    ...ringAdvanceCode,
    '}',
    '(void)kt_full;',
  ];
}
