// A paged cache's K and V tile fetch in one pass over the block table (kv-rows.ts has the
// handles): every page id a thread needs for the tile is read before its first copy. The copies
// (asm volatile, "memory") keep later reads from moving above them, so fetches that each look
// their pages up (K's run, its copies, V's run, its copies, then each scale word's page) wait on
// one dependent round trip apiece, every fetching thread stalled: int8 pages ran 1.17–1.32× the
// contiguous kernel on an H100 (four round trips a tile), bf16 1.00–1.07× (two). A token's K and
// V rows share its page, and a scale word's two tokens share one (PAGE ≥ 2). Shapes the run
// fetch does not cover (runs longer than a page, uneven chunks, more scale words than threads)
// keep the separate fetches. A run inside one page is then addressed from one base (runCopies):
// with it, H100 call 66 timed bf16 pages of 16 / 64 / 256 at 1.03 / 1.02 / 1.01x the contiguous
// kernel at 128K (1.12 / 1.02 / 1.00x through row()), int8 1.17 / 1.06 / 1.03x (1.26 / 1.16 / 1.12x).
// (Reading the next tile's ids during this tile's fetch was slower everywhere, call 65: removed.)

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
    ...(o.scales
      ? [
          '// K and V rows t0..t1-1 of a paged cache, then the scale windows of the scaled caches (ksc / vsc,',
          '// nullptr where unscaled), every page id read before the first copy (kv-pages-once.ts).',
        ]
      : [
          '// K and V rows t0..t1-1 of a paged cache, every page id read before the first copy (kv-pages-once.ts).',
        ]),
    'template <int KW, int KP, int VW, int VP>',
    `__device__ __forceinline__ void ${o.name}(const ${o.handle}& kg, const ${o.handle}& vg, ${o.elem}* kd, ${o.elem}* vd,${scaleArgs} int t0, int t1) {`,
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
    "    // Rows past t1 arrive as zeros; their (unread) source is the run's last valid row.",
    '    const long long kf = min(t0 + kj0, t1 - 1), kl = min(t0 + kj0 + KN - 1, t1 - 1);',
    '    const long long vf = min(t0 + vj0, t1 - 1), vl = min(t0 + vj0 + VN - 1, t1 - 1);',
    '    // Every page id first: the runs\u2019 first and last rows\u2019 and this thread\u2019s scale word\u2019s.',
    '    const int* pg = kg.pages;',
    '    const int klo = __ldg(pg + (kf >> LOG2_PAGE)), khi = __ldg(pg + (kl >> LOG2_PAGE));',
    '    const int vlo = __ldg(pg + (vf >> LOG2_PAGE)), vhi = __ldg(pg + (vl >> LOG2_PAGE));',
    ...(o.scales ? ['    const int sp = n ? __ldg(pg + (e >> LOG2_PAGE)) : 0; // n: 0 past SCW and t1'] : []),
    `    const ${o.handle}::Run kr{kf >> LOG2_PAGE, kg.p + (long long)klo * kg.ps, kg.p + (long long)khi * kg.ps};`,
    `    const ${o.handle}::Run vr{vf >> LOG2_PAGE, vg.p + (long long)vlo * vg.ps, vg.p + (long long)vhi * vg.ps};`,
    ...runCopies('k', 'K', o.elem),
    ...runCopies('v', 'V', o.elem),
    ...(o.scales ? scaleCopies : []),
    '  }',
    '}',
  ];
}

/**
 * The copies of one tensor's run (kd/kg/kr or vd/vg/vr). A run inside one page (whenever runs
 * start on a multiple of their length and pages hold at least a run) is rows f, f + 1, … from one
 * base: an add a row instead of the handle's page select and 64-bit multiply (ATTNC_KV_PAGE_BASE 0
 * keeps the latter, for comparison).
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
