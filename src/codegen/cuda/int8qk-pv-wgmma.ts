// `pv e4m3 [smooth v]` on the `qk int8` wgmma-ws kernel (int8qk-wgmma.ts), SageAttention2's P·V:
// the pieces that replace the 16-bit P·V of the serial consumer tile, also with ping-pong
// consumers (wsConsumers 'pingpong': the warpgroups take turns at S = Q·Kᵀ, so one's softmax and
// P8·V8 run under the other's S). The definition is runtime/reference-int8qk-pv.ts; the V codes
// come from the pre-pass (int8qk-pv-prepass.ts).
//
// - V arrives as e4m3 codes, one 128-byte row of BK = 128 keys per channel (a 3-D UINT8 TMA map
//   over the pre-pass's [B·Hkv][DV][NkPad]), so a V tile is laid out as a K tile of codes is and
//   its K-major descriptor is desc128 with 32-byte k32 steps (fp8 wgmma takes only K-major B).
// - P = 448 · exp(s − m) is converted straight from the S accumulators with
//   cvt.rn.satfinite.e4m3x2.f32: the pre-pass permuted the keys within each 32 so that a thread's
//   accumulators of n-tiles 4G..4G+3, in register order, are its A fragment of k-step G.
// - Each tile's P·V (BK / 32 k32 steps) is summed by wgmma into a fresh f32 accumulator, then
//   added to o in f32: fp8 wgmma keeps ~22 mantissa bits in its sums, so the row is not chained.
// - After the loop o becomes o · sv / 448 (+ mean · l with smooth v), before the engine's out = o / l.
import { E4M3_MAX, type PvE4m3 } from '../../ir/pv-e4m3.js';
import type { AttentionKernel, WsTweak } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { ringProducerCode } from './int8qk-wgmma-parts.js';
import { indent } from './indent.js';
import { serialSoftmaxCode } from './wgmma-ws-softmax.js';
import type { WgmmaWsPlan } from './wgmma-ws-plan.js';

/**
 * The wsTweaks the fp8 tile takes: fastExp and the register split (P·V's shape is its own). Not
 * lazyRescale: a row keeping a stale max has p up to 2⁸, and 448·p would saturate e4m3.
 */
export const pvE4m3WsTweaks: readonly WsTweak[] = ['fastExp', 'regs240'];

/** Why this `qk int8` wgmma-ws kernel cannot also run `pv e4m3` (undefined when it can). */
export function pvE4m3WsProblem(kernel: AttentionKernel): string | undefined {
  const s = kernel.schedule;
  const name = `kernel "${kernel.name}": pv e4m3 on the wgmma-ws engine`;
  if (s.blockK !== 128)
    return `${name} needs blockK 128 (one 128-byte row of V codes per channel), got ${s.blockK}`;
  if (s.valueDim !== 64 && s.valueDim !== 128) return `${name} needs valueDim 64 or 128, got ${s.valueDim}`;
  // The overlapped loop holds a second 64-register accumulator (this tile's P8·V8) beside O, the
  // next S and P: it spills at 240 registers (fa3) and, masked, even at 255 (one warpgroup).
  if (s.wsConsumers === 'overlap' || s.wsConsumers === 'fa3')
    return `${name} runs the serial and ping-pong consumer schedules only so far (not overlap, fa3)`;
  const unsupported = (s.wsTweaks ?? []).filter((t) => !pvE4m3WsTweaks.includes(t));
  if (unsupported.length)
    return `${name} takes the wsTweaks ${pvE4m3WsTweaks.join(', ')}; not ${unsupported.join(', ')}`;
  return undefined;
}

/** Device: the e4m3 packing of four P values and the fp8 wgmma of one k32 step of P·V. */
export function pvE4m3Device(valueDim: number): string[] {
  const regs = valueDim / 2;
  const dList = Array.from({ length: regs }, (_, i) => `%${i}`).join(', ');
  const outs = Array.from({ length: regs }, (_, i) => `"+f"(d[${i >> 2}][${i & 3}])`);
  const rows: string[] = [];
  for (let i = 0; i < outs.length; i += 8) rows.push('        ' + outs.slice(i, i + 8).join(', '));
  const a = (i: number) => `%${regs + i}`;
  return [
    '// Four P values (k-positions 4t..4t+3 of one row) as e4m3 bytes, the lowest k in the low byte.',
    '__device__ __forceinline__ unsigned pack_e4m3x4(float x0, float x1, float x2, float x3) {',
    '  unsigned short lo = 0, hi = 0;',
    '#if ATTNC_SM90A',
    '  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(x1), "f"(x0));',
    '  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(hi) : "f"(x3), "f"(x2));',
    '#endif',
    '  return (unsigned)lo | ((unsigned)hi << 16);',
    '}',
    `// d (f32) = or += P (e4m3, registers) · V (e4m3, K-major codes): one k32 step, m64n${valueDim}k32.`,
    `__device__ __forceinline__ void wg_pv8(float (&d)[${valueDim / 8}][4], const unsigned (&pa)[4], uint64_t db, int acc) {`,
    '#if ATTNC_SM90A',
    '  asm volatile(',
    '      "{\\n.reg .pred p;\\n"',
    `      "setp.ne.b32 p, ${a(5)}, 0;\\n"`,
    `      "wgmma.mma_async.sync.aligned.m64n${valueDim}k32.f32.e4m3.e4m3 {${dList}}, {${a(0)}, ${a(1)}, ${a(2)}, ${a(3)}}, ${a(4)}, p, 1, 1;\\n}\\n"`,
    '      :',
    rows.join(',\n'),
    '      : "r"(pa[0]), "r"(pa[1]), "r"(pa[2]), "r"(pa[3]), "l"(db), "r"(acc)',
    '      : "memory");',
    '#endif',
    '}',
  ];
}

/** `p[kg][0..3]` = e4m3(448 · s) of k-step kg, straight from the S accumulators `s` (BK / 32 steps). */
export function packE4m3Code(p: string): string[] {
  return [
    '#pragma unroll',
    'for (int kg = 0; kg < BK / 32; ++kg) {',
    ...[0, 1, 2, 3].map((r) => {
      // Register r: row g (r even) or g + 8 (odd), n-tiles 4kg + (r & 2) and the next one.
      const [j, x] = [`4 * kg + ${r & 2}`, 2 * (r & 1)];
      const v = (jj: string, xx: number) => `${E4M3_MAX}.f * s[${jj}][${xx}]`;
      const [j1] = [`4 * kg + ${(r & 2) + 1}`];
      return `  ${p}[kg][${r}] = pack_e4m3x4(${v(j, x)}, ${v(j, x + 1)}, ${v(j1, x)}, ${v(j1, x + 1)});`;
    }),
    '}',
  ];
}

/** The serial consumer tile with e4m3 P·V (replaces int8qk-wgmma.ts's 16-bit P·V part). */
export function pvE4m3TileCode(e: CoreExprs, plan: WgmmaWsPlan): string[] {
  return [
    ...indent(serialSoftmaxCode(e, plan.tweaks), '  '),
    '  // P8 = e4m3(448 · p): n-tiles 4G..4G+3 of S are, in register order, the A fragment of k-step',
    "  // G (the pre-pass permuted V's keys to match). Packed whole before the first wgmma.",
    '  unsigned pk[BK / 32][4];',
    ...indent(packE4m3Code('pk'), '  '),
    "  // This tile's P8·V8 in its own f32 accumulator (the first k32 step overwrites), then into o.",
    '  float ot[DV / 8][4];',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int kg = 0; kg < BK / 32; ++kg)',
    '    wg_pv8(ot, pk[kg], desc128(reinterpret_cast<const T*>(Vb8 + kg * 32), 16), kg > 0);',
    '  wg_commit();',
    '  wg_wait0();',
    '  acc_fence(ot);',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n)',
    '#pragma unroll',
    '    for (int x = 0; x < 4; ++x) o[n][x] += ot[n][x];',
    '};',
  ];
}

/**
 * After the tile loop: o (Σ P8·V8 in code units) becomes o · sv / 448 per channel, plus mean · l
 * with smooth v (the epilogue then divides by l, so out = P8·V8 · sv / 448 / l + mean).
 */
export function pvE4m3FinishCode(pv: PvE4m3): string[] {
  return [
    '// pv e4m3: back from code units (sv / 448 per channel) and, smoothed, the channel mean · l.',
    'const float* pv_sv_head = pv_sv_g + (size_t)(b * a.Hkv + hkv) * DV;',
    ...(pv.smoothV ? ['const float* pv_mean_head = pv_mean_g + (size_t)(b * a.Hkv + hkv) * DV;'] : []),
    '#pragma unroll',
    'for (int r = 0; r < 2; ++r) {',
    ...(pv.smoothV
      ? [
          '  float sum = l[r];',
          '  sum += __shfl_xor_sync(0xffffffffu, sum, 1);',
          '  sum += __shfl_xor_sync(0xffffffffu, sum, 2);',
        ]
      : []),
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n)',
    '#pragma unroll',
    '    for (int x = 0; x < 2; ++x) {',
    '      const int c = n * 8 + t4 * 2 + x;',
    `      const float u = __ldg(pv_sv_head + c) * (1.f / ${E4M3_MAX}.f);`,
    pv.smoothV
      ? '      o[n][2 * r + x] = fmaf(o[n][2 * r + x], u, __ldg(pv_mean_head + c) * sum);'
      : '      o[n][2 * r + x] *= u;',
    '    }',
    '}',
  ];
}

/** Host: the V codes' 3-D map (NkPad bytes × DV rows × heads, box BK × DV, 128B swizzle). */
export const pvCodeMapHost: readonly string[] = [
  '// V codes: one 128-byte row of BK keys per channel, CU_TENSOR_MAP_DATA_TYPE_UINT8 (0), 128B swizzle.',
  'static const char* make_pv8_map(const Args& a, const Pv8Scratch& w, TmaMap* map) {',
  '  EncodeTiledFn encode = nullptr;',
  '  cudaDriverEntryPointQueryResult found;',
  '  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", reinterpret_cast<void**>(&encode), 12000,',
  '                                       cudaEnableDefault, &found) != cudaSuccess || encode == nullptr)',
  '    return "the driver has no cuTensorMapEncodeTiled (TMA needs CUDA 12 and sm_90)";',
  '  if (a.Nk == 0) return nullptr;',
  '  const unsigned long long pad = (a.Nk + PV8_KEY_PAD - 1) / PV8_KEY_PAD * PV8_KEY_PAD;',
  '  const unsigned long long dims[3] = {pad, (unsigned long long)DV, (unsigned long long)a.B * a.Hkv};',
  '  const unsigned long long strides[2] = {pad, pad * DV};',
  '  const unsigned box[3] = {(unsigned)BK, (unsigned)DV, 1u};',
  '  const unsigned elem_strides[3] = {1u, 1u, 1u};',
  '  if (encode(map, 0, 3, w.vt, dims, strides, box, elem_strides, 0, 3, 3, 0) != 0)',
  '    return "pv e4m3: cannot describe the V codes to the TMA unit";',
  '  return nullptr;',
  '}',
];

/**
 * Host: pv8_prepass(a, stream, &w) points w into the artifact's second scratch (grown on demand,
 * as qk8_prepass's) and launches the two V kernels; null, or why it failed.
 */
export function pvE4m3PrepassHost(pv: PvE4m3): string[] {
  return [
    'static const char* pv8_prepass(const Args& a, cudaStream_t stream, Pv8Scratch* w) {',
    '  const size_t nch = (a.Nk + PV8_CHUNK - 1) / PV8_CHUNK;',
    '  const size_t pad = (a.Nk + PV8_KEY_PAD - 1) / PV8_KEY_PAD * PV8_KEY_PAD;',
    '  auto up = [](size_t n) { return (n + 255) / 256 * 256; }; // TMA bases: 16-byte aligned',
    '  const size_t heads = (size_t)a.B * a.Hkv;',
    '  const size_t vb = up(heads * DV * pad), sb = up(4 * heads * DV), stb = up(4 * heads * nch * 3 * DV);',
    '  static unsigned char* buf = nullptr;',
    '  static size_t cap = 0;',
    '  if (cap < vb + 2 * sb + stb) {',
    '    if (buf != nullptr) cudaFree(buf);',
    '    buf = nullptr;',
    '    cap = 0;',
    '    if (cudaMalloc(&buf, vb + 2 * sb + stb) != cudaSuccess) return "pv e4m3: cannot allocate the scratch of the V codes";',
    '    cap = vb + 2 * sb + stb;',
    '  }',
    '  w->vt = buf;',
    '  w->sv = reinterpret_cast<float*>(buf + vb);',
    '  w->mean = reinterpret_cast<float*>(buf + vb + sb);',
    '  w->stats = reinterpret_cast<float*>(buf + vb + 2 * sb);',
    '  if (a.Nk == 0) return nullptr;',
    '  const dim3 grid((unsigned)nch, (unsigned)heads);',
    '  pv8_value_stats<<<grid, PV8_THREADS, 0, stream>>>(a, w->stats);',
    '  if (cudaGetLastError() != cudaSuccess) return "pv e4m3: the V statistics did not launch";',
    `  pv8_quantize<<<grid, PV8_THREADS, 0, stream>>>(a, *w, ${pv.smoothV ? 'true' : 'false'});`,
    '  if (cudaGetLastError() != cudaSuccess) return "pv e4m3: the V quantize pass did not launch";',
    '  return nullptr;',
    '}',
  ];
}

/** The producer with V codes: int8qk-wgmma-parts.ts's loop, V's tile a [DV][BK] block of code rows. */
export const pvE4m3ProducerCode: readonly string[] = ringProducerCode(
  'BK * D + BK * DV',
  'tma_load(reinterpret_cast<T*>(Vs8 + st * (BK * DV)), tmv, kt * BK, 0, b * a.Hkv + hkv, &full_bar[st]);',
);
