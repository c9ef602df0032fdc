// Block routing on CUDA, the launcher's side: argument checks, the pooling and top-k launches
// before the attention, the scratch-size function, the manifest record and the attention's
// shared-memory reservation (device code: routing.ts, routing-topk.ts).
import { show } from '../../ir/graph.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { capacityShapeExpr, routingGroups } from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import { rankedBlocksOf } from './routing-case.js';
import { routePoolName, routeScratchElemsName, routingScratchShape } from './routing.js';
import { hasTensorTopk, tensorTopkEntry, tensorTopkHostLaunch } from './routing-topk-mma.js';
import { ROUTE_THREADS, routeTopkName, unitsPerBlock } from './routing-topk.js';
import { tokenHostLaunch } from './token-host.js';

/** Host checks of the launcher (inside `attnc_<name>_launch`, `a` the args). */
export function routingHostChecks(k: AttentionKernel, ns: string): string[] {
  return [
    `for (int c = 0; c < 3; ++c) {`,
    `  const long long n = ${ns}::route_count(a, c);`,
    `  if (n < 0 || n > (1 << 20)) return fail(ATTNC_ERR_ARGS, "routing count %s is %lld, must be in [0, 2^20]", c == 0 ? "topk" : c == 1 ? "first" : "local", n);`,
    `}`,
    `if (a.k_offset < 0) return fail(ATTNC_ERR_ARGS, "routing needs key positions >= 0 (k_offset = %d)", a.k_offset);`,
    `if ((long long)a.B * ${ns}::route_groups(a) * a.Nq * ${ns}::route_cap(a) > 0 && a.indices == NULL) return fail(ATTNC_ERR_ARGS, "indices is NULL (int[B, ${routingGroups(k.routing!)}, Nq, ${capacityShapeExpr(k.routing!)}])");`,
    `if (a.Nk > 0 && a.route_scratch == NULL) return fail(ATTNC_ERR_ARGS, "route_scratch is NULL (${routeScratchElemsName(k)}() floats)");`,
  ];
}

/** Host launches of the routing passes, on `stream`, before the attention. */
export function routingHostLaunch(k: AttentionKernel, ns: string): string[] {
  const r = rankedBlocksOf(k);
  const pool = (side: 'k' | 'q'): string[] => {
    const [n, heads] = side === 'k' ? ['a.Nk', 'a.Hkv'] : ['a.Nq', 'a.H'];
    const off = side === 'k' ? 'a.k_offset' : 'a.q_offset';
    return [
      `if (${n} > 0) {`,
      `  const int nb = ${ns}::route_floor_div(${off} + ${n} - 1, ${ns}::RB) - ${ns}::route_floor_div(${off}, ${ns}::RB) + 1;`,
      `  ${ns}::${routePoolName(k, side)}<<<dim3(nb, ${heads}, a.B), ${ROUTE_THREADS}, 0, stream>>>(a);`,
      `  const cudaError_t e = cudaGetLastError();`,
      `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_pool_${side}: %s", cudaGetErrorString(e));`,
      `}`,
    ];
  };
  return [
    '// Block routing: pool, then rank (indices), then the attention reads the selection.',
    ...pool('k'),
    ...(r.source.q === 'raw' ? [] : pool('q')),
    ...(hasTensorTopk(k) ? tensorTopkHostLaunch(k, ns) : []),
    `if (${ns}::route_units(a) > 0 && ${ns}::route_cap(a) > 0) {`,
    `  const size_t rsmem = ${ns}::route_topk_smem(a);`,
    `  if (rsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: %d key blocks need %zu bytes of top-k shared memory, the limit is 232448", ${ns}::route_nkb(a), rsmem);`,
    `  if (rsmem > 48 * 1024) {`,
    `    const cudaError_t e = cudaFuncSetAttribute(${ns}::${routeTopkName(k)}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rsmem);`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: cannot reserve %zu bytes of shared memory: %s", rsmem, cudaGetErrorString(e));`,
    `  }`,
    `  const dim3 rgrid((${ns}::route_units(a) + ${ns}::ROUTE_UT - 1) / ${ns}::ROUTE_UT, ${ns}::route_groups(a), a.B);`,
    `  ${ns}::${routeTopkName(k)}<<<rgrid, ${ROUTE_THREADS}, rsmem, stream>>>(a);`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk: %s", cudaGetErrorString(e));`,
    `}`,
    ...tokenHostLaunch(k, ns),
  ];
}

/** `size_t attnc_<name>_route_scratch_elems(const Args*)`: floats of `route_scratch`. */
export function routingHostFns(k: AttentionKernel, struct: string, ns: string): string[] {
  return [
    `extern "C" size_t ${routeScratchElemsName(k)}(const ${struct}* args) {`,
    `  return ${ns}::route_scratch_size(*args);`,
    '}',
  ];
}

/** Header prototype of the scratch-size function. */
export function routingHeaderLines(k: AttentionKernel, struct: string): string[] {
  return [
    '/* Floats of the route_scratch buffer (pooled keys and queries) for these sizes. */',
    `size_t ${routeScratchElemsName(k)}(const ${struct}* args);`,
  ];
}

/** Launch record of the `pool` stage of `side` (informational for CUDA: the launcher runs it). */
export function routingPoolEntry(k: AttentionKernel, side: 'k' | 'q'): EntryPoint {
  const n = rankedBlocksOf(k).unit.size;
  return {
    name: routePoolName(k, side),
    role: 'routing',
    workgroupSize: [ROUTE_THREADS, 1, 1],
    grid: side === 'k' ? [`cdiv(Nk, ${n}) + 1`, 'Hkv', 'B'] : [`cdiv(Nq, ${n}) + 1`, 'H', 'B'],
    bindings: [side, 'route_scratch'],
  };
}

/** Launch records of the `rank` stage: the top-k (and its tensor-core affinities when used). */
export function routingRankEntries(k: AttentionKernel): EntryPoint[] {
  const r = rankedBlocksOf(k);
  const units = r.source.q === 'raw' ? 'Nq' : `cdiv(Nq, ${r.unit.size}) + 1`;
  return [
    {
      name: routeTopkName(k),
      role: 'routing',
      workgroupSize: [ROUTE_THREADS, 1, 1],
      grid: [`cdiv(${units}, ${unitsPerBlock(r)})`, routingGroups(r), 'B'],
      bindings: [
        ...(r.source.q === 'raw' ? ['q'] : []),
        'route_scratch',
        'indices',
        ...k.tensors.map((t) => t.name),
      ],
    },
    ...(hasTensorTopk(k) ? [tensorTopkEntry(k)] : []),
  ];
}

/** The manifest's routing record: what a caller needs to size `indices` and `route_scratch`. */
export function routingManifest(k: AttentionKernel): object {
  const r = rankedBlocksOf(k);
  return {
    blockSize: r.unit.size,
    q: r.source.q,
    k: r.source.k,
    vote: r.source.vote ?? null,
    topk: show(r.source.count),
    first: show(r.first),
    local: show(r.local),
    indices: { dtype: 'i32', shape: ['B', routingGroups(r), 'Nq', capacityShapeExpr(r)] },
    scratch: {
      dtype: 'f32',
      elemsFunction: routeScratchElemsName(k),
      shape: [routingScratchShape(r, k.schedule.headDim, k)],
    },
  };
}

/** The attention's dynamic shared memory: the core's, then two tile bitmaps (selected, gaps). */
export function routedSmem(entry: string, ns: string, blockK: number): string[] {
  return [
    `const size_t smem = ${ns}::ROUTE_SMEM_OFF + 8 * (size_t)(((a.Nk + ${blockK - 1}) / ${blockK} + 31) / 32);`,
    `if (smem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "routing: Nk = %d needs %zu bytes of attention shared memory, the limit is 232448", a.Nk, smem);`,
    `if (smem > 44 * 1024) {`,
    `  const cudaError_t e = cudaFuncSetAttribute(${entry}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "cannot reserve %zu bytes of shared memory: %s", smem, cudaGetErrorString(e));`,
    `}`,
  ];
}

/** Header comment of the `indices` and `route_scratch` fields. */
export function routingFieldDoc(k: AttentionKernel, role: 'indices' | 'scratch'): string {
  const r = k.routing!;
  return role === 'indices'
    ? `int[B, ${routingGroups(r)}, Nq, ${capacityShapeExpr(r)}], written: selected block ids (ascending, -1 padded)`
    : `scratch: ${routeScratchElemsName(k)}() floats (pooled blocks)`;
}
