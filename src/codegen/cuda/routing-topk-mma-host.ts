// Host side of the tensor-core top-k (routing-topk-mma.ts): its launch in the routing launcher
// and its entry record.
import type { AttentionKernel } from '../../ir/kernel.js';
import { routingGroups } from '../../ir/routing.js';
import type { EntryPoint } from '../artifact.js';
import { ROUTE_TC_THREADS, ROUTE_TC_WARPS, routeTopkTcName } from './routing-topk-mma-parts.js';

/** Host launch of the tensor-core top-k (when topk ≤ ROUTE_KMAX and its shared memory fits), else falls through. */
export function tensorTopkHostLaunch(k: AttentionKernel, ns: string): string[] {
  const name = `${ns}::${routeTopkTcName(k)}`;
  return [
    `if (a.Nq > 0 && ${ns}::route_cap(a) > 0 && ${ns}::route_count(a, 0) <= ${ns}::ROUTE_KMAX &&`,
    `    ${ns}::route_tc_smem(a, (int)${ns}::route_count(a, 0)) <= 227 * 1024) {`,
    `  // Raw queries: tensor-core affinities + streaming top-k (routing-topk-mma.ts); its shared`,
    `  // memory grows with topk, D and the voters: past the limit the SIMT pass ranks.`,
    `  const size_t tsmem = ${ns}::route_tc_smem(a, (int)${ns}::route_count(a, 0));`,
    `  if (tsmem > 48 * 1024) {`,
    `    const cudaError_t e = cudaFuncSetAttribute(${name}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)tsmem);`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk_tc: cannot reserve %zu bytes of shared memory: %s", tsmem, cudaGetErrorString(e));`,
    `  }`,
    `  const dim3 tgrid((a.Nq + ${ns}::ROUTE_MQ - 1) / ${ns}::ROUTE_MQ, ${ns}::route_groups(a), a.B);`,
    `  ${name}<<<tgrid, ${ns}::ROUTE_THREADS, tsmem, stream>>>(a);`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "route_topk_tc: %s", cudaGetErrorString(e));`,
    `} else`,
  ];
}

/** Launch record of the tensor-core top-k (informational: the launcher picks it or the SIMT one). */
export function tensorTopkEntry(k: AttentionKernel): EntryPoint {
  return {
    name: routeTopkTcName(k),
    role: 'routing',
    workgroupSize: [ROUTE_TC_THREADS, 1, 1],
    grid: [`cdiv(Nq, ${16 * ROUTE_TC_WARPS})`, routingGroups(k.routing!), 'B'],
    bindings: ['q', 'route_scratch', 'indices', ...k.tensors.map((t) => t.name)],
  };
}
