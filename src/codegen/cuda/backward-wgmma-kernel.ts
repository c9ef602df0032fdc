// The dK/dV(/dQ) kernel of the Hopper backward (backward-wgmma.ts): a CTA per (key tile of BN = 128
// keys, kv head, batch), two warpgroups of 64 keys each, over the q-tiles (BM = 64 queries) of
// every head of its GQA group, so dK and dV are summed over the group in registers. K and V stay
// in shared memory; Q, dO, lse and delta of the next non-empty q-tile stream in by cp.async while
// this one computes (double buffer). Tiles are 128B-swizzled 64-wide panels (wgmma's layout).
import type { BackwardMmaExprs } from './backward-mma-exprs.js';
import { dkdvOverGroup, keyTileLoads, keyTileSetup, statsSmemDecls } from './backward-dkdv-parts.js';
import { qTileLoop } from './backward-dkdv-loop.js';
import { wgmmaTileLambda } from './backward-wgmma-tile.js';
import { NO_TUNE, type BackwardWgmmaTune } from './backward-wgmma-tune.js';
import { hoistBytes, type SmemNeeds } from './backward-mask-hoists.js';

/** Dynamic shared memory of the kernel (bytes), with 1024 bytes of slack for the alignment. */
export function wgmmaSmemBytes(d: number, dv: number, x: SmemNeeds): number {
  const [BM, BN, THREADS] = [64, 128, 256];
  const tiles = 2 * (BN * d + BN * dv + 2 * BM * d + 2 * BM * dv + BM * BN);
  const stats = 4 * 4 * BM + hoistBytes(x.dkdvMask, BM, BN) + x.order.positionBytes(BM, BN);
  return 1024 + tiles + stats + 4 * x.slots * THREADS * (BM / 8) * 4;
}

/** The kernel's shared-memory tiles, each on a 1024-byte boundary (wgmma swizzles by address bits). */
export function wgmmaSmemTiles(x: BackwardMmaExprs): string[] {
  return [
    '  extern __shared__ __align__(1024) unsigned char smem_raw[];',
    '  // wgmma swizzles by address bits: every tile starts on a 1024-byte boundary.',
    '  T* Ks = reinterpret_cast<T*>(smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u)); // [BN][D] panels',
    '  T* Vs = Ks + BN * D;                 // [BN][DV]',
    '  T* Qs = Vs + BN * DV;                // [2][BM][D]',
    '  T* Os = Qs + 2 * BM * D;             // [2][BM][DV]: dO',
    '  T* Ss = Os + 2 * BM * DV;            // [BM][BN]: dS, [query][key] panels',
    ...statsSmemDecls(x),
  ];
}

export function wgmmaDkdvKernel(
  x: BackwardMmaExprs,
  deterministic: boolean,
  tune: BackwardWgmmaTune = NO_TUNE,
): string[] {
  const np = deterministic ? 0 : x.grad.params.length;
  const head = qTileLoop(x, {
    loader: 'load_panel',
    tile: () => wgmmaTileLambda(x, deterministic, undefined, tune),
    afterWait: [
      'proxy_fence(); // cp.async wrote through the generic proxy; wgmma reads through the async one',
    ],
    call: [
      `tile(!full || k_tail || (qt + 1) * BM > ${x.order.nq}, qt, buf); // full tiles skip the predicate`,
    ],
  });
  return [
    '__global__ void __launch_bounds__(THREADS, 1) bwd_dkdv(const Args a) {',
    '#if !ATTNC_SM90A',
    '  __trap(); // the compute_90 PTX image: no wgmma there',
    '#endif',
    ...wgmmaSmemTiles(x),
    '  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4, wg = warp / 4;',
    '  (void)wg;',
    ...keyTileSetup(x),
    "  const T* Kw = Ks + wg * 64 * 64; // this warpgroup's 64 keys: rows 64·wg.. of each panel",
    '  const T* Vw = Vs + wg * 64 * 64;',
    ...keyTileLoads(x, 'load_panel', 'tid'),
    '  cp_commit();',
    ...dkdvOverGroup(head, np, x.order),
    '}',
  ];
}
