// The entry points of the WGSL backward (backward.ts assembles the module): bwd_dq, bwd_dkdv
// and the compare-exchange f32 atomics of the gradient buffers.
import { gradientRoots, type ScoreGradient } from '../../ir/derive.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Mode } from './backward.js';
import { linearize } from '../linearize.js';
import { padLines } from '../pad-lines.js';
import { dimText, wgslRenderer, type WgslContext } from './rules.js';

/** The mask test of one pair: nothing on full tiles, the predicate on partial ones. */
function maskLines(mode: Mode, mask: { stmts: string[]; roots: string[] }): string[] {
  if (mode === 'full') return [];
  const test = [...mask.stmts, `if (!${mask.roots[0]}) { continue; }`];
  if (mode === 'partial') return test;
  return ['if (cls == TILE_PARTIAL) {', ...padLines(test, '  '), '}'];
}

/** Atomic f32 add through compare-exchange (WGSL has no float atomics), one per gradient buffer. */
export function atomicAdd(fn: string, buffer: string): string {
  return [
    `fn ${fn}(i: u32, x: f32) {`,
    `  var old = atomicLoad(&${buffer}[i]);`,
    '  loop {',
    `    let r = atomicCompareExchangeWeak(&${buffer}[i], old, bitcast<u32>(bitcast<f32>(old) + x));`,
    '    if (r.exchanged) { break; }',
    '    old = r.old_value;',
    '  }',
    '}',
  ].join('\n');
}

/** Flat index and in-range test of a tensor lookup whose index texts are `idx`. */
function flatIndex(
  kernel: AttentionKernel,
  tensor: string,
  idx: readonly string[],
): { ok: string; flat: string } {
  const t = kernel.tensors.find((x) => x.name === tensor)!;
  const ok = idx.map((x, i) => `${x} >= 0i && ${x} < ${dimText(t.dims[i]!)}`).join(' && ');
  let flat = `u32(${idx[0]})`;
  for (let i = 1; i < idx.length; i++) flat = `(${flat}) * u32(${dimText(t.dims[i]!)}) + u32(${idx[i]})`;
  return { ok, flat };
}

const prologue = (rowsExpr: string): string[] => [
  'let r = (wg.y * nwg.x + wg.x) * WORKGROUP + lid;',
  `if (r >= u32(${rowsExpr})) { return; }`,
];
const entryHead = (name: string): string =>
  `@compute @workgroup_size(WORKGROUP)\nfn ${name}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`;
export const NEG_INF = 'bitcast<f32>(0xff800000u)';

/**
 * The score and its derivatives for bwd_dq, rendered: score′ and ∂score′/∂score, each f32 param's
 * derivative, and the scatter of each tensor lookup's derivative (in range only) to its gradient.
 */
function dqGradients(
  kernel: AttentionKernel,
  grad: ScoreGradient,
  r: ReturnType<typeof wgslRenderer>,
): { stmts: string[]; score: string; dScore: string; dParam: string[]; scatter: string[] } {
  const e = linearize(gradientRoots(kernel.score, grad), r, 'sc');
  const [score, dScore] = e.roots;
  const np = grad.params.length;
  const dParam = e.roots.slice(2, 2 + np);
  const dLoad = e.roots.slice(2 + np, 2 + np + grad.loads.length);
  let at = 2 + np + grad.loads.length;
  const scatter = grad.loads.flatMap((l, n) => {
    const idx = e.roots.slice(at, (at += l.load.src.length));
    const { ok, flat } = flatIndex(kernel, l.tensor, idx);
    return [`if (${ok}) { grad_add_${l.tensor}(${flat}, dsp * ${dLoad[n]!}); }`];
  });
  return { stmts: e.stmts, score: score!, dScore: dScore!, dParam, scatter };
}

export function dqEntry(kernel: AttentionKernel, grad: ScoreGradient, mode: Mode, cx: WgslContext): string {
  const r = wgslRenderer(cx);
  const mask = linearize([kernel.mask], r, 'mk');
  const { stmts, score, dScore, dParam, scatter } = dqGradients(kernel, grad, r);
  const pair = [
    'let k = u.k_offset + i32(j);',
    ...maskLines(mode, mask),
    'var qk = 0.0f;',
    'for (var d = 0u; d < HEAD_DIM; d++) { qk += qv[d] * k_buf[(kv0 + j) * HEAD_DIM + d]; }',
    'let score = u.scale * qk;',
    ...stmts,
    `let p = exp(${score} - lse);`,
    'if (p == 0.0f) { continue; } // weight 0 (score −inf): no gradient flows, whatever ∂ says',
    'var dp = 0.0f;',
    'for (var d = 0u; d < VALUE_DIM; d++) { dp += go[d] * v_buf[(kv0 + j) * VALUE_DIM + d]; }',
    'let dsp = p * (dp - delta); // ∂L/∂score′',
    `let ds = dsp * ${dScore}; // ∂L/∂score`,
    'for (var d = 0u; d < HEAD_DIM; d++) { dq[d] += ds * k_buf[(kv0 + j) * HEAD_DIM + d]; }',
    ...dParam.map((x, n) => `gp${n} += dsp * ${x};`),
    ...scatter,
  ];
  const loop =
    mode === 'empty'
      ? []
      : [
          'if (bitcast<u32>(lse) != 0xff800000u) {',
          '  for (var k0 = 0u; k0 < u32(u.Nk); k0 += BLOCK) {',
          '    let k_end = min(k0 + BLOCK, u32(u.Nk));',
          ...(mode === 'dynamic'
            ? [
                '    let cls = tile_class(b, h, q, q, u.k_offset + i32(k0), u.k_offset + i32(k_end) - 1i);',
                '    if (cls == TILE_EMPTY) { continue; }',
              ]
            : []),
          '    for (var j = k0; j < k_end; j++) {',
          ...padLines(pair, '      '),
          '    }',
          '  }',
          '}',
        ];
  const body = [
    ...prologue('u.B * u.H * u.Nq'),
    'let i = i32(r % u32(u.Nq));',
    'let h = i32((r / u32(u.Nq)) % u32(u.H));',
    'let b = i32(r / u32(u.Nq * u.H));',
    'let kv0 = u32((b * u.Hkv + h / (u.H / u.Hkv)) * u.Nk);',
    'let q = u.q_offset + i;',
    'let lse = lse_buf[r];',
    'var qv: array<f32, HEAD_DIM>;',
    'var go: array<f32, VALUE_DIM>;',
    'var dq: array<f32, HEAD_DIM>;',
    'for (var d = 0u; d < HEAD_DIM; d++) { qv[d] = q_buf[r * HEAD_DIM + d]; }',
    'var delta = 0.0f;',
    'for (var d = 0u; d < VALUE_DIM; d++) {',
    '  go[d] = dout_buf[r * VALUE_DIM + d];',
    '  delta += go[d] * out_buf[r * VALUE_DIM + d];',
    '}',
    '// delta_buf holds ∂L/∂lse on entry (the host writes it; zeros when none flows into lse):',
    '// ∂lse/∂score′ = P makes dscore′ = P (dP − (Σ dO·O − dlse)).',
    'delta -= delta_buf[r];',
    'delta_buf[r] = delta;',
    ...dParam.map((_, n) => `var gp${n} = 0.0f;`),
    ...loop,
    'for (var d = 0u; d < HEAD_DIM; d++) { dq_buf[r * HEAD_DIM + d] = u.scale * dq[d]; }',
    ...dParam.map((_, n) => `if (gp${n} != 0.0f) { grad_add_param(${n}u, gp${n}); }`),
  ];
  return [entryHead('bwd_dq'), ...padLines(body, '  '), '}'].join('\n');
}

export function dkdvEntry(kernel: AttentionKernel, grad: ScoreGradient, mode: Mode, cx: WgslContext): string {
  const r = wgslRenderer(cx);
  const mask = linearize([kernel.mask], r, 'mk');
  const e = linearize([kernel.score, grad.dScore], r, 'sc');
  const pair = [
    'let q = u.q_offset + i32(i);',
    ...maskLines(mode, mask),
    'let row = row0 + i;',
    'let lse = lse_buf[row];',
    'if (bitcast<u32>(lse) == 0xff800000u) { continue; } // a row with no allowed key',
    'var qk = 0.0f;',
    'for (var d = 0u; d < HEAD_DIM; d++) { qk += q_buf[row * HEAD_DIM + d] * kv[d]; }',
    'let score = u.scale * qk;',
    ...e.stmts,
    `let p = exp(${e.roots[0]!} - lse);`,
    'if (p == 0.0f) { continue; }',
    'var dp = 0.0f;',
    'for (var d = 0u; d < VALUE_DIM; d++) { dp += dout_buf[row * VALUE_DIM + d] * vv[d]; }',
    `let ds = p * (dp - delta_buf[row]) * ${e.roots[1]!};`,
    'for (var d = 0u; d < VALUE_DIM; d++) { dv[d] += p * dout_buf[row * VALUE_DIM + d]; }',
    'for (var d = 0u; d < HEAD_DIM; d++) { dk[d] += ds * q_buf[row * HEAD_DIM + d]; }',
  ];
  const loop =
    mode === 'empty'
      ? []
      : [
          'for (var g = 0i; g < group; g++) {',
          '  let h = kvh * group + g;',
          '  let row0 = u32((b * u.H + h) * u.Nq);',
          '  for (var i0 = 0u; i0 < u32(u.Nq); i0 += BLOCK) {',
          '    let i_end = min(i0 + BLOCK, u32(u.Nq));',
          ...(mode === 'dynamic'
            ? [
                '    let cls = tile_class(b, h, u.q_offset + i32(i0), u.q_offset + i32(i_end) - 1i, k, k);',
                '    if (cls == TILE_EMPTY) { continue; }',
              ]
            : []),
          '    for (var i = i0; i < i_end; i++) {',
          ...padLines(pair, '      '),
          '    }',
          '  }',
          '}',
        ];
  const body = [
    ...prologue('u.B * u.Hkv * u.Nk'),
    'let j = i32(r % u32(u.Nk));',
    'let kvh = i32((r / u32(u.Nk)) % u32(u.Hkv));',
    'let b = i32(r / u32(u.Nk * u.Hkv));',
    'let k = u.k_offset + j;',
    'let group = u.H / u.Hkv;',
    'var kv: array<f32, HEAD_DIM>;',
    'var vv: array<f32, VALUE_DIM>;',
    'var dk: array<f32, HEAD_DIM>;',
    'var dv: array<f32, VALUE_DIM>;',
    'for (var d = 0u; d < HEAD_DIM; d++) { kv[d] = k_buf[r * HEAD_DIM + d]; }',
    'for (var d = 0u; d < VALUE_DIM; d++) { vv[d] = v_buf[r * VALUE_DIM + d]; }',
    ...loop,
    'for (var d = 0u; d < HEAD_DIM; d++) { dk_buf[r * HEAD_DIM + d] = u.scale * dk[d]; }',
    'for (var d = 0u; d < VALUE_DIM; d++) { dv_buf[r * VALUE_DIM + d] = dv[d]; }',
  ];
  return [entryHead('bwd_dkdv'), ...padLines(body, '  '), '}'].join('\n');
}
