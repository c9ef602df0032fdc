// A paged cache's K and V tile fetch in one pass over the block table (kv-rows.ts has the
// handles): every page id a thread needs for the tile is read before its first copy. The copies
// (asm volatile, "memory") keep later reads from moving above them, so fetches that each look
// their pages up (K's run, its copies, V's run, its copies, then each scale word's page) wait on
// one dependent round trip apiece, every fetching thread stalled: int8 pages ran 1.17–1.32× the
// contiguous kernel on an H100 (four round trips a tile), bf16 1.00–1.07× (two). A token's K and
// V rows share its page, and a scale word's two tokens share one (PAGE ≥ 2). Shapes the run
// fetch does not cover (runs longer than a page, uneven chunks, more scale words than threads)
// keep the separate fetches.

/** What differs between the float (KvRows of T) and the quantized (CodePages of bytes) fetch. */
export interface PagesOnce {
  /** The device function's name. */
  readonly name: string;
  readonly handle: 'KvRows' | 'CodePages';
  /** A row element ('T' or 'unsigned char'). */
  readonly elem: string;
  /** 16-byte chunks a row of `w` elements (a C expression). */
  readonly chunks: (w: string) => string;
  /** Elements a chunk. */
  readonly elems: string;
  /** The separate fetches (KW, KP, VW, VP, kg, vg, kd, vd, t0, t1 in scope; scales too). */
  readonly separate: readonly string[];
  /** Whether scale windows of per-token f16 scales come with the tile (SCW words a cache; dm_scale_word). */
  readonly scales: boolean;
}

/** The device function `o.name`<KW, KP, VW, VP>(kg, vg, kd, vd[, scales], t0, t1). */
export function pagesOnceFetch(o: PagesOnce): string[] {
  const scaleArgs = o.scales
    ? ' const unsigned short* ksc, const unsigned short* vsc, unsigned* skd, unsigned* svd, long long page_elems,'
    : '';
  return [
    ...pageIdsStruct,
    ...(o.scales
      ? [
          '// K and V rows t0..t1-1 of a paged cache, then the scale windows of the scaled caches (ksc / vsc,',
          '// nullptr where unscaled), every page id read before the first copy (kv-pages-once.ts).',
        ]
      : [
          '// K and V rows t0..t1-1 of a paged cache, every page id read before the first copy (kv-pages-once.ts).',
        ]),
    'template <int KW, int KP, int VW, int VP>',
    `__device__ __forceinline__ void ${o.name}(const ${o.handle}& kg, const ${o.handle}& vg, ${o.elem}* kd, ${o.elem}* vd,${scaleArgs} int t0, int t1, PageIds& ids, int t_end) {`,
    `  constexpr int KC = ${o.chunks('KW')}, VC = ${o.chunks('VW')}, E = ${o.elems};`,
    '  constexpr int KN = MMA_TILE * KC / MMA_THREADS, VN = MMA_TILE * VC / MMA_THREADS; // rows a thread',
    `  constexpr bool once = ATTNC_KV_PAGE_ONCE && ATTNC_KV_PAGE_RUNS${o.scales ? ' && PAGE >= 2 && SCW <= MMA_THREADS' : ''} &&`,
    '      MMA_THREADS % KC == 0 && (MMA_TILE * KC) % MMA_THREADS == 0 && KN >= 1 && KN <= PAGE &&',
    '      MMA_THREADS % VC == 0 && (MMA_TILE * VC) % MMA_THREADS == 0 && VN >= 1 && VN <= PAGE;',
    '  if constexpr (!once) {',
    ...o.separate.map((l) => `    ${l}`),
    '  } else {',
    '    const int kc = threadIdx.x % KC, kj0 = threadIdx.x / KC * KN;',
    '    const int vc = threadIdx.x % VC, vj0 = threadIdx.x / VC * VN;',
    ...(o.scales ? scaleWindow : []),
    '    // The page ids of tile a0..min(a0 + MMA_TILE, t_end) - 1: the runs\u2019 first and last rows\u2019 (rows',
    "    // past the tile's end clamp to its last) and this thread's scale word's.",
    '    auto ids_of = [&](int a0) {',
    '      const int a1 = min(a0 + MMA_TILE, t_end);',
    '      const int* pg = kg.pages;',
    '      ids.t0 = a0;',
    '      ids.klo = __ldg(pg + (min(a0 + kj0, a1 - 1) >> LOG2_PAGE));',
    '      ids.khi = __ldg(pg + (min(a0 + kj0 + KN - 1, a1 - 1) >> LOG2_PAGE));',
    '      ids.vlo = __ldg(pg + (min(a0 + vj0, a1 - 1) >> LOG2_PAGE));',
    '      ids.vhi = __ldg(pg + (min(a0 + vj0 + VN - 1, a1 - 1) >> LOG2_PAGE));',
    ...(o.scales
      ? [
          '      const long long ea = (a0 & ~1LL) + 2 * (long long)i;',
          '      ids.sp = i < SCW && ea < a1 ? __ldg(pg + (ea >> LOG2_PAGE)) : 0;',
        ]
      : []),
    '    };',
    '    // ATTNC_KV_PAGE_AHEAD: the previous fetch read this tile\u2019s ids (unless a tile was skipped).',
    '    if (!ATTNC_KV_PAGE_AHEAD || ids.t0 != t0) ids_of(t0);',
    '    const int klo = ids.klo, khi = ids.khi, vlo = ids.vlo, vhi = ids.vhi;',
    ...(o.scales ? ['    const int sp = ids.sp;'] : []),
    "    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.",
    '    const long long kf = min(t0 + kj0, t1 - 1), kl = min(t0 + kj0 + KN - 1, t1 - 1);',
    '    const long long vf = min(t0 + vj0, t1 - 1), vl = min(t0 + vj0 + VN - 1, t1 - 1);',
    `    const ${o.handle}::Run kr{kf >> LOG2_PAGE, kg.p + (long long)klo * kg.ps, kg.p + (long long)khi * kg.ps};`,
    `    const ${o.handle}::Run vr{vf >> LOG2_PAGE, vg.p + (long long)vlo * vg.ps, vg.p + (long long)vhi * vg.ps};`,
    ...runCopies('k', 'K', o.elem),
    ...runCopies('v', 'V', o.elem),
    ...(o.scales ? scaleCopies : []),
    '    // The next tile\u2019s ids, read now and used a tile later (after this tile\u2019s copies: nothing waits).',
    '    if (ATTNC_KV_PAGE_AHEAD && t0 + MMA_TILE < t_end) ids_of(t0 + MMA_TILE);',
    '  }',
    '}',
  ];
}

/** A thread's page ids of one tile (kept across fetches for ATTNC_KV_PAGE_AHEAD); once a module. */
export const pageIdsStruct: readonly string[] = [
  '// A thread\u2019s page ids of the tile from row t0 (kv-pages-once.ts; t0 -1: none read yet).',
  'struct PageIds {',
  '  int t0 = -1, klo = 0, khi = 0, vlo = 0, vhi = 0, sp = 0;',
  '};',
];

/**
 * The copies of one tensor's run (kd/kg/kr or vd/vg/vr). A run inside one page (whenever runs
 * start on a multiple of their length and pages hold at least a run) is rows f, f + 1, … from one
 * base: an add a row instead of the handle's page select and 64-bit multiply, which the int8
 * kernel, bound by its conversions, pays for.
 */
const runCopies = (t: 'k' | 'v', T: 'K' | 'V', elem: string): string[] => [
  `    const bool ${t}1 = ATTNC_KV_PAGE_BASE && (${t}l >> LOG2_PAGE) == (${t}f >> LOG2_PAGE); // inside one page`,
  `    const ${elem}* ${t}b = ${t}g.row(${t}r, ${t}f);`,
  '#pragma unroll',
  `    for (int r = 0; r < ${T}N; ++r) {`,
  `      const int kj = t0 + ${t}j0 + r;`,
  '      const bool ok = kj < t1;',
  `      const ${elem}* src = !ok ? ${t}b : ${t}1 ? ${t}b + r * ${t}g.rs : ${t}g.row(${t}r, kj);`,
  `      dec_cp<16>(${t}d + (${t}j0 + r) * ${T}P + ${t}c * E, src + ${t}c * E, ok);`,
  '    }',
];

const scaleWindow = [
  '    // Scale word i: tokens e, e + 1 of the window from the even token at or before t0.',
  '    const int i = threadIdx.x;',
  '    const long long e = (t0 & ~1LL) + 2 * (long long)i;',
  '    const int n = i >= SCW || e >= t1 ? 0 : e + 1 >= t1 ? 2 : 4; // bytes inside tokens ..t1-1',
];

const scaleCopies = [
  '    if (i < SCW) {',
  '      const long long at = (long long)sp * page_elems + (e & (PAGE - 1));',
  '      if (ksc) dm_scale_word(skd + i, ksc, at, n);',
  '      if (vsc) dm_scale_word(svd + i, vsc, at, n);',
  '    }',
];
