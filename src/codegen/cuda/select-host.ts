// Host side and artifact records of CUDA selection (select.ts): the device code in launch order,
// the launcher's checks and launches, the scratch-size function, manifest, entry points and
// bindings. The `indices` and `route_scratch` args fields are block routing's (layout.ts).
import { elementBytes } from '../../ir/formats.js';
import { show } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  attendsSelected,
  capacityShapeExpr,
  chunkTensor,
  pooledSides,
  routingFrom,
  routingGroups,
  routingVote,
  type RoutingPlan,
} from '../../ir/routing.js';
import type { Binding, EntryPoint } from '../artifact.js';
import type { CudaLayout } from './layout.js';
import type { CudaContext } from './rules.js';
import { SEL_POOL_THREADS, SEL_SPAN, selectHelpers, selName } from './select.js';
import { selDequantizes, selectKvCode } from './select-kv.js';
import { selectScoreCode } from './select-score.js';
import { voteKv } from './select-vote.js';
import { SEL_ATTN_THREADS, selectAttnCode, vectorWidth } from './select-attn.js';
import { SEL_WIDE_ROUNDS, SEL_WIDE_THREADS, WIDE_PASSES, wideTopk, wideTopkCode } from './select-wide.js';
import { SEL_FROM_THREADS, SEL_SORT_MAX, SEL_TOPK_THREADS, selectRankCode } from './select-topk.js';

export { selectHandles } from './routing-case.js';

export const selScratchElemsName = (k: AttentionKernel): string => `attnc_${k.name}_route_scratch_elems`;

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

/** Host launches: selection passes, then (restricted) the attention over the selection and return. */
export function selectHostLaunch(k: AttentionKernel, ns: string): string[] {
  const r = k.routing!;
  const pooled = pooledSides(r);
  const vote = routingVote(r);
  const out = ['// Selection: score, rank (indices), then the attention reads the selection.', '{'];
  if (pooled.k)
    out.push(
      '  if (a.Nk > 0) {',
      ...launch(ns, selName(k, 'pool_k'), 'dim3(a.Nk, a.Hkv, a.B)', SEL_POOL_THREADS, '0', 'sel_pool_k').map(
        (l) => `  ${l}`,
      ),
      '  }',
    );
  if (pooled.q)
    out.push(
      ...launch(ns, selName(k, 'pool_q'), 'dim3(a.Nq, a.H, a.B)', SEL_POOL_THREADS, '0', 'sel_pool_q'),
    );
  const groups = `${ns}::sel_groups(a)`;
  if (r.source.kind === 'topk') {
    // Scoring rounds of sel_rows query rows: route_scratch holds one round's metrics.
    out.push(
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
      ...(vote && voteKv(k)
        ? [
            `      if (${ns}::sel_wide(a) && ${ns}::sel_keep_aff(a)) {`,
            '        // Decoding: each block reads one kv head of its span once (select-vote.ts).',
            `        const dim3 vgrid(sgrid.x * (unsigned)${ns}::sel_vparts(a), sgrid.y, sgrid.z);`,
            ...launch(ns, selName(k, 'vote_kv'), 'vgrid', SEL_SPAN, 'ssmem', 'sel_vote_kv', 'ra').map(
              (l) => `      ${l}`,
            ),
            '      } else {',
            ...launch(ns, selName(k, 'vote_stats'), 'sgrid', SEL_SPAN, 'ssmem', 'sel_vote_stats', 'ra').map(
              (l) => `      ${l}`,
            ),
            '      }',
          ]
        : vote
          ? launch(ns, selName(k, 'vote_stats'), 'sgrid', SEL_SPAN, 'ssmem', 'sel_vote_stats', 'ra').map(
              (l) => `    ${l}`,
            )
          : []),
      ...launch(ns, selName(k, 'score'), 'sgrid', SEL_SPAN, 'ssmem', 'sel_score', 'ra').map(
        (l) => `    ${l}`,
      ),
      '    }',
      ...(wideTopk(r)
        ? [
            `    if (${ns}::sel_cap(a) > 0 && ${ns}::sel_wide(a)) {`,
            "      // Few rows, many keys: the row's top-k split over chunks (select-wide.ts).",
            `      const dim3 wgrid((unsigned)${ns}::sel_wchunks(a) * nr, ${groups}, a.B);`,
            ...WIDE_PASSES.flatMap((p) =>
              launch(ns, selName(k, p), 'wgrid', SEL_WIDE_THREADS, '0', `sel_${p}`, 'ra').map(
                (l) => `    ${l}`,
              ),
            ),
            '    } else',
          ]
        : []),
      `    if (${ns}::sel_cap(a) > 0)`,
      ...launch(
        ns,
        selName(k, 'topk'),
        `dim3(nr, ${groups}, a.B)`,
        SEL_TOPK_THREADS,
        '0',
        'sel_topk',
        'ra',
      ).map((l) => `    ${l}`),
      '  }',
    );
  } else {
    out.push(
      `  if (${ns}::sel_cap(a) > 0) {`,
      '    size_t fsmem = sizeof(int);',
      `    while (fsmem < sizeof(int) * (size_t)${ns}::sel_cap(a)) fsmem <<= 1;`,
      ...optIn(ns, selName(k, 'from'), 'fsmem', 'sel_from').map((l) => `  ${l}`),
      ...launch(
        ns,
        selName(k, 'from'),
        `dim3(a.Nq, ${groups}, a.B)`,
        SEL_FROM_THREADS,
        'fsmem',
        'sel_from',
      ).map((l) => `  ${l}`),
      '  }',
    );
  }
  if (attendsSelected(r))
    out.push(
      `  const int ns = ${ns}::sel_splits(a);`,
      ...launch(
        ns,
        selName(k, 'attn'),
        'dim3((unsigned)((long long)ns * a.Nq), a.H, a.B)',
        SEL_ATTN_THREADS,
        '0',
        'sel_attn',
      ),
      '  if (ns > 1)',
      ...launch(ns, selName(k, 'merge'), 'dim3(a.Nq, a.H, a.B)', SEL_ATTN_THREADS, '0', 'sel_merge').map(
        (l) => `  ${l}`,
      ),
      '  return ATTNC_OK;',
    );
  out.push('}');
  return out;
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

/** Query rows per scoring round (`rows` in scratchShape), as select.ts's sel_rows computes it. */
function roundRows(k: AttentionKernel): string {
  const r = k.routing!;
  const G = routingGroups(r);
  const per = `B * (${G} * Nk${routingVote(r) ? ` + H * cdiv(Nk, ${SEL_SPAN}) * 2` : ''})`;
  return `min(Nq, max(1, max(2^24, 8 * B * ${G} * Nq * ${capacityShapeExpr(r)}) / (${per})))`;
}

/** An upper bound of the scratch floats as a shape expression. */
function scratchShape(k: AttentionKernel): string {
  const r = k.routing!;
  const D = k.schedule.headDim;
  const parts: string[] = [];
  const pooled = pooledSides(r);
  if (pooled.k) parts.push(`B * Hkv * Nk * ${D}`);
  if (pooled.q) parts.push(`B * H * Nq * ${D}`);
  if (r.source.kind === 'topk') parts.push(`B * ${routingGroups(r)} * rows * Nk`);
  if (routingVote(r)) parts.push(`B * H * rows * cdiv(Nk, ${SEL_SPAN}) * 2`);
  if (routingVote(r)) parts.push('B * H * rows * Nk');
  if (attendsSelected(r)) parts.push(`B * H * Nq * 16 * ${k.schedule.valueDim + 2}`);
  // The wide top-k's counters (select-wide.ts) at the smallest chunk, so an upper bound.
  if (wideTopk(r))
    parts.push(
      `B * ${routingGroups(r)} * rows * (${SEL_WIDE_ROUNDS * 256} + 2 * cdiv(Nk, ${SEL_WIDE_THREADS}))`,
    );
  return parts.join(' + ') || '0';
}

export function selectFieldDoc(k: AttentionKernel, role: 'indices' | 'scratch'): string {
  const r = k.routing!;
  return role === 'indices'
    ? `int[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r)}], written: selected ${r.unit.kind} ids (ascending, -1 padded)`
    : `scratch: ${selScratchElemsName(k)}() floats`;
}

export function selectManifest(k: AttentionKernel): object {
  const r: RoutingPlan = k.routing!;
  const src = r.source;
  return {
    unit: r.unit.kind,
    ...(r.unit.kind === 'blocks' ? { blockSize: r.unit.size } : {}),
    ...(r.unit.kind === 'chunks' ? { chunks: r.unit.tensor } : {}),
    ...(src.kind === 'from'
      ? { from: { tensor: src.tensor, groups: src.groups, capacity: src.capacity } }
      : { q: src.q, k: src.k, topk: show(src.count) }),
    vote: routingVote(r) ?? null,
    first: show(r.first),
    local: show(r.local),
    restrict: attendsSelected(r),
    indices: { dtype: 'i32', shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)] },
    scratch: {
      dtype: 'f32',
      elemsFunction: selScratchElemsName(k),
      shape: [scratchShape(k)],
      ...(src.kind === 'from' ? {} : { rows: roundRows(k) }),
    },
  };
}

/** A launch record of selection pass `pass` (informational for CUDA: the launcher runs them). */
const selEntry = (
  k: AttentionKernel,
  pass: string,
  threads: number,
  grid: [string, string, string],
  bindings: string[],
): EntryPoint => ({
  name: selName(k, pass),
  role: 'routing',
  workgroupSize: [threads, 1, 1],
  grid,
  bindings,
});

const userTensors = (k: AttentionKernel): string[] => k.tensors.map((t) => t.name);

/** Launch record of the `pool` stage of `side`. */
export function selectPoolEntry(k: AttentionKernel, side: 'k' | 'q'): EntryPoint {
  const grid: [string, string, string] = side === 'k' ? ['Nk', 'Hkv', 'B'] : ['Nq', 'H', 'B'];
  return selEntry(k, `pool_${side}`, SEL_POOL_THREADS, grid, [side, 'route_scratch', ...userTensors(k)]);
}

/** Launch records of the `rank` stage: `from` reads the tensor; else (vote,) score and top-k. */
export function selectRankEntries(k: AttentionKernel): EntryPoint[] {
  const r = k.routing!;
  const G = routingGroups(r);
  const user = userTensors(k);
  const span = `cdiv(Nk, ${SEL_SPAN}) * Nq`;
  if (r.source.kind === 'from')
    return [selEntry(k, 'from', SEL_FROM_THREADS, ['Nq', G, 'B'], ['indices', ...user])];
  return [
    ...(routingVote(r)
      ? [selEntry(k, 'vote_stats', SEL_SPAN, [span, G, 'B'], ['q', 'k', 'route_scratch', ...user])]
      : []),
    ...(voteKv(k)
      ? [selEntry(k, 'vote_kv', SEL_SPAN, [`${span} * vparts`, G, 'B'], ['q', 'k', 'route_scratch', ...user])]
      : []),
    selEntry(k, 'score', SEL_SPAN, [span, G, 'B'], ['q', 'k', 'route_scratch', ...user]),
    selEntry(k, 'topk', SEL_TOPK_THREADS, ['Nq', G, 'B'], ['route_scratch', 'indices', ...user]),
    ...(wideTopk(r)
      ? WIDE_PASSES.map((p) =>
          selEntry(k, p, SEL_WIDE_THREADS, ['wchunks * Nq', G, 'B'], ['route_scratch', 'indices', ...user]),
        )
      : []),
  ];
}

/** The attention over each row's selected keys: split over key ranges, then merged. */
export function selectAttentionEntries(k: AttentionKernel): EntryPoint[] {
  const user = userTensors(k);
  return [
    selEntry(
      k,
      'attn',
      SEL_ATTN_THREADS,
      ['splits * Nq', 'H', 'B'],
      ['q', 'k', 'v', 'out', 'lse', 'indices', 'route_scratch', ...user],
    ),
    selEntry(k, 'merge', SEL_ATTN_THREADS, ['Nq', 'H', 'B'], ['route_scratch', 'out', 'lse']),
  ];
}

export function selectBindingShapes(
  k: AttentionKernel,
): Record<'indices' | 'scratch', { dtype: Binding['dtype']; shape: string[]; access: Binding['access'] }> {
  const r = k.routing!;
  return {
    indices: {
      dtype: 'i32',
      shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)!],
      access: 'read_write',
    },
    scratch: { dtype: 'f32', shape: [scratchShape(k)], access: 'read_write' },
  };
}
