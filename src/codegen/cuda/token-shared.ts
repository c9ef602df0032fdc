// The tile walk of the token attention when the block's warps share their K/V tiles (mma form,
// token-form.ts `shared`). Each warp walks its rows' selections as in token-attn.ts, but the tile
// staged next is the least over the block's warps (a barrier-separated minimum in shared
// memory), staged once by all threads with cp.async into the other of two buffers while the
// current tile is multiplied: consecutive tokens' selections overlap (their forced first and
// local blocks always, ranked ones often), so a block of 4 warps loads their union once, and the
// copy of tile n + 1 overlaps the products of tile n. A warp none of whose rows selected a key of
// the tile skips its products (all scores -inf: the online softmax would not move).

/**
 * The loop: `bits` computes tok_bits of tile kt (kbase, kid0, kid1 in scope), `body` the
 * products, masking, softmax and P·V on the tile at Ks / Vs (all at loop-body indentation).
 */
export function sharedTileLoop(bits: readonly string[], body: readonly string[]): string[] {
  const ind = (lines: readonly string[]): string[] => lines.map((l) => (l.startsWith('#') ? l : `  ${l}`));
  return [
    'const int nkt = (a.Nk + TOK_BK - 1) / TOK_BK;',
    'T* const tok_buf = reinterpret_cast<T*>(tok_smem); // [2][K: TOK_BK x TOK_KP, V: TOK_BK x TOK_VP]',
    '__shared__ int tok_next[2][TOK_WARPS];',
    'int tok_par = 0;',
    "// The least of the warps' next tiles (one barrier; alternate slots: a later write never meets a read).",
    'auto block_min = [&](const int w) -> int {',
    '  if (lane == 0) tok_next[tok_par][warp] = w;',
    '  __syncthreads();',
    '  int v = INT_MAX;',
    '#pragma unroll',
    '  for (int i = 0; i < TOK_WARPS; ++i) v = min(v, tok_next[tok_par][i]);',
    '  tok_par ^= 1;',
    '  return v;',
    '};',
    '// Tile kt into buffer buf by all threads, K and V in one group; rows past Nk are zero.',
    'auto stage = [&](const int kt, const int buf) {',
    '  T* ks = tok_buf + (size_t)buf * TOK_BK * (TOK_KP + TOK_VP);',
    '  T* vs = ks + TOK_BK * TOK_KP;',
    '  const int kbase = kt * TOK_BK;',
    '  constexpr int KC = D / 8, VC = DV / 8; // 16-byte chunks per row',
    '  for (int c = threadIdx.x; c < TOK_BK * (KC + VC); c += TOK_THREADS) {',
    '    const bool isk = c < TOK_BK * KC;',
    '    const int c2 = isk ? c : c - TOK_BK * KC, w = isk ? KC : VC, r = c2 / w, d = (c2 % w) * 8;',
    '    T* dst = (isk ? ks + r * TOK_KP : vs + r * TOK_VP) + d;',
    '    if (kbase + r < a.Nk) tok_cp16(dst, (isk ? kg.row(kbase + r) : vg.row(kbase + r)) + d);',
    '    else memset(dst, 0, 16);',
    '  }',
    '  tok_cp_commit();',
    '};',
    'int kt = block_min(tok_warp_min(min(tok_tile_of(a, tok_id[0], 0), tok_tile_of(a, tok_id[1], 0))));',
    'int buf = 0;',
    'if (kt < nkt) stage(kt, 0);',
    '#pragma unroll 1',
    'while (kt < nkt) {',
    '  const int kbase = kt * TOK_BK;',
    ...ind(bits),
    "  // Past the blocks that end in this tile; the block's next tile is the first one a row still needs.",
    '  int next = INT_MAX;',
    '#pragma unroll',
    '  for (int rr = 0; rr < 2; ++rr) {',
    '    while (tok_id[rr] != INT_MAX && tok_last_key(a, tok_id[rr]) < kbase + TOK_BK)',
    '      tok_id[rr] = route_sel(tok_row[rr], ++tok_p[rr], cap);',
    '    next = min(next, tok_tile_of(a, tok_id[rr], kt + 1));',
    '  }',
    '  const int ktn = block_min(tok_warp_min(next));',
    '  if (ktn < nkt) {',
    '    stage(ktn, buf ^ 1); // lands while this tile is used',
    '    tok_cp_wait<1>();',
    '  } else {',
    '    tok_cp_wait<0>();',
    '  }',
    '  __syncthreads(); // tile kt has landed for every thread',
    '  Ks = tok_buf + (size_t)buf * TOK_BK * (TOK_KP + TOK_VP);',
    '  Vs = Ks + TOK_BK * TOK_KP;',
    '  if (__any_sync(0xffffffffu, (tok_bits[0] | tok_bits[1]) != 0u)) {',
    ...ind(ind(body)),
    '  }',
    '  __syncthreads(); // buffer buf is staged again at the next step',
    '  kt = ktn;',
    '  buf ^= 1;',
    '}',
  ];
}
