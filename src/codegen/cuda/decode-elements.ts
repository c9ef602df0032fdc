// The per-element functions of CUDA decode mode (decode.ts): the tile classifier, the mask and
// the score modifier as device functions of (b, h, qpos, kpos), rendered from the kernel's
// expressions over the Args sizes.
import type { AttentionKernel } from '../../ir/kernel.js';
import { Op } from '../../ir/ops.js';
import { linearize } from '../linearize.js';
import { cudaRenderer, cudaSizeVars, type CudaContext } from './rules.js';

export interface DecodeElements {
  /** The device functions: tile_class (dynamic classes), elem_mask, elem_score (as needed). */
  readonly fns: string[];
  readonly dynamic: boolean;
  /** The class of every tile when not dynamic: 1 full, 2 partial. */
  readonly staticClass: 1 | 2;
  readonly needMask: boolean;
  /** The score is q·k itself (no elem_score). */
  readonly identity: boolean;
}

export function decodeElementFns(k: AttentionKernel, cx: CudaContext): DecodeElements {
  const render = (root: Parameters<typeof linearize>[0][number], vars: Record<string, string>, p: string) =>
    linearize([root], cudaRenderer({ ...cx, vars: { ...cudaSizeVars, ...vars } }), p);
  const ind = (xs: readonly string[]): string[] => xs.map((x) => `  ${x}`);
  const dynamic = k.tiles.kind === 'dynamic';
  const staticClass: 1 | 2 = k.tiles.kind === 'static' ? (k.tiles.value === 'full' ? 1 : 2) : 2;
  const fns: string[] = [];
  if (k.tiles.kind === 'dynamic') {
    const tv = { b: 'b', h: 'h', q_lo: 'q_lo', q_hi: 'q_hi', k_lo: 'k_lo', k_hi: 'k_hi' };
    const t = render(k.tiles.canBeTrue, tv, 'ct');
    const f = render(k.tiles.canBeFalse, tv, 'cf');
    fns.push(
      '// Tile class of rows q_lo..q_hi x keys k_lo..k_hi (positions): 0 empty, 1 full, 2 partial.',
      '__device__ __forceinline__ int tile_class(const Args& a, int b, int h, int q_lo, int q_hi, int k_lo, int k_hi) {',
      ...ind(t.stmts),
      `  if (!(${t.roots[0]})) return 0;`,
      ...ind(f.stmts),
      `  return (${f.roots[0]}) ? 2 : 1;`,
      '}',
    );
  }
  const ev = { b: 'b', h: 'h', q: 'qpos', k: 'kpos' };
  const needMask = k.tiles.kind === 'dynamic' || staticClass === 2;
  if (needMask) {
    const m = render(k.mask, ev, 'm');
    fns.push(
      '__device__ __forceinline__ bool elem_mask(const Args& a, int b, int h, int qpos, int kpos) {',
      ...ind(m.stmts),
      `  return ${m.roots[0]};`,
      '}',
    );
  }
  const identity = k.score.op === Op.VAR && k.score.arg === 'score';
  if (!identity) {
    const sc = render(k.score, { ...ev, score: 'x' }, 'sc');
    fns.push(
      '__device__ __forceinline__ float elem_score(const Args& a, int b, int h, int qpos, int kpos, float x) {',
      ...ind(sc.stmts),
      `  return ${sc.roots[0]};`,
      '}',
    );
  }
  return { fns, dynamic, staticClass, needMask, identity };
}
