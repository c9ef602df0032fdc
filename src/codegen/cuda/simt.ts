// The SIMT flash-attention core: FMA units only, f32 everywhere on chip. One block per
// (q-tile, head, batch); K/V tiles staged in shared memory as f32; online softmax in base 2.
// A core is the part of the kernel a tensor-core variant replaces: it gets the rendered
// expressions (exprs.ts) and the shared prelude (storage type T, to_f32/from_f32, VecT, Flag,
// Args, helpers) and must provide `<entry>(const Args a, const float qscale)` launched on grid
// [cdiv(Nq, blockQ), H, B] with `threads` threads and `smemBytes` of dynamic shared memory.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { CoreExprs } from './exprs.js';
import { cudaDequantCode, quantHeadDecl } from './dequant.js';
import { simtLoadTile } from './kv-load-simt.js';
import { cudaLayout } from './layout.js';
import { kvHeadPtrDecls } from './kv-rows.js';
import type { SimtPlan } from './plan.js';
import { routedOf, routeRowState } from './routing-attn.js';
import { tileLambda, tileLoop } from './simt-tile.js';
import { indent } from './indent.js';
import {
  int8QkHelpers,
  int8QkQuantizeKTile,
  int8QkQuantizeQ,
  int8QkScaleScores,
  int8QkSetup,
} from './int8qk-simt.js';

export interface CoreSpec {
  readonly kernel: AttentionKernel;
  readonly exprs: CoreExprs;
  readonly entry: string;
}

export interface CoreOutput {
  readonly code: string;
  readonly threads: number;
  readonly smemBytes: number;
  /** Global-memory vector width (elements) of q/k/v/out: the launcher checks their alignment. */
  readonly vectorElems: number;
  /** Human-readable mapping, for the manifest. */
  readonly mapping: Readonly<Record<string, number | string>>;
}

export interface AttentionCore {
  readonly id: string;
  render(spec: CoreSpec): CoreOutput;
}

/** `kg` / `vg`: head pointers of float caches, dequantizing handles of quantized ones. */
function headDecls(kernel: AttentionKernel): string[] {
  const [k, v] = kvHeadPtrDecls({ k: 'kg', v: 'vg' }, 'b', 'hkv', kernel.formats.paged !== undefined);
  const f = kernel.formats;
  return [quantHeadDecl('k', f.k, 'b', 'hkv') ?? k!, quantHeadDecl('v', f.v, 'b', 'hkv') ?? v!];
}

export function simtCore(plan: SimtPlan): AttentionCore {
  return { id: 'simt', render: (spec) => renderSimt(plan, spec) };
}

function renderSimt(plan: SimtPlan, { kernel, exprs: e, entry }: CoreSpec): CoreOutput {
  const qk = kernel.qkInt8;
  // Its K tiles are quantized in the plain tile loop only (int8qk-support.ts refuses routing).
  if (qk && routedOf(e)) throw new Error('internal: qk int8 with a routed tile loop');
  const code = [
    ...simtConstants(kernel, plan),
    ...simtLoadTile(),
    ...(qk ? int8QkHelpers() : []),
    ...cudaDequantCode(kernel.formats, cudaLayout(kernel).field),
    '',
    ...entryHead(kernel, e, entry),
    '',
    ...rowSetup(e, qk !== undefined),
    ...(qk ? indent(int8QkQuantizeQ(), '  ') : []),
    '',
    ...(routedOf(e) && e.mode !== 'empty' ? indent(routeRowState('ROWS', 'row0 + r'), '  ') : []),
    // An all-empty mask visits no tile: what only the tile loop reads is cast to void (nvcc -Werror).
    ...(e.mode === 'empty'
      ? ['  (void)(Vs == Ks); (void)qr[0][0]; (void)KC; (void)GV; (void)LANES; (void)LOG2E;']
      : indent(tileLambda(e, qk ? int8QkScaleScores : []), '  ')),
    '',
    ...indent(tileLoop(e, qk ? int8QkQuantizeKTile(qk) : []), '  '),
    '',
    ...rowOutputs(kernel),
    '}',
  ];
  return {
    code: code.join('\n'),
    threads: kernel.schedule.threads,
    smemBytes: plan.smemBytes,
    vectorElems: plan.gv,
    mapping: {
      core: 'simt',
      rowsPerThread: plan.rows,
      threadsPerRow: plan.tpr,
      smemVectorWidth: plan.vw,
      keysPerSoftmaxStep: plan.kc,
      globalVectorElems: plan.gv,
    },
  };
}

/** The tile shape as constexprs (plan.ts chose it), and ld_smem: a shared-memory vector load. */
function simtConstants(kernel: AttentionKernel, plan: SimtPlan): string[] {
  const s = kernel.schedule;
  return [
    `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, THREADS = ${s.threads};`,
    `constexpr int ROWS = ${plan.rows}, TPR = ${plan.tpr}, VW = ${plan.vw}, KC = ${plan.kc}, GV = ${plan.gv};`,
    'constexpr unsigned LANES = THREADS >= 32 ? 0xffffffffu : ((1u << THREADS) - 1u);',
    'static_assert(BQ == ROWS * (THREADS / TPR), "rows x groups must cover the q tile");',
    '',
    'template <int N>',
    '__device__ __forceinline__ void ld_smem(float (&dst)[N], const float* src) {',
    '  if constexpr (N == 4) {',
    '    const float4 t = *reinterpret_cast<const float4*>(src);',
    '    dst[0] = t.x; dst[1] = t.y; dst[2] = t.z; dst[3] = t.w;',
    '  } else if constexpr (N == 2) {',
    '    const float2 t = *reinterpret_cast<const float2*>(src);',
    '    dst[0] = t.x; dst[1] = t.y;',
    '  } else {',
    '    dst[0] = src[0];',
    '  }',
    '}',
    '',
  ];
}

/** The entry's signature and its block-wide state: shared K/V tiles, hoists, indices, head pointers. */
function entryHead(kernel: AttentionKernel, e: CoreExprs, entry: string): string[] {
  const decls = [
    ...e.rowHoists.map((h) => `${h.type} ${h.name}[ROWS];`),
    ...e.keyHoists.map((h) => `__shared__ ${h.type} ${h.name}[BK];`),
  ];
  return [
    `extern "C" __global__ void __launch_bounds__(THREADS) ${entry}(const Args a, const float qscale) {`,
    '  extern __shared__ float4 smem4[];',
    '  float* Ks = reinterpret_cast<float*>(smem4); // [BK][D]',
    '  float* Vs = Ks + BK * D;                      // [BK][DV]',
    ...indent(decls, '  '),
    '  const int tid = threadIdx.x, g = tid % TPR;',
    '  const int row0 = blockIdx.x * BQ + (tid / TPR) * ROWS;',
    '  const int h = blockIdx.y, b = blockIdx.z;',
    '  const int hkv = h / (a.H / a.Hkv);',
    ...indent(headDecls(kernel), '  '),
    '  (void)kg; (void)vg; (void)b; (void)h;',
    ...(kernel.qkInt8 ? indent(int8QkSetup(kernel.qkInt8), '  ') : []),
  ];
}

/** Per row of the thread: its q dims loaded (pre-scaled unless qk int8), the softmax state reset. */
function rowSetup(e: CoreExprs, qkInt8: boolean): string[] {
  return [
    "  // This lane's dims (chunks g, g+TPR, … of VW) of each of its rows: q pre-scaled, accumulators.",
    '  float qr[ROWS][D / TPR], acc[ROWS][DV / TPR], m[ROWS], l[ROWS];',
    '#pragma unroll',
    '  for (int r = 0; r < ROWS; ++r) {',
    '    const int i = row0 + r;',
    '    const T* qrow = q_row(a, b, h, i);',
    '#pragma unroll',
    '    for (int t = 0; t < D / (VW * TPR); ++t) {',
    '      const VecT<VW> x = i < a.Nq ? *reinterpret_cast<const VecT<VW>*>(qrow + VW * (g + TPR * t)) : VecT<VW>::zero();',
    '#pragma unroll',
    // qk int8 quantizes q as stored; qscale joins the scores through its factor.
    `      for (int u = 0; u < VW; ++u) qr[r][t * VW + u] = to_f32(x.v[u])${qkInt8 ? '' : ' * qscale'};`,
    '    }',
    '#pragma unroll',
    '    for (int d = 0; d < DV / TPR; ++d) acc[r][d] = 0.f;',
    '    m[r] = -INFINITY;',
    '    l[r] = 0.f;',
    ...(e.rowStmts.length
      ? [
          '    {',
          '      const int qpos = i + a.q_offset;',
          '      (void)qpos;',
          ...indent(e.rowStmts, '      '),
          '    }',
        ]
      : []),
    '  }',
  ];
}

/** Per row of the thread: out = acc / l, and the row's lse where the kernel has one. */
function rowOutputs(kernel: AttentionKernel): string[] {
  return [
    '  // out = acc / l, lse = ln(sum exp). l == 0: no allowed key (out 0, lse -inf). A NaN or +inf',
    '  // score reaches l through exp2 (NaN - base, inf - inf), so l is NaN and so are out and lse.',
    '#pragma unroll',
    '  for (int r = 0; r < ROWS; ++r) {',
    '    const int i = row0 + r;',
    '    if (i >= a.Nq) continue;',
    ...(kernel.outputs.lse
      ? ['    const size_t row = (size_t)(b * a.H + h) * a.Nq + i; // lse stays packed']
      : []),
    '    const float inv = l[r] == 0.f ? 0.f : 1.f / l[r];',
    '    T* orow = out_row(a, b, h, i);',
    '#pragma unroll',
    '    for (int t = 0; t < DV / (VW * TPR); ++t) {',
    '      VecT<VW> o;',
    '#pragma unroll',
    '      for (int u = 0; u < VW; ++u) o.v[u] = from_f32(acc[r][t * VW + u] * inv);',
    '      *reinterpret_cast<VecT<VW>*>(orow + VW * (g + TPR * t)) = o;',
    '    }',
    ...(kernel.outputs.lse
      ? [
          '    if (a.lse != nullptr && g == 0) a.lse[row] = l[r] == 0.f ? -INFINITY : (m[r] + log2f(l[r])) * LN2;',
        ]
      : []),
    '  }',
  ];
}
