// Key-major token attention (Schedule.tokenOrder 'key'), the launcher's side: the five launches
// after the top-k (count, scan, scatter, attention per key block, merge), their launch records,
// and the scratch they take after the pooled keys in `route_scratch` (tkm_layout, emitted with
// routing.ts's helpers so that route_scratch_size covers it).
import type { AttentionKernel } from '../../ir/kernel.js';
import type { EntryPoint } from '../artifact.js';
import { afterAttention } from './importance.js';
import { capacityShapeExpr } from '../../ir/routing.js';
import { TKM_MERGE_WARPS } from './token-keymajor.js';
import { rankedBlocksOf } from './routing-case.js';
import {
  TKM_CHUNK,
  TKM_COUNT_THREADS,
  TKM_ROWS,
  TKM_SCAN_THREADS,
  TKM_WARPS,
  tkmName,
} from './token-keymajor-index.js';

/** Launcher lines of the key-major passes (inside token-host.ts's aligned-pointer block). */
export function keyMajorHostLaunch(k: AttentionKernel, ns: string): string[] {
  const fn = (pass: string): string => `${ns}::${tkmName(k, pass)}`;
  const launched = (pass: string): string[] => [
    '  {',
    '    const cudaError_t e = cudaGetLastError();',
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "key-major ${pass}: %s", cudaGetErrorString(e));`,
    '  }',
  ];
  return [
    // No selected slots (top, first and local all 0): nothing to invert or attend; the merge alone
    // writes the empty rows (out 0, lse -inf). The attention pass divides list entries by cap.
    `  if (a.Nq > 0 && ${ns}::route_cap(a) > 0) {`,
    `  // Key-major (tokenOrder 'key'): invert the selection, attend per key block, merge per row.`,
    `  if (${ns}::tkm_list_cap(a) >= (1LL << 31)) return fail(ATTNC_ERR_ARGS, "key-major token attention: Nq * H / Hkv * cap = %lld rows, must be below 2^31", ${ns}::tkm_list_cap(a));`,
    `  const size_t csmem = sizeof(int) * ${ns}::route_nk_stride(a);`,
    `  if (csmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "key-major token attention: %d key blocks, at most %d", ${ns}::route_nk_stride(a), 227 * 256);`,
    ...['count', 'scatter'].flatMap((p) => [
      `  if (csmem > 48 * 1024 && cudaFuncSetAttribute(${fn(p)}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)csmem) != cudaSuccess)`,
      `    return fail(ATTNC_ERR_CUDA, "key-major ${p}: cannot reserve %zu bytes of shared memory", csmem);`,
    ]),
    `  const dim3 cgrid(${ns}::tkm_chunks(a), a.Hkv, a.B);`,
    `  ${fn('count')}<<<cgrid, ${TKM_COUNT_THREADS}, csmem, stream>>>(a);`,
    ...launched('count'),
    `  ${fn('scan')}<<<dim3(1, a.Hkv, a.B), ${TKM_SCAN_THREADS}, 0, stream>>>(a);`,
    ...launched('scan'),
    `  ${fn('scatter')}<<<cgrid, 32, csmem, stream>>>(a);`,
    ...launched('scatter'),
    `  const size_t ksmem = ${ns}::tkm_smem_bytes();`,
    `  if (ksmem > 48 * 1024 && cudaFuncSetAttribute(${fn('attn')}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ksmem) != cudaSuccess)`,
    `    return fail(ATTNC_ERR_CUDA, "key-major attention: cannot reserve %zu bytes of shared memory", ksmem);`,
    `  // Units: ceil(rows / TKM_ROWS) per key block, at most list cap / TKM_ROWS + key blocks.`,
    `  const long long ubound = ${ns}::tkm_list_cap(a) / ${ns}::TKM_ROWS + ${ns}::route_nk_stride(a) + 1;`,
    `  ${fn('attn')}<<<dim3((unsigned)ubound, a.Hkv, a.B), ${ns}::TKM_THREADS, ksmem, stream>>>(a, tok_qscale);`,
    ...launched('attention'),
    `  }`,
    `  const long long mrows = (long long)a.B * a.H * a.Nq;`,
    `  if (mrows > 0) ${fn('merge')}<<<(unsigned)((mrows + ${TKM_MERGE_WARPS - 1}) / ${TKM_MERGE_WARPS}), ${32 * TKM_MERGE_WARPS}, 0, stream>>>(a);`,
    ...launched('merge'),
    `  return ${afterAttention(k, ns)};`,
  ];
}

/** Launch records of the key-major passes, in launch order. */
export function keyMajorEntries(k: AttentionKernel): EntryPoint[] {
  const used = ['q', 'k', 'v', 'out', ...(k.outputs.lse ? ['lse'] : []), ...k.tensors.map((t) => t.name)];
  const chunks: readonly [string, string, string] = [`cdiv(Nq, ${TKM_CHUNK})`, 'Hkv', 'B'];
  const n = rankedBlocksOf(k).unit.size;
  return [
    {
      name: tkmName(k, 'count'),
      role: 'routing',
      workgroupSize: [TKM_COUNT_THREADS, 1, 1],
      grid: chunks,
      bindings: ['indices', 'route_scratch'],
    },
    {
      name: tkmName(k, 'scan'),
      role: 'routing',
      workgroupSize: [TKM_SCAN_THREADS, 1, 1],
      grid: ['1', 'Hkv', 'B'],
      bindings: ['route_scratch'],
    },
    {
      name: tkmName(k, 'scatter'),
      role: 'routing',
      workgroupSize: [32, 1, 1],
      grid: chunks,
      bindings: ['indices', 'route_scratch'],
    },
    {
      name: tkmName(k, 'attn'),
      role: 'attention',
      workgroupSize: [32 * TKM_WARPS, 1, 1],
      // An upper bound on the work units (blocks past the last unit return at once).
      grid: [
        `cdiv(Nq * H * (${capacityShapeExpr(k.routing!)}), ${TKM_ROWS} * Hkv) + cdiv(Nk, ${n}) + 2`,
        'Hkv',
        'B',
      ],
      bindings: [...used, 'indices', 'route_scratch'],
    },
    {
      name: tkmName(k, 'merge'),
      // As selection's merge (select-host.ts): an entry with role 'attention' takes (args, qscale).
      role: 'routing',
      workgroupSize: [32 * TKM_MERGE_WARPS, 1, 1],
      grid: [`cdiv(B * H * Nq, ${TKM_MERGE_WARPS})`, '1', '1'],
      bindings: ['out', ...(k.outputs.lse ? ['lse'] : []), 'indices', 'route_scratch'],
    },
  ];
}
