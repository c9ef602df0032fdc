// The kernels of the CUDA SIMT backward (backward.ts assembles them): the dq and dk/dv passes, the
// deterministic slot reduction, tile summaries, the tile classifier and the all-empty variant.
import { gradientRoots, type ScoreGradient } from '../../ir/derive.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { TileMode } from '../../ir/tile-mode.js';
import { linearize } from '../linearize.js';
import { padLines } from '../pad-lines.js';
import { voidIfUnread } from './unused.js';
import type { RoutingStage } from './backward-routing.js';
import { ARGS, cudaRenderer, cudaType, dimText, type CudaContext } from './rules.js';

/** A pair's scaled q·k, which a score expression may ignore (`score exp(c)`). */
const SCORE_DECL = 'const float score = a.scale * qk;';

/**
 * A pair's body with `(void)` casts for its scaled q·k and its position (`pos`, declared first),
 * where neither the score nor the mask reads them (`score exp(c)`, a mask without q): nvcc -Werror.
 */
const unreadVoided = (pair: readonly string[], pos: 'q' | 'k'): string[] =>
  voidIfUnread(voidIfUnread(pair, pair.indexOf(SCORE_DECL), 'score'), 0, pos);

export const THREADS = 64;
export const BLOCK = 16;
export type Mode = TileMode;

export const field = (key: string): string => {
  const [kind, name] = key.split(':') as [string, string];
  if (kind === 'param') return `p_${name}`;
  if (kind === 'tensor') return `t_${name}`;
  if (kind === 'summary') return `s_${name}`;
  throw new Error(`CUDA backward: no args field for ${key}`);
};

/** Per-block [min, max] of a 1-D tensor (a thread per block), as the forward's summary pass. */
export function summaryKernel(kernel: AttentionKernel, tensor: string): string[] {
  const t = kernel.tensors.find((x) => x.name === tensor)!;
  const ty = cudaType[t.dtype];
  const [lowest, highest, lo, hi] =
    t.dtype === 'i32' ? ['INT_MIN', 'INT_MAX', 'min', 'max'] : ['-INFINITY', 'INFINITY', 'fminf', 'fmaxf'];
  return [
    `__global__ void __launch_bounds__(THREADS) bwd_summary_${tensor}(const Args a) {`,
    `  const long long len = ${dimText(t.dims[0]!, field)};`,
    '  const long long blk = (long long)blockIdx.x * THREADS + threadIdx.x;',
    '  const long long start = blk * SUMMARY_BLOCK;',
    '  if (start >= len) return;',
    '  const long long end = start + SUMMARY_BLOCK < len ? start + SUMMARY_BLOCK : len;',
    `  ${ty} lo = ${highest}, hi = ${lowest};`,
    `  for (long long i = start; i < end; ++i) { lo = ${lo}(lo, a.t_${tensor}[i]); hi = ${hi}(hi, a.t_${tensor}[i]); }`,
    `  a.s_${tensor}[2 * blk] = lo;`,
    `  a.s_${tensor}[2 * blk + 1] = hi;`,
    '}',
  ];
}

function maskLines(mode: Mode, mask: { stmts: string[]; roots: string[] }): string[] {
  if (mode === 'full') return [];
  const test = [...mask.stmts, `if (!(${mask.roots[0]!})) continue;`];
  return mode === 'partial' ? test : ['if (cls == TILE_PARTIAL) {', ...padLines(test, '  '), '}'];
}

/** Slot offset of every tensor's gradient (after the params), as C text over the args. */
export function tensorSlots(
  kernel: AttentionKernel,
  grad: ScoreGradient,
  tensors: readonly string[],
): Map<string, string> {
  const out = new Map<string, string>();
  let at = String(grad.params.length);
  for (const name of tensors) {
    out.set(name, at);
    const t = kernel.tensors.find((x) => x.name === name)!;
    at = `${at} + ${t.dims.map((d) => `(${dimText(d, field)})`).join(' * ')}`;
  }
  return out;
}

export function dqKernel(
  kernel: AttentionKernel,
  grad: ScoreGradient,
  mode: Mode,
  cx: CudaContext,
  slots: Map<string, string>,
  route?: RoutingStage,
): string[] {
  if (mode === 'empty') return emptyKernel('bwd_dq', 'a.B * a.H * a.Nq', ['dq', 'D'], undefined, true);
  const r = cudaRenderer(cx);
  const mask = linearize([kernel.mask], r, 'mk');
  const e = linearize(gradientRoots(kernel.score, grad), r, 'sc');
  const np = grad.params.length;
  const dLoad = e.roots.slice(2 + np, 2 + np + grad.loads.length);
  let at = 2 + np + grad.loads.length;
  const scatter = grad.loads.map((l, n) => {
    const idx = e.roots.slice(at, (at += l.load.src.length));
    const t = kernel.tensors.find((x) => x.name === l.tensor)!;
    const ok = idx.map((x, i) => `${x} >= 0 && ${x} < ${dimText(t.dims[i]!, field)}`).join(' && ');
    let flat = `(long long)(${idx[0]!})`;
    for (let i = 1; i < idx.length; i++) flat = `(${flat}) * ${dimText(t.dims[i]!, field)} + ${idx[i]!}`;
    return `if (${ok}) part[${slots.get(l.tensor)!} + ${flat}] += dsp * ${dLoad[n]!};`;
  });
  const pair = (m: Mode): string[] => [
    `const int k = ${ARGS}.k_offset + j;`,
    ...maskLines(m, mask),
    'float qk = 0.f;',
    'for (int d = 0; d < D; ++d) qk += qv[d] * a.k[(kv0 + j) * D + d];',
    SCORE_DECL,
    ...e.stmts,
    `const float p = expf(${e.roots[0]!} - lse);`,
    'if (p == 0.f) continue; // weight 0: no gradient flows',
    'float dp = 0.f;',
    'for (int d = 0; d < DV; ++d) dp += go[d] * a.v[(kv0 + j) * DV + d];',
    "const float dsp = p * (dp - delta); // dL/dscore'",
    `const float ds = dsp * ${e.roots[1]!}; // dL/dscore`,
    'for (int d = 0; d < D; ++d) dq[d] += ds * a.k[(kv0 + j) * D + d];',
    ...e.roots.slice(2, 2 + np).map((x, n) => `part[${n}] += dsp * ${x};`),
    ...scatter,
  ];
  const loop = route
    ? route.rowWalk(unreadVoided(pair(routedPairMode(mode)), 'k'))
    : tiledLoop(mode, unreadVoided(pair(mode), 'k'));
  const kernelLines = [
    `__global__ void __launch_bounds__(THREADS) bwd_dq(const Args a) {`,
    '  const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;',
    '  if (r >= (long long)a.B * a.H * a.Nq) return;',
    '  const int i = (int)(r % a.Nq);',
    '  const int h = (int)((r / a.Nq) % a.H);',
    '  const int b = (int)(r / ((long long)a.Nq * a.H));',
    '  const long long kv0 = ((long long)b * a.Hkv + h / (a.H / a.Hkv)) * a.Nk;',
    '  const int q = a.q_offset + i;',
    '  const float lse = a.lse[r];',
    '  float qv[D], go[DV], dq[D];',
    '  for (int d = 0; d < D; ++d) { qv[d] = a.q[r * D + d]; dq[d] = 0.f; }',
    '  float delta = 0.f;',
    '  for (int d = 0; d < DV; ++d) { go[d] = a.dout[r * DV + d]; delta += go[d] * a.out[r * DV + d]; }',
    "  if (a.dlse) delta -= a.dlse[r]; // lse's gradient: ∂lse/∂score′ = P adds dlse·P to dscore′",
    '  a.delta[r] = delta;',
    "  float* part = a.partials + r * a.slots; // this row's own slice: no other writer",
    '  for (int s = 0; s < a.slots; ++s) part[s] = 0.f;',
    ...padLines(loop, '  '),
    '  for (int d = 0; d < D; ++d) a.dq[r * D + d] = a.scale * dq[d];',
    '}',
  ];
  // No mask (stdlib/full.attn) reads no query position.
  return voidIfUnread(kernelLines, kernelLines.indexOf('  const int q = a.q_offset + i;'), 'q');
}

/** A pair's mask mode in a routed walk: it has no tiles, so a dynamic mask is tested on every pair. */
const routedPairMode = (mode: Mode): Mode => (mode === 'dynamic' ? 'partial' : mode);

/** A dq row's walk over every key, tile by tile (empty tiles skipped in dynamic mode). */
function tiledLoop(mode: Mode, pair: readonly string[]): string[] {
  const keys = { start: 'k0', end: 'k_end', at: 'j', count: 'a.Nk' };
  const cls = 'a, b, h, q, q, a.k_offset + k0, a.k_offset + k_end - 1';
  return ['if (lse != -INFINITY) {', ...padLines(tiledAxis(mode, keys, cls, pair), '  '), '}'];
}

/**
 * `pair` over indices [0, count) of one axis in BLOCK tiles (index `at`, tile [start, end)); in
 * dynamic mode a tile tile_class(`cls`) finds empty is skipped.
 */
function tiledAxis(
  mode: Mode,
  axis: { start: string; end: string; at: string; count: string },
  cls: string,
  pair: readonly string[],
): string[] {
  const { start, end, at, count } = axis;
  return [
    `for (int ${start} = 0; ${start} < ${count}; ${start} += BLOCK) {`,
    `  const int ${end} = min(${start} + BLOCK, ${count});`,
    ...(mode === 'dynamic'
      ? [`  const int cls = tile_class(${cls});`, '  if (cls == TILE_EMPTY) continue;']
      : []),
    `  for (int ${at} = ${start}; ${at} < ${end}; ++${at}) {`,
    ...padLines(pair, '    '),
    '  }',
    '}',
  ];
}

export function dkdvKernel(
  kernel: AttentionKernel,
  grad: ScoreGradient,
  mode: Mode,
  cx: CudaContext,
  route?: RoutingStage,
): string[] {
  if (mode === 'empty')
    return emptyKernel('bwd_dkdv', 'a.B * a.Hkv * a.Nk', ['dk', 'D'], ['dv', 'DV'], false);
  const r = cudaRenderer(cx);
  const mask = linearize([kernel.mask], r, 'mk');
  const e = linearize([kernel.score, grad.dScore], r, 'sc');
  const pair = (m: Mode): string[] => [
    'const int q = a.q_offset + i;',
    ...maskLines(m, mask),
    'const long long row = row0 + i;',
    'const float lse = a.lse[row];',
    'if (lse == -INFINITY) continue; // a row with no allowed key',
    'float qk = 0.f;',
    'for (int d = 0; d < D; ++d) qk += a.q[row * D + d] * kv[d];',
    SCORE_DECL,
    ...e.stmts,
    `const float p = expf(${e.roots[0]!} - lse);`,
    'if (p == 0.f) continue;',
    'float dp = 0.f;',
    'for (int d = 0; d < DV; ++d) dp += a.dout[row * DV + d] * vv[d];',
    `const float ds = p * (dp - a.delta[row]) * ${e.roots[1]!};`,
    'for (int d = 0; d < DV; ++d) dv[d] += p * a.dout[row * DV + d];',
    'for (int d = 0; d < D; ++d) dk[d] += ds * a.q[row * D + d];',
  ];
  const loop = route
    ? route.keyWalk(unreadVoided(pair(routedPairMode(mode)), 'q'))
    : tiledRowLoop(mode, unreadVoided(pair(mode), 'q'));
  const kernelLines = [
    `__global__ void __launch_bounds__(THREADS) bwd_dkdv(const Args a) {`,
    '  const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;',
    '  if (r >= (long long)a.B * a.Hkv * a.Nk) return;',
    '  const int j = (int)(r % a.Nk);',
    '  const int kvh = (int)((r / a.Nk) % a.Hkv);',
    '  const int b = (int)(r / ((long long)a.Nk * a.Hkv));',
    '  const int k = a.k_offset + j;',
    '  const int group = a.H / a.Hkv;',
    '  float kv[D], vv[DV], dk[D], dv[DV];',
    '  for (int d = 0; d < D; ++d) { kv[d] = a.k[r * D + d]; dk[d] = 0.f; }',
    '  for (int d = 0; d < DV; ++d) { vv[d] = a.v[r * DV + d]; dv[d] = 0.f; }',
    ...padLines(loop, '  '),
    '  for (int d = 0; d < D; ++d) a.dk[r * D + d] = a.scale * dk[d];',
    '  for (int d = 0; d < DV; ++d) a.dv[r * DV + d] = dv[d];',
    '}',
  ];
  return voidIfUnread(kernelLines, kernelLines.indexOf('  const int k = a.k_offset + j;'), 'k');
}

/** A kv row's walk over every query row of its head group, tile by tile (empty tiles skipped in dynamic mode). */
function tiledRowLoop(mode: Mode, pair: readonly string[]): string[] {
  const rows = { start: 'i0', end: 'i_end', at: 'i', count: 'a.Nq' };
  const cls = 'a, b, h, a.q_offset + i0, a.q_offset + i_end - 1, k, k';
  return [
    'for (int g = 0; g < group; ++g) {',
    '  const int h = kvh * group + g;',
    '  const long long row0 = ((long long)b * a.H + h) * a.Nq;',
    ...padLines(tiledAxis(mode, rows, cls, pair), '  '),
    '}',
  ];
}

/** A mask no pair passes: every gradient is 0 (the row's partial slice too). */
function emptyKernel(
  name: string,
  rows: string,
  first: [string, string],
  second: [string, string] | undefined,
  partials: boolean,
): string[] {
  const zero = ([buf, dim]: [string, string]): string =>
    `  for (int d = 0; d < ${dim}; ++d) a.${buf}[r * ${dim} + d] = 0.f;`;
  return [
    `__global__ void __launch_bounds__(THREADS) ${name}(const Args a) {`,
    '  const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;',
    `  if (r >= (long long)${rows}) return;`,
    zero(first),
    ...(second ? [zero(second)] : []),
    ...(partials ? ['  for (int s = 0; s < a.slots; ++s) a.partials[r * a.slots + s] = 0.f;'] : []),
    '}',
  ];
}

export const reduceKernel = [
  "// Slot s of the gradients: the rows' partials summed in row order (deterministic).",
  '__global__ void __launch_bounds__(THREADS) bwd_reduce(const Args a) {',
  '  const long long s = (long long)blockIdx.x * THREADS + threadIdx.x;',
  '  if (s >= a.slots) return;',
  '  const long long rows = (long long)a.B * a.H * a.Nq;',
  '  float acc = 0.f;',
  '  for (long long r = 0; r < rows; ++r) acc += a.partials[r * a.slots + s];',
  '  a.grads[s] = acc;',
  '}',
];

export function classifier(kernel: AttentionKernel, cx: CudaContext): string[] {
  if (kernel.tiles.kind !== 'dynamic') return [];
  const c = linearize([kernel.tiles.canBeTrue, kernel.tiles.canBeFalse], cudaRenderer(cx), 'tc');
  return [
    '__device__ int tile_class(const Args& a, int b, int h, int q_lo, int q_hi, int k_lo, int k_hi) {',
    ...padLines(c.stmts, '  '),
    `  if (!(${c.roots[0]!})) return TILE_EMPTY;`,
    `  if (!(${c.roots[1]!})) return TILE_FULL;`,
    '  return TILE_PARTIAL;',
    '}',
  ];
}
