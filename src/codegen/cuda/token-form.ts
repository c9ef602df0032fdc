// Which CUDA kernel attends a ranked block routing whose queries are raw (NSA-style: each query
// token picks its own blocks, `route blocks(n) … by q . pool(k)`). The core attention walks
// q-tiles of 64 rows and visits every key tile some row of the tile selected; with raw queries
// the rows choose different blocks, so the union is most of the causal triangle (76.7 ms at 64K
// on the H200, issue #16). The token-granular attention (token-attn.ts) instead gives each warp
// 16 rows = a run of query tokens × the heads of one kv head's GQA group stacked (under `vote
// groups` they share one selection, so a selected block is loaded once for all of them) and
// visits only the blocks those rows selected. This file decides when it runs and in which form:
//   'mma'  — mma.sync m16n8k16 (sm_80+, also sm_90a) for 16-bit storage on a tensor-core engine;
//   'simt' — the same walk and softmax with FMA dot products, for f32 storage and the simt engine
//            (the CPU emulator runs it in CI, with identical selection semantics).
// Anything else (pooled queries, quantized K/V, masks whose hoisted per-key values or residue /
// patch row orders assume one head per block) keeps the core attention.
import { sharedStorage, hasQuantizedKv } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { isRankedBlocks } from '../../ir/routing.js';
import { kernelSlots } from '../common.js';
import { coreExprs, type CoreExprs } from './exprs.js';
import { cudaLayout } from './layout.js';
import { cudaRoutingPath } from './routing-case.js';
import { exactMulOf } from './rules.js';

export type TokenForm = 'mma' | 'simt';

/**
 * Dynamic shared memory a token attention block may take: under the 99 KiB of sm_86/sm_89, so
 * that every arch runs it and an H200 SM keeps three blocks resident.
 */
const SMEM_BUDGET = 96 * 1024;

/** The shape of the token attention: warps per block and keys per tile. */
export interface TokenPlan {
  readonly form: TokenForm;
  readonly warps: number;
  /** Keys per staged tile: a multiple of 16 (mma k-steps) or 8 (simt column groups). */
  readonly tileKeys: number;
  /**
   * Schedule.tokenOrder 'key' where it applies (mma form, a routing block's K/V under the shared
   * memory budget): the key-major passes of token-keymajor.ts run instead of the query-major walk.
   */
  readonly keyMajor: boolean;
}

export const tokenAttentionName = (k: AttentionKernel): string => `attnc_${k.name}_token_attn`;

/** Expressions of `k` as the core renders them (unrouted), for the checks below. */
const exprCache = new WeakMap<AttentionKernel, CoreExprs>();
export function unroutedExprs(k: AttentionKernel): CoreExprs {
  let e = exprCache.get(k);
  if (!e) {
    const layout = cudaLayout(k);
    e = coreExprs(k, {
      ...kernelSlots(k),
      field: layout.field,
      used: new Set(),
      exactMul: exactMulOf(k),
    });
    exprCache.set(k, e);
  }
  return e;
}

/**
 * Keys per tile: the largest candidate whose routing blocks fit the per-row 32-bit mask of a tile
 * (a tile of n keys touches at most floor((n - 1) / RB) + 2 blocks).
 */
function tileKeysFor(blockSize: number, candidates: readonly number[]): number | undefined {
  return candidates.find((n) => Math.floor((n - 1) / blockSize) + 2 <= 32);
}

/** The token attention's plan for `k`, or undefined when the core attention runs it. */
export function tokenPlan(k: AttentionKernel): TokenPlan | undefined {
  const r = k.routing;
  if (!r || !isRankedBlocks(r) || cudaRoutingPath(r) !== 'ranked-blocks' || r.source.q !== 'raw')
    return undefined;
  if (hasQuantizedKv(k.formats)) return undefined;
  const engine = k.schedule.engine ?? 'simt';
  if (engine !== 'simt' && engine !== 'mma' && engine !== 'wgmma' && engine !== 'wgmma-ws') return undefined;
  const e = unroutedExprs(k);
  // Per-key hoists are computed once per tile for one head; residue and patch reorder rows.
  if (e.keyHoists.length > 0 || e.residue !== null || e.patch !== null || e.mode === 'empty')
    return undefined;
  const s = k.schedule;
  const tensorCores =
    engine !== 'simt' && sharedStorage(k.formats) !== 'f32' && s.headDim % 16 === 0 && s.valueDim % 16 === 0;
  const fits = tileKeysFor(r.unit.size, tensorCores ? [32, 16] : [16, 8]);
  if (fits === undefined) return undefined;
  const [D, DV] = [s.headDim, s.valueDim];
  if (!tensorCores) {
    // One warp; its q rows, K/V tile and P in f32 under the budget (smaller tiles for wide heads).
    const tileKeys = [fits, 8].find((n) => n <= fits && 4 * (16 * D + n * (D + DV) + 16 * n) <= SMEM_BUDGET);
    return tileKeys === undefined ? undefined : { form: 'simt', warps: 1, tileKeys, keyMajor: false };
  }
  // Up to 4 warps whose padded 16-bit K/V tiles fit the budget (D = 128: 4 warps, 70 KiB).
  const warps = Math.min(4, Math.floor(SMEM_BUDGET / (2 * fits * (D + 8 + DV + 8))));
  if (warps < 1) return undefined;
  return {
    form: 'mma',
    warps,
    tileKeys: fits,
    keyMajor: s.tokenOrder === 'key' && keyMajorFits(r.unit.size, D, DV),
  };
}

/** Keys of a routing block padded to whole mma k-steps: the key-major attention's K/V tile. */
export const keyMajorTileKeys = (blockSize: number): number => Math.ceil(blockSize / 16) * 16;

/** Whether one routing block's padded 16-bit K and V fit the shared-memory budget. */
const keyMajorFits = (blockSize: number, D: number, DV: number): boolean =>
  2 * keyMajorTileKeys(blockSize) * (D + 8 + DV + 8) <= SMEM_BUDGET;
