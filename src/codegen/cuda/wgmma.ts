// The Hopper (sm_90a) tensor-core core: each warpgroup (4 warps, 128 threads) owns 64 query rows
// and runs both products as warpgroup MMAs — S = Q·Kᵀ with Q and K from shared memory by
// descriptor (m64n{BK}k16), O += P·V with P from registers and V from shared memory (m64n{DV}k16,
// V MN-major). Tiles sit in the 128-byte-swizzle panel layout wgmma reads; cp.async double-buffers
// K/V as in the mma core (TMA and warp specialization are later steps, docs/PERFORMANCE.md). The
// accumulators keep the mma.sync per-n-tile layout, so mask, softmax and epilogue are mma-body's.
import { sharedStorage } from '../../ir/formats.js';
import { coreBody, loopCode, softmaxCode, tileLambdaHead, tileLoaderCode } from './mma-body.js';
import { tileScanBallot } from './mma-tiles.js';
import type { CoreExprs } from './exprs.js';
import { wgmmaDeviceHelpers } from './wgmma-device.js';
import type { WgmmaPlan } from './wgmma-plan.js';
import type { AttentionCore } from './simt.js';
import { patchActive } from './patch.js';
import { patchMinBlocks, patchTweaksOf } from './patch-tweaks.js';
import { indent } from './indent.js';
import { pFragmentCode } from './mma-device.js';

function tileLambda(e: CoreExprs): string[] {
  return [
    "// This warpgroup's 64 rows of Q: rows 64·wg.. of each panel.",
    'const T* Qw = Qs + (warp / 4) * 64 * 64;',
    ...tileLambdaHead,
    '  // S = Q·Kᵀ, both K-major: a k16 step is 32 bytes along a panel row, every 4th a new panel.',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int ks = 0; ks < D / 16; ++ks)',
    '    wg_qk(s, desc128(Qw + (ks >> 2) * (BQ * 64) + (ks & 3) * 16, 16),',
    '          desc128(Kb + (ks >> 2) * (BK * 64) + (ks & 3) * 16, 16));',
    '  wg_commit();',
    '  wg_wait0();',
    '  acc_fence(s);',
    ...indent(softmaxCode(e), '  '),
    '  // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major, 16 keys',
    '  // a step (two 8-row groups), one dv panel per wgmma.',
    '  acc_fence(o);',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    ...pFragmentCode('s', '    '),
    '    wg_pv<0>(o, pa, desc128(Vb + kv * 16 * 64, 1024));',
    '    if constexpr (DV == 128) wg_pv<1>(o, pa, desc128(Vb + BK * 64 + kv * 16 * 64, 1024));',
    '  }',
    '  wg_commit();',
    '  wg_wait0();',
    '  acc_fence(o);',
    '};',
  ];
}

export function wgmmaCore(plan: WgmmaPlan): AttentionCore {
  return {
    id: 'wgmma',
    render: ({ kernel, exprs: e, entry }) => {
      const s = kernel.schedule;
      // patchTweaks blocksN: more blocks per SM for patched kernels (patch-tweaks.ts).
      const minBlocks = patchActive(kernel) ? patchMinBlocks(patchTweaksOf(kernel)) : 1;
      const code = [
        `constexpr int BQ = ${s.blockQ}, BK = ${s.blockK}, WARPS = ${plan.warpgroups * 4}, THREADS = WARPS * 32;`,
        "constexpr int NT = BK / 8; // key n-tiles of a warp's score block",
        'static_assert(BQ == 16 * WARPS && BQ % 64 == 0 && BK % 16 == 0, "wgmma tiling");',
        'static_assert((D == 64 || D == 128) && (DV == 64 || DV == 128), "wgmma head dims");',
        '',
        ...wgmmaDeviceHelpers(s, sharedStorage(kernel.formats)),
        ...tileLoaderCode(kernel, { name: 'load_panel', swizzle: 'pswz<ROWS>(r, c * 8)' }),
        '',
        `extern "C" __global__ void __launch_bounds__(THREADS, ${minBlocks}) ${entry}(const Args a, const float qscale) {`,
        ...coreBody(
          kernel,
          e,
          {
            smem: [
              '#if !ATTNC_SM90A',
              '__trap(); // the compute_90 PTX image: no wgmma there',
              '#endif',
              'extern __shared__ __align__(1024) unsigned char smem_raw[];',
              '// wgmma swizzles by address bits: every tile starts on a 1024-byte boundary.',
              'T* Qs = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u));',
              `T* Ks = Qs + BQ * D;                  // [${plan.stages}][BK][D], 64-wide panels`,
              `T* Vs = Ks + ${plan.stages} * BK * D; // [${plan.stages}][BK][DV], 64-wide panels`,
            ],
            qLoad: 'load_panel',
            tile: tileLambda(e),
          },
          loopCode(e, plan.stages, tileScanBallot(kernel), {
            loader: 'load_panel',
            afterWait: ['proxy_fence();'],
            qInit: [],
            hoistOnMaskedTilesOnly: true,
          }),
        ),
      ];
      return {
        code: code.join('\n'),
        threads: s.threads,
        smemBytes: plan.smemBytes,
        vectorElems: 8,
        mapping: {
          core: 'wgmma',
          instruction: `wgmma.mma_async.m64nNk16.${sharedStorage(kernel.formats)}`,
          warpgroups: plan.warpgroups,
          rowsPerWarpgroup: 64,
          stages: plan.stages,
          swizzle: '128B (64-wide panels)',
          globalVectorElems: 8,
        },
      };
    },
  };
}
