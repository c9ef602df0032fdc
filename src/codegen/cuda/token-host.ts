// The launcher's side of the token attention (token-attn.ts): its launch, which replaces the core
// attention's, and its launch record. The mma form reads q and writes out 4 bytes at a time and
// stages K/V 16 bytes at a time; with pointers not aligned for that, the launcher falls through
// to the core attention (still compiled in the artifact), which runs the same selection.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { EntryPoint } from '../artifact.js';
import { afterAttention } from './importance.js';
import { tokenAttentionName, tokenPlan, type TokenPlan } from './token-form.js';
import { keyMajorEntries, keyMajorHostLaunch } from './token-keymajor-host.js';

/** The opening of the token launch's block: guarded by the pointer alignment the mma form needs. */
const opening = (plan: TokenPlan): string =>
  plan.form === 'mma'
    ? 'if ((uintptr_t)a.q % 4 == 0 && (uintptr_t)a.out % 4 == 0 && (uintptr_t)a.k % 16 == 0 && (uintptr_t)a.v % 16 == 0) {'
    : '{';

/** Launcher lines after the routing passes: the token attention, then the launcher returns. */
export function tokenHostLaunch(k: AttentionKernel, ns: string): string[] {
  const plan = tokenPlan(k);
  if (!plan) return [];
  const identityScore = k.score.op === 'var' && k.score.arg === 'score';
  const fn = `${ns}::${tokenAttentionName(k)}`;
  const qscale = `  const float tok_qscale = a.scale${identityScore ? ` * ${ns}::LOG2E` : ''};`;
  if (plan.keyMajor)
    return [
      `// Raw-query routing: the key-major token attention (token-keymajor.ts) instead of the core's q-tiles.`,
      opening(plan),
      qscale,
      ...keyMajorHostLaunch(k, ns),
      `}`,
    ];
  return [
    `// Raw-query routing: the token-granular attention (${plan.form} form) instead of the core's q-tiles.`,
    opening(plan),
    qscale,
    `  const size_t tsmem = ${ns}::tok_smem_bytes();`,
    `  if (tsmem > 227 * 1024) return fail(ATTNC_ERR_ARGS, "token attention: %zu bytes of shared memory, the limit is 232448", tsmem);`,
    `  if (tsmem > 48 * 1024) {`,
    `    const cudaError_t e = cudaFuncSetAttribute(${fn}, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)tsmem);`,
    `    if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "token attention: cannot reserve %zu bytes of shared memory: %s", tsmem, cudaGetErrorString(e));`,
    `  }`,
    `  const long long rows = (long long)a.Nq * (a.H / a.Hkv), per = 16LL * ${ns}::TOK_WARPS;`,
    `  const dim3 tgrid((unsigned)((rows + per - 1) / per), a.Hkv, a.B);`,
    `  ${fn}<<<tgrid, ${ns}::TOK_THREADS, tsmem, stream>>>(a, tok_qscale);`,
    `  const cudaError_t e = cudaGetLastError();`,
    `  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "token attention: %s", cudaGetErrorString(e));`,
    `  return ${afterAttention(k, ns)};`,
    `}`,
  ];
}

/** Launch records of the token attention: the query-major kernel, or the key-major passes. */
export function tokenAttentionEntries(k: AttentionKernel, plan: TokenPlan): EntryPoint[] {
  return plan.keyMajor ? keyMajorEntries(k) : [tokenAttentionEntry(k, plan)];
}

/** Launch record of the token attention (grid over stacked rows Nq · H / Hkv in blocks of 16 · warps, kv heads, batch; in the shape grammar, which has no division). */
export function tokenAttentionEntry(k: AttentionKernel, plan: TokenPlan): EntryPoint {
  const used = ['q', 'k', 'v', 'out', ...(k.outputs.lse ? ['lse'] : []), ...k.tensors.map((t) => t.name)];
  return {
    name: tokenAttentionName(k),
    role: 'attention',
    workgroupSize: [32 * plan.warps, 1, 1],
    grid: [`cdiv(Nq * H, ${16 * plan.warps} * Hkv)`, 'Hkv', 'B'],
    bindings: [...used, 'indices'],
  };
}
