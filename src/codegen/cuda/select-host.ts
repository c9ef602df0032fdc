// Host side of CUDA selection (select.ts): the device code in launch order, the launcher's checks
// and launches, the scratch-size function. The `indices` and `route_scratch` args fields are block
// routing's (layout.ts). Its artifact records: select-records.ts.
import { elementBytes } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  attendsSelected,
  capacityShapeExpr,
  chunkTensor,
  pooledSides,
  routingFrom,
  routingGroups,
  routingVote,
} from '../../ir/routing.js';
import { padLines } from '../pad-lines.js';
import type { CudaLayout } from './layout.js';
import type { CudaContext } from './rules.js';
import { SEL_POOL_THREADS, SEL_SPAN, selectHelpers, selName } from './select.js';
import { selDequantizes, selectKvCode } from './select-kv.js';
import { selScratchElemsName } from './select-records.js';
import { selectScoreCode } from './select-score.js';
import { voteKv } from './select-vote.js';
import { SEL_ATTN_THREADS, selectAttnCode, vectorWidth } from './select-attn.js';
import { SEL_WIDE_THREADS, WIDE_PASSES, wideTopk, wideTopkCode } from './select-wide.js';
import { SEL_FROM_THREADS, SEL_SORT_MAX, SEL_TOPK_THREADS, selectRankCode } from './select-topk.js';

export { selectHandles } from './routing-case.js';

/** Device code of every selection pass (inside the namespace; rendered before the helpers). */
export function selectDeviceCode(
  k: AttentionKernel,
  layout: CudaLayout,
  cx: Omit<CudaContext, 'vars'>,
): string {
  const r = k.routing!;
  const what = { tokens: 'token selection', chunks: 'chunk routing', blocks: 'block routing' }[r.unit.kind];
  return [
    `// ---- ${attendsSelected(r) ? '' : 'emit: '}${what}${r.source.kind === 'from' ? ' from a tensor' : ''} (select.ts) ----`,
    ...selectHelpers(k, layout, cx),
    ...selectKvCode(k.formats),
    ...selectScoreCode(k),
    '',
    ...selectRankCode(k, layout),
    ...(wideTopk(k.routing!) ? wideTopkCode(k) : []),
    ...selectAttnCode(k, layout, cx),
  ].join('\n');
}

const launch = (
  ns: string,
  name: string,
  grid: string,
  threads: number | string,
  smem: string,
  what: string,
  args = 'a',
): string[] => [
  `  ${ns}::${name}<<<${grid}, ${threads}, ${smem}, stream>>>(${args});`,
  '  {',
  '    const cudaError_t e = cudaGetLastError();',
  `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "${what}: %s", cudaGetErrorString(e));`,
  '  }',
];

const optIn = (ns: string, name: string, smem: string, what: string): string[] => [
  `  if (${smem} > 227 * 1024) return fail(ATTNC_ERR_ARGS, "${what}: %zu bytes of shared memory needed, the limit is 232448", (size_t)(${smem}));`,
  `  if (${smem} > 48 * 1024) {`,
  `    const cudaError_t e = cudaFuncSetAttribute(${ns}::${name}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(${smem}));`,
  `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "${what}: cannot reserve %zu bytes of shared memory: %s", (size_t)(${smem}), cudaGetErrorString(e));`,
  '  }',
];

/** Host checks of the launcher (`a` the args). */
export function selectHostChecks(k: AttentionKernel, ns: string, layout: CudaLayout): string[] {
  const r = k.routing!;
  const from = routingFrom(r);
  const chunks = chunkTensor(r);
  const G = routingGroups(r);
  const checks = [
    'for (int c = 0; c < 3; ++c) {',
    `  const long long n = ${ns}::sel_count(a, c);`,
    `  if (n < 0 || n > (1 << 20)) return fail(ATTNC_ERR_ARGS, "routing count %s is %lld, must be in [0, 2^20]", c == 0 ? "${from ? `capacity of ${from.tensor}` : 'topk'}" : c == 1 ? "first" : "local", n);`,
    '}',
    `if (a.k_offset < 0) return fail(ATTNC_ERR_ARGS, "routing needs key positions >= 0 (k_offset = %d)", a.k_offset);`,
    `if ((long long)a.B * ${ns}::sel_groups(a) * a.Nq * ${ns}::sel_cap(a) > 0 && a.indices == NULL) return fail(ATTNC_ERR_ARGS, "indices is NULL (int[B, ${G}, Nq, ${capacityShapeExpr(r)}])");`,
    `if (${ns}::sel_scratch_size(a) > 0 && a.route_scratch == NULL) return fail(ATTNC_ERR_ARGS, "route_scratch is NULL (${selScratchElemsName(k)}() floats)");`,
  ];
  // Vector loads: 4-element key rows when scoring (D % 4 == 0), VW-element rows in the attention.
  const bytes = elementBytes(k.formats.k);
  const restrict = attendsSelected(r);
  // A quantized cache (select-kv.ts) is read element by element: its words need no more.
  const kAlign = selDequantizes(k.formats.k)
    ? 1
    : Math.max(
        restrict ? vectorWidth(k) * bytes : 1,
        !from && k.schedule.headDim % 4 === 0 ? (k.schedule.headDim % 8 === 0 ? 16 : 4 * bytes) : 1,
      );
  const vAlign = restrict && !selDequantizes(k.formats.v) ? vectorWidth(k) * elementBytes(k.formats.v) : 1;
  if (kAlign > 1 || vAlign > 1)
    checks.push(
      `if (a.Nk > 0 && (!ptr_ok(a.k, ${kAlign}) || !ptr_ok(a.v, ${vAlign}))) return fail(ATTNC_ERR_ARGS, "selection: k must be ${kAlign}-byte and v ${vAlign}-byte aligned");`,
    );
  // A paged cache's rows are as aligned as its strides (kv-rows.ts): the attention's vectors need
  // them to be multiples of its vector width (args_init's are).
  if (k.formats.paged && restrict && vectorWidth(k) > 1)
    checks.push(
      `if (a.Nk > 0 && !${ns}::kv_strides_ok(a, ${vectorWidth(k)})) return fail(ATTNC_ERR_ARGS, "selection: K/V strides must be multiples of ${vectorWidth(k)} elements (its vector loads)");`,
    );
  if (from)
    checks.push(
      `if (${ns}::sel_cap(a) > ${SEL_SORT_MAX}) return fail(ATTNC_ERR_ARGS, "tensor ${from.tensor}: %d ids per row with the forced ones (capacity + first + local); CUDA sorts at most ${SEL_SORT_MAX}", ${ns}::sel_cap(a));`,
    );
  if (chunks) {
    const len = `a.${layout.field(`tensor:${chunks}`)}`;
    checks.push(
      `if (a.Nk > 0 && ${len} == NULL) return fail(ATTNC_ERR_ARGS, "tensor ${chunks} is NULL");`,
      `if (a.q_offset < 0 || a.k_offset != 0 || (long long)a.q_offset + a.Nq > a.Nk) return fail(ATTNC_ERR_ARGS, "tensor ${chunks}: chunk ids cover positions [0, %d), but the call has query positions [%d, %lld) and key positions [%d, %lld)", a.Nk, a.q_offset, (long long)a.q_offset + a.Nq, a.k_offset, (long long)a.k_offset + a.Nk);`,
    );
  }
  return checks;
}

/** Pooling launches: the key side when the call has keys, the query side always. */
function poolLaunches(k: AttentionKernel, ns: string): string[] {
  const pooled = pooledSides(k.routing!);
  const grid = { k: 'dim3(a.Nk, a.Hkv, a.B)', q: 'dim3(a.Nq, a.H, a.B)' };
  const pool = (side: 'k' | 'q'): string[] =>
    launch(ns, selName(k, `pool_${side}`), grid[side], SEL_POOL_THREADS, '0', `sel_pool_${side}`);
  return [
    ...(pooled.k ? ['  if (a.Nk > 0) {', ...padLines(pool('k'), '  '), '  }'] : []),
    ...(pooled.q ? pool('q') : []),
  ];
}

/** A scoring round's vote launches: decoding reads each kv head of a span once (select-vote.ts). */
function voteLaunches(k: AttentionKernel, ns: string): string[] {
  const stats = (pad: string): string[] =>
    padLines(launch(ns, selName(k, 'vote_stats'), 'sgrid', SEL_SPAN, 'ssmem', 'sel_vote_stats', 'ra'), pad);
  if (!routingVote(k.routing!)) return [];
  if (!voteKv(k)) return stats('    ');
  return [
    `      if (${ns}::sel_wide(a) && ${ns}::sel_keep_aff(a)) {`,
    '        // Decoding: each block reads one kv head of its span once (select-vote.ts).',
    `        const dim3 vgrid(sgrid.x * (unsigned)${ns}::sel_vparts(a), sgrid.y, sgrid.z);`,
    ...padLines(launch(ns, selName(k, 'vote_kv'), 'vgrid', SEL_SPAN, 'ssmem', 'sel_vote_kv', 'ra'), '      '),
    '      } else {',
    ...stats('      '),
    '      }',
  ];
}

/** A scoring round's top-k launch: over chunks of the row (select-wide.ts) or one block a row. */
function topkLaunches(k: AttentionKernel, ns: string, groups: string): string[] {
  const wide = wideTopk(k.routing!)
    ? [
        `    if (${ns}::sel_cap(a) > 0 && ${ns}::sel_wide(a)) {`,
        "      // Few rows, many keys: the row's top-k split over chunks (select-wide.ts).",
        `      const dim3 wgrid((unsigned)${ns}::sel_wchunks(a) * nr, ${groups}, a.B);`,
        ...WIDE_PASSES.flatMap((p) =>
          padLines(launch(ns, selName(k, p), 'wgrid', SEL_WIDE_THREADS, '0', `sel_${p}`, 'ra'), '    '),
        ),
        '    } else',
      ]
    : [];
  const grid = `dim3(nr, ${groups}, a.B)`;
  return [
    ...wide,
    `    if (${ns}::sel_cap(a) > 0)`,
    ...padLines(launch(ns, selName(k, 'topk'), grid, SEL_TOPK_THREADS, '0', 'sel_topk', 'ra'), '    '),
  ];
}

/** Ranked selection: scoring rounds of sel_rows query rows (route_scratch holds one round's metrics). */
function rankLaunches(k: AttentionKernel, ns: string, groups: string): string[] {
  const vote = routingVote(k.routing!);
  return [
    `  const size_t ssmem = sizeof(float) * ((size_t)${ns}::sel_voters(a) * (${ns}::D + 2));`,
    ...(vote ? optIn(ns, selName(k, 'vote_stats'), 'ssmem', 'sel_vote_stats') : []),
    ...(vote && voteKv(k) ? optIn(ns, selName(k, 'vote_kv'), 'ssmem', 'sel_vote_kv') : []),
    ...optIn(ns, selName(k, 'score'), 'ssmem', 'sel_score'),
    `  const int rows = ${ns}::sel_rows(a);`,
    '  for (int r0 = 0; r0 < a.Nq; r0 += rows) {',
    `    ${ns}::Args ra = a;`,
    '    ra.sel_row0 = r0;',
    '    const unsigned nr = (unsigned)min(rows, a.Nq - r0);',
    '    if (a.Nk > 0) {',
    `      const dim3 sgrid((unsigned)${ns}::sel_nspan(a) * nr, ${groups}, a.B);`,
    ...voteLaunches(k, ns),
    ...padLines(launch(ns, selName(k, 'score'), 'sgrid', SEL_SPAN, 'ssmem', 'sel_score', 'ra'), '    '),
    '    }',
    ...topkLaunches(k, ns, groups),
    '  }',
  ];
}

/** Selection read from a tensor: one block a row sorts its ids (shared memory a power of two). */
function fromLaunch(k: AttentionKernel, ns: string, groups: string): string[] {
  const grid = `dim3(a.Nq, ${groups}, a.B)`;
  return [
    `  if (${ns}::sel_cap(a) > 0) {`,
    '    size_t fsmem = sizeof(int);',
    `    while (fsmem < sizeof(int) * (size_t)${ns}::sel_cap(a)) fsmem <<= 1;`,
    ...padLines(optIn(ns, selName(k, 'from'), 'fsmem', 'sel_from'), '  '),
    ...padLines(launch(ns, selName(k, 'from'), grid, SEL_FROM_THREADS, 'fsmem', 'sel_from'), '  '),
    '  }',
  ];
}

/** The attention over the selection, split over key ranges and merged, then the return. */
function attendLaunches(k: AttentionKernel, ns: string): string[] {
  if (!attendsSelected(k.routing!)) return [];
  const grid = 'dim3((unsigned)((long long)ns * a.Nq), a.H, a.B)';
  return [
    `  const int ns = ${ns}::sel_splits(a);`,
    ...launch(ns, selName(k, 'attn'), grid, SEL_ATTN_THREADS, '0', 'sel_attn'),
    '  if (ns > 1)',
    ...padLines(
      launch(ns, selName(k, 'merge'), 'dim3(a.Nq, a.H, a.B)', SEL_ATTN_THREADS, '0', 'sel_merge'),
      '  ',
    ),
    '  return ATTNC_OK;',
  ];
}

/** Host launches: selection passes, then (restricted) the attention over the selection and return. */
export function selectHostLaunch(k: AttentionKernel, ns: string): string[] {
  const groups = `${ns}::sel_groups(a)`;
  const rank = k.routing!.source.kind === 'topk' ? rankLaunches(k, ns, groups) : fromLaunch(k, ns, groups);
  return [
    '// Selection: score, rank (indices), then the attention reads the selection.',
    '{',
    ...poolLaunches(k, ns),
    ...rank,
    ...attendLaunches(k, ns),
    '}',
  ];
}

/** `size_t attnc_<name>_route_scratch_elems(const Args*)`. */
export function selectHostFns(k: AttentionKernel, struct: string, ns: string): string[] {
  return [
    `extern "C" size_t ${selScratchElemsName(k)}(const ${struct}* args) {`,
    `  return ${ns}::sel_scratch_size(*args);`,
    '}',
  ];
}

export function selectHeaderLines(k: AttentionKernel, struct: string): string[] {
  return [
    '/* Floats of the route_scratch buffer (pooled rows, metrics, partials) for these sizes. */',
    `size_t ${selScratchElemsName(k)}(const ${struct}* args);`,
  ];
}
