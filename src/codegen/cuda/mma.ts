// The tensor-core attention core (sm_80+, f16/bf16 in, f32 accumulate), FlashAttention-2 style:
// each warp owns 16 query rows; S = Q·Kᵀ and O += P·V run on mma.sync.m16n8k16 from ldmatrix
// fragments; K/V tiles stream through swizzled shared memory with cp.async, `stages` deep; the
// online softmax stays in registers (base 2, log2 e folded into the score scale). The fused
// modifier and mask apply per accumulator element, whose (row, key) the fragment layout fixes:
// element e of n-tile j of lane (g = lane/4, t = lane%4) is row g + 8·(e/2), key 8j + 2t + e%2.
import { sharedStorage } from '../../ir/formats.js';
import type { CoreExprs } from './exprs.js';
import { mmaDeviceHelpers, pFragmentCode, ROWS_LOADER } from './mma-device.js';
import { coreBody, loopCode, softmaxCode, tileLambdaHead, tileLoaderCode } from './mma-body.js';
import { tileScanBallot } from './mma-tiles.js';
import { indent } from './indent.js';
import type { MmaPlan } from './mma-plan.js';
import type { AttentionCore } from './simt.js';

/** The per-tile body: scores, element step, online softmax, P·V (MASKED: mask and tail checks). */
function tileLambda(e: CoreExprs, plan: MmaPlan): string[] {
  return [
    ...tileLambdaHead,
    // With Q in registers every k-step must unroll (constant fragment index); otherwise 2 at a
    // time, which stops ptxas hoisting all K fragments at once (spills at D = 128).
    plan.qInRegisters ? '#pragma unroll' : '#pragma unroll 2',
    '  for (int ks = 0; ks < D / 16; ++ks) {',
    '    unsigned qa[4];',
    '    if constexpr (Q_REGS) { qa[0] = qf[ks][0]; qa[1] = qf[ks][1]; qa[2] = qf[ks][2]; qa[3] = qf[ks][3]; }',
    '    else ldsm_x4(qa, Qs + swz<D>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));',
    '#pragma unroll',
    '    for (int j = 0; j < NT; j += 2) {',
    '      unsigned kf[4]; // n-tiles j and j+1 of Kᵀ, k-step ks',
    '      ldsm_x4(kf, Kb + swz<D>(j * 8 + (lane & 7) + (lane >> 4) * 8, ks * 16 + ((lane >> 3) & 1) * 8));',
    '      mma16816(s[j], qa, kf[0], kf[1]);',
    '      mma16816(s[j + 1], qa, kf[2], kf[3]);',
    '    }',
    '  }',
    ...indent(softmaxCode(e), '  '),
    '  // P·V: the score accumulators of n-tiles 2kv, 2kv+1 are exactly the A fragment of k-step kv.',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    ...pFragmentCode('s', '    '),
    '#pragma unroll',
    '    for (int n = 0; n < DV / 8; n += 2) {',
    '      unsigned vf[4]; // n-tiles n and n+1 of V, k-step kv (transposed: V is [key][dv])',
    '      ldsm_x4_t(vf, Vb + swz<DV>(kv * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, n * 8 + (lane >> 4) * 8));',
    '      mma16816(o[n], pa, vf[0], vf[1]);',
    '      mma16816(o[n + 1], pa, vf[2], vf[3]);',
    '    }',
    '  }',
    '};',
  ];
}

function qFragments(): string[] {
  return [
    "// This warp's 16 rows of Q as A fragments (qf), one per 16-wide k-step, if they stay in",
    '// registers; otherwise each tile re-reads them from shared memory (wide heads: fewer registers).',
    'if constexpr (Q_REGS) {',
    '#pragma unroll',
    '  for (int ks = 0; ks < D / 16; ++ks)',
    '    ldsm_x4(qf[ks], Qs + swz<D>(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, ks * 16 + (lane >> 4) * 8));',
    '}',
  ];
}

export function mmaCore(plan: MmaPlan): AttentionCore {
  return {
    id: 'mma',
    render: ({ kernel, exprs: e, entry }) => {
      const s = kernel.schedule;
      const code = [
        `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, WARPS = ${plan.warps}, THREADS = WARPS * 32;`,
        "constexpr int NT = BK / 8; // key n-tiles of a warp's score block",
        `constexpr bool Q_REGS = ${plan.qInRegisters}; // Q fragments held in registers across tiles`,
        'static_assert(BQ == 16 * WARPS && BK % 16 == 0 && D % 64 == 0 && DV % 64 == 0, "mma tiling");',
        '',
        ...mmaDeviceHelpers(sharedStorage(kernel.formats)),
        ...tileLoaderCode(kernel, ROWS_LOADER),
        '',
        `extern "C" __global__ void __launch_bounds__(THREADS) ${entry}(const Args a, const float qscale) {`,
        ...coreBody(
          kernel,
          e,
          {
            smem: [
              'extern __shared__ float4 smem4[];',
              'T* Qs = reinterpret_cast<T*>(smem4); // [BQ][D], swizzled',
              `T* Ks = Qs + BQ * D;                  // [${plan.stages}][BK][D]`,
              `T* Vs = Ks + ${plan.stages} * BK * D;              // [${plan.stages}][BK][DV]`,
            ],
            qLoad: 'load_rows',
            tile: ['unsigned qf[Q_REGS ? D / 16 : 1][4];', ...tileLambda(e, plan)],
          },
          loopCode(e, plan.stages, tileScanBallot(kernel), {
            loader: 'load_rows',
            afterWait: [],
            qInit: qFragments(),
          }),
        ),
      ];
      return {
        code: code.join('\n'),
        threads: s.threads,
        smemBytes: plan.smemBytes,
        vectorElems: 8,
        mapping: {
          core: 'mma',
          instruction: `mma.sync.m16n8k16.${sharedStorage(kernel.formats)}`,
          warps: plan.warps,
          rowsPerWarp: 16,
          stages: plan.stages,
          swizzle: '16B-chunk xor row%8',
          globalVectorElems: 8,
        },
      };
    },
  };
}
