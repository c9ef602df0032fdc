// Pieces every dK/dV kernel of the tensor-core backward shares (mma: backward-mma-kernels.ts,
// wgmma: backward-wgmma-kernel.ts, warp-specialised wgmma: backward-wgmma-ws.ts): the walk over the
// non-empty q-tiles of each head of the GQA group, the lse/delta load, the block's key-tile
// coordinates, the accumulators and the epilogue that stores dK, dV and the param gradients.
import type { BackwardMmaExprs, TileWalk } from './backward-mma-exprs.js';
import { indent } from './indent.js';
import { hoistCounts, hoistEnd, keyHoistFill } from './backward-mask-hoists.js';
import type { DkdvOrder } from './backward-residue.js';

/**
 * `next_tile(qt, full)`: the first non-empty tile (of `count`) at or after qt, and whether it is
 * full; `bounds` defines q_lo q_hi k_lo k_hi of tile qt. Dynamic classifiers are asked 32 tiles at a time, a lane per tile (one
 * step per 32 tiles for runs of empty ones, and one latency for classifiers that read summaries).
 */
export function nextTile(x: TileWalk, count: string, bounds: string): string[] {
  if (x.mode !== 'dynamic') {
    return [
      'auto next_tile = [&](const int qt, bool& full) {',
      `  full = ${x.mode === 'full'};`,
      `  return ${x.mode === 'empty' ? count : 'qt'};`,
      '};',
    ];
  }
  return [
    'auto classify = [&](const int qt, bool& full) -> bool {',
    `  ${bounds}`,
    '  (void)q_lo; (void)q_hi; (void)k_lo; (void)k_hi;',
    ...indent(x.classify, '  '),
    '  full = !can_false;',
    '  return can_true;',
    '};',
    'int scan = -32;',
    'unsigned ne_bits = 0u, full_bits = 0u; // q-tiles scan .. scan + 31: non-empty, full',
    'auto next_tile = [&](int qt, bool& full) {',
    `  while (qt < ${count}) {`,
    '    if (qt >= scan + 32) {',
    '      scan = qt;',
    '      bool f = false;',
    `      const bool ne = qt + lane < ${count} && classify(qt + lane, f);`,
    '      ne_bits = __ballot_sync(0xffffffffu, ne);',
    '      full_bits = __ballot_sync(0xffffffffu, ne && f);',
    '    }',
    '    const unsigned rest = ne_bits & (0xffffffffu << (qt - scan));',
    '    if (rest) {',
    '      const int i = __ffs(rest) - 1;',
    '      full = (full_bits >> i) & 1u;',
    '      return scan + i;',
    '    }',
    '    qt = scan + 32;',
    '  }',
    '  full = false;',
    `  return ${count};`,
    '};',
  ];
}

/** The block's key tile (k0 of BN keys of kv head hkv, batch b), its rows and key range. */
export const keyTileCoords: readonly string[] = [
  '  const int b = blockIdx.z, hkv = blockIdx.y, k0 = blockIdx.x * BN, group = a.H / a.Hkv;',
  '  const size_t krow0 = ((size_t)b * a.Hkv + hkv) * a.Nk + k0;',
  '  const int nqt = (a.Nq + BM - 1) / BM;',
  '  const int k_lo = a.k_offset + k0, k_hi = a.k_offset + min(k0 + BN, a.Nk) - 1;',
  '  const bool k_tail = k0 + BN > a.Nk;',
  '  (void)k_lo; (void)k_hi;',
];

/** The block's linear index (x fastest, the order blocks start in) and the head pairs' count. */
const LINEAR_BLOCK =
  '  const int heads = gridDim.y * gridDim.z, lin = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);';

/**
 * keyTileCoords in key-tile-major launch order (the keyMajor knob, backward-wgmma-tune.ts): blocks
 * start in linear order (x fastest), so block i takes key tile i / (Hkv·B) of head pair i % (Hkv·B):
 * every head's first key tile starts first. Causal, sink and prefix masks give those tiles the most
 * q-tiles; in the grid's own order the last heads' heavy tiles started last and ran alone at the end.
 */
export const keyMajorCoords: readonly string[] = [
  LINEAR_BLOCK,
  '  const int b = (lin % heads) / gridDim.y, hkv = (lin % heads) % gridDim.y, k0 = (lin / heads) * BN, group = a.H / a.Hkv;',
  ...keyTileCoords.slice(1),
];

/**
 * keyTileCoords with every head's first key tile first (the firstTilesFirst knob): blocks 0 ..
 * Hkv·B − 1 take key tile 0 of each head pair, the rest run head-major as the grid's own order
 * (consecutive blocks share a head's Q and dO in L2; key-major order lost that: full 16K 17% slower).
 */
export const firstTilesFirstCoords: readonly string[] = [
  LINEAR_BLOCK,
  '  const int rest = lin - heads, bh = lin < heads ? lin : rest / (gridDim.x - 1);',
  '  const int b = bh / gridDim.y, hkv = bh % gridDim.y, k0 = (lin < heads ? 0 : 1 + rest % (gridDim.x - 1)) * BN, group = a.H / a.Hkv;',
  ...keyTileCoords.slice(1),
];

/** dK and dV accumulators (and `np` param gradient sums), zeroed. */
export function dkdvAccumulators(np: number): string[] {
  return [
    '  float dk[D / 8][4], dv[DV / 8][4];',
    '#pragma unroll',
    '  for (int n = 0; n < D / 8; ++n) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = 0.f;',
    '#pragma unroll',
    '  for (int n = 0; n < DV / 8; ++n) dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f;',
    ...(np ? [`  float gp[${np}] = {};`] : []),
  ];
}

/** The accumulators, `head` run for each head of the GQA group, then the epilogue. */
export function dkdvOverGroup(head: readonly string[], np: number, o: DkdvOrder): string[] {
  return [
    ...dkdvAccumulators(np),
    '  for (int hg = 0; hg < group; ++hg) {',
    ...indent(head, '    '),
    '  }',
    '  cp_wait<0>();',
    ...dkdvEpilogue(np, o),
  ];
}

/** The plain order's query head `h` of GQA step hg and its first row. */
export const plainHeadRows: readonly string[] = [
  'const int h = hkv * group + hg;',
  'const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq;',
];

/** The query head `h` of GQA step hg, its first row, and next_tile over its q-tiles. */
export function headWalk(x: BackwardMmaExprs): string[] {
  const o = x.order;
  if (!x.residue && !x.patch)
    return [
      ...plainHeadRows,
      ...nextTile(
        x,
        'nqt',
        'const int q_lo = a.q_offset + qt * BM, q_hi = a.q_offset + min((qt + 1) * BM, a.Nq) - 1;',
      ),
    ];
  // The unit's class (rows row0 + step·i) or query box (rows patch_key(pb, i)): q-tile qt holds
  // walk indices qt·BM.. (its bounding interval runs from the first to the last row's position).
  return [
    'const int h = hkv * group + hg;',
    x.residue
      ? "const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq + ru.row0; // the class's first row"
      : "const size_t qrow0 = ((size_t)b * a.H + h) * a.Nq; // the head's first row (rows: patch_key)",
    ...nextTile(
      x.residue ?? x,
      'nqt',
      `const int q_lo = ${o.qpos('qt * BM')}, q_hi = ${o.qpos(`min((qt + 1) * BM, (int)${o.nq}) - 1`)};`,
    ),
  ];
}

/** lse·log2 e and delta of q-tile q0's rows into buffer `buf`, thread `id` of `count`. */
export function lseDeltaLoad(id: string, count: string, o: DkdvOrder): string[] {
  return [
    `  for (int i = ${id}; i < BM; i += ${count}) {`,
    '    float l = INFINITY, d = 0.f; // +inf: exp2(score - l) = 0, no gradient (past Nq, or no allowed key)',
    `    if (q0 + i < ${o.nq}) {`,
    `      const float x = a.lse[${o.qrow('q0 + i')}];`,
    '      l = x == -INFINITY ? INFINITY : x * LOG2E;',
    `      d = a.delta[${o.qrow('q0 + i')}];`,
    '    }',
    '    Ls[buf * BM + i] = l;',
    '    Ds[buf * BM + i] = d;',
    ...o.rowPositions,
    '  }',
  ];
}

/** dK and dV out of the accumulators (storage type), then the param gradients (`np` of them). */
export function dkdvEpilogue(np: number, o: DkdvOrder): string[] {
  return [
    '  // dk = scale·Σ dSᵀ·Q, dv = Σ Pᵀ·dO (summed over the GQA group above).',
    '#pragma unroll',
    '  for (int r = 0; r < 2; ++r) {',
    '    const int kl = warp * 16 + g + 8 * r;',
    `    if (k0 + kl >= ${o.nk}) continue;`,
    `    T* dkr = a.dk + (${o.krow('kl')}) * D + t4 * 2;`,
    `    T* dvr = a.dv + (${o.krow('kl')}) * DV + t4 * 2;`,
    '#pragma unroll',
    '    for (int n = 0; n < D / 8; ++n)',
    '      *reinterpret_cast<unsigned*>(dkr + n * 8) = pack2(a.scale * dk[n][2 * r], a.scale * dk[n][2 * r + 1]);',
    '#pragma unroll',
    '    for (int n = 0; n < DV / 8; ++n)',
    '      *reinterpret_cast<unsigned*>(dvr + n * 8) = pack2(dv[n][2 * r], dv[n][2 * r + 1]);',
    '  }',
    ...(np
      ? [
          "  // Param gradients: this thread's sums, reduced over the warp, one atomic per warp.",
          '#pragma unroll',
          `  for (int n = 0; n < ${np}; ++n) {`,
          '    float v = gp[n];',
          '#pragma unroll',
          '    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);',
          '    if (lane == 0) atomicAdd(a.grads + n, v);',
          '  }',
        ]
      : []),
  ];
}

/**
 * After Ss (the dS tile) in shared memory: lse and delta per q-tile buffer, the mask's hoisted
 * parts, then the carried per-element slots.
 */
export function statsSmemDecls(x: BackwardMmaExprs): string[] {
  const c = hoistCounts(x.dkdvMask);
  return [
    '  float* Ls = reinterpret_cast<float*>(Ss + BM * BN); // [2][BM]: lse·log2 e',
    '  float* Ds = Ls + 2 * BM;             // [2][BM]: delta',
    ...(c.query || c.key
      ? [
          `  // Then the mask's hoisted parts (backward-mask-hoists.ts): ${c.query} × [2][BM] per query, ${c.key} × [BN] per key.`,
        ]
      : []),
    ...(x.slots
      ? [
          `  float* Xs = ${x.order.afterPositions(hoistEnd(x.dkdvMask, 'Ds + 2 * BM'))};             // [SLOTS][WARPS][NT][4][32]: carried per-element values`,
        ]
      : []),
  ];
}

/** Which key tile and head pair a dK/dV block takes (the grid's order, or one of the two above). */
export type BlockOrder = 'grid' | 'keyMajor' | 'firstTilesFirst';

/**
 * The CTA's key-tile coordinates, then the mask's per-key part of its tile (backward-mask-hoists.ts)
 * by the block's `threads` threads.
 */
export const keyTileSetup = (
  x: BackwardMmaExprs,
  threads = 'THREADS',
  order: BlockOrder = 'grid',
): string[] => [
  ...(x.order.keyTile ??
    { grid: keyTileCoords, keyMajor: keyMajorCoords, firstTilesFirst: firstTilesFirstCoords }[order]),
  ...keyHoistFill(x.dkdvMask, threads, x.order),
  ...x.order.keyPositions(threads),
];

/** K and V of the block's key tile into Ks and Vs by `loader`, thread `tid`. */
export function keyTileLoads(x: BackwardMmaExprs, loader: string, tid: string): string[] {
  const o = x.order;
  return [`  ${o.keyLoad(loader, 'D', 'Ks', 'a.k', tid)}`, `  ${o.keyLoad(loader, 'DV', 'Vs', 'a.v', tid)}`];
}
