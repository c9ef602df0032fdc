// The cooperative flash-attention entry point of a WGSL module (schedule.wgslEngine = 'coop'),
// for GPUs: the row engine (attention.ts) gives one invocation a query row and a private
// accumulator of Dv floats, which spills on a GPU. Here a workgroup owns BLOCK_Q query rows and
// every row is shared by COOP_LANES (4) invocations:
//   - Q is staged once in workgroup memory (vec4, rows padded against bank conflicts);
//   - per K tile: K is staged (vec4, coalesced), each invocation computes a register block of S
//     (its CO_RM rows × the keys lane, lane+4, …), applies score and mask, reduces the row max over
//     its 4 lanes (subgroupShuffleXor 1 and 2 — valid for any subgroup size — or workgroup memory),
//     rescales its accumulators and writes P = exp(s − m) to workgroup memory;
//   - V takes K's place in the same buffer and each invocation adds P·V to its register block of O
//     (its CO_RM rows × the vec4 columns lane, lane+4, …).
// Barriers are in uniform control flow: the tile class is made uniform by workgroupUniformLoad.
// Non-finite scores: NaN or +inf among a row's allowed scores makes its output and lse NaN (a
// per-row flag, not NaN arithmetic, which Vulkan drivers need not preserve); −inf weighs 0.
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';
import type { Linearized } from '../linearize.js';
import { attentionEntryHead, type ClassMode } from './attention.js';
import { COOP_LANES, coopGeometry } from './coop-geometry.js';
import { stageCoopKv } from './kv-load.js';
import type { WgslLayout } from './layout.js';

export interface CoopParts {
  readonly schedule: Schedule;
  /** Storage of q, k, v and out (vec4 views of one element type: sharedStorage). */
  readonly formats: TensorFormats;
  /** 'empty' kernels stay on the row engine (the schedule pass never picks coop for them). */
  readonly mode: Exclude<ClassMode, 'empty'>;
  readonly lse: boolean;
  /** The mask over b, h, q, k (absent when every tile is full). */
  readonly mask: Linearized | undefined;
  /** The score expression over `score` (= scale·<q,k>). */
  readonly score: Linearized;
  readonly layout: WgslLayout;
}

const pad = (lines: readonly string[], n: number): string[] => lines.map((l) => (l ? ' '.repeat(n) + l : l));

function bindingIndex(layout: WgslLayout, name: string): number {
  const b = layout.bindings.find((x) => x.name === name);
  if (!b) throw new Error(`WGSL coop: the layout has no "${name}" binding`);
  return b.index;
}

/** vec4 views of q, k, v and out (the same bindings as the scalar arrays; only these are used here). */
function vec4Views(p: CoopParts): string[] {
  const t = sharedStorage(p.formats) === 'f16' ? 'f16' : 'f32';
  const view = (name: string, access: string, v: string): string =>
    `@group(0) @binding(${bindingIndex(p.layout, name)}) var<storage, ${access}> ${v}: array<vec4<${t}>>;`;
  return [
    '// vec4 views of q, k, v and out for the coop entry point (head dims are multiples of 4).',
    view('q', 'read', 'q_buf4'),
    // A quantized cache's binding holds u32 codes: it is read through <k|v>_dequant instead.
    ...(p.formats.k.kind === 'float' ? [view('k', 'read', 'k_buf4')] : []),
    ...(p.formats.v.kind === 'float' ? [view('v', 'read', 'v_buf4')] : []),
    view('out', 'read_write', 'out_buf4'),
  ];
}

function declarations(p: CoopParts): string[] {
  const s = p.schedule;
  const g = coopGeometry(s);
  return [
    `const CO_THREADS: u32 = ${s.threads}u;`,
    `const CO_RM: u32 = ${g.rowsPerThread}u; // query rows per invocation`,
    `const CO_SC: u32 = ${g.scoreCols}u; // score columns per invocation (keys lane + 4c)`,
    `const CO_OC: u32 = ${g.outVec4s}u; // vec4 output columns per invocation (lane + 4c)`,
    `const CO_D4: u32 = ${s.headDim / 4}u;`,
    `const CO_DV4: u32 = ${s.valueDim / 4}u;`,
    `const CO_QS: u32 = ${g.qStride}u; // row strides of the staged tiles (padded)`,
    `const CO_KVS: u32 = ${g.kvStride}u;`,
    `const CO_PS: u32 = ${g.pStride}u;`,
    '// NaN for rows with a NaN or +inf allowed score (a variable: constant NaN is a WGSL error).',
    'var<private> co_nan_bits: u32 = 0x7fc00000u;',
    `var<workgroup> co_q: array<vec4<f32>, ${s.blockQ * g.qStride}>; // Q tile`,
    `var<workgroup> co_kv: array<vec4<f32>, ${s.blockK * g.kvStride}>; // K tile, then V tile`,
    `var<workgroup> co_p: array<f32, ${s.blockQ * g.pStride}>; // P = exp(s - m) of the tile`,
    ...(g.subgroups
      ? []
      : [`var<workgroup> co_red: array<f32, ${s.blockQ * COOP_LANES}>; // lanes' row maxima`]),
    'var<workgroup> co_bad: array<atomic<u32>, BLOCK_Q>; // row saw a NaN or +inf allowed score',
    'var<workgroup> co_cls: array<u32, 2>; // tile class, double-buffered by tile parity',
  ];
}

/** Scores of this invocation's block: the score expression, then the mask (partial tiles). */
function scoreBlock(p: CoopParts): string[] {
  const mask = p.mask;
  const evalMask = mask ? [...mask.stmts, `allowed = ${mask.roots[0]};`] : [];
  const masked =
    p.mode === 'full'
      ? []
      : p.mode === 'dynamic'
        ? ['if (allowed && cls == TILE_PARTIAL) {', ...pad(evalMask, 2), '}']
        : ['if (allowed) {', ...pad(evalMask, 2), '}'];
  return [
    'var m_tile: array<f32, CO_RM>;',
    'for (var i = 0u; i < CO_RM; i++) {',
    '  let row = row0 + r0 + i;',
    '  let q = i32(row) + u.q_offset;',
    '  var mx = MASKED;',
    '  for (var c = 0u; c < CO_SC; c++) {',
    '    let kj = k0 + lane + 4u * c;',
    '    let k = u.k_offset + i32(kj);',
    '    var s = MASKED;',
    '    var allowed = row < Nq && kj < Nk;',
    ...pad(masked, 4),
    '    if (allowed) {',
    '      let score = u.scale * sblk[i][c];',
    ...pad(p.score.stmts, 6),
    `      s = ${p.score.roots[0]};`,
    '      let bits = bitcast<u32>(s);',
    '      if ((bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u) {',
    '        atomicOr(&co_bad[r0 + i], 1u); // NaN or +inf: the row is NaN',
    '        s = MASKED;',
    '      }',
    '    }',
    '    sblk[i][c] = s;',
    '    mx = max(mx, s);',
    '  }',
    '  m_tile[i] = mx;',
    '}',
  ];
}

/** The row max over the row's COOP_LANES invocations. */
function reduceRowMax(p: CoopParts): string[] {
  if (coopGeometry(p.schedule).subgroups) {
    return [
      '// Lanes of a row are 4 consecutive invocations: xor 1 and 2 stay inside any subgroup.',
      'for (var i = 0u; i < CO_RM; i++) {',
      '  m_tile[i] = max(m_tile[i], subgroupShuffleXor(m_tile[i], 1u));',
      '  m_tile[i] = max(m_tile[i], subgroupShuffleXor(m_tile[i], 2u));',
      '}',
    ];
  }
  return [
    'for (var i = 0u; i < CO_RM; i++) { co_red[(r0 + i) * 4u + lane] = m_tile[i]; }',
    'workgroupBarrier(); // the lanes\u2019 maxima are written',
    'for (var i = 0u; i < CO_RM; i++) {',
    '  let base = (r0 + i) * 4u;',
    '  m_tile[i] = max(max(co_red[base], co_red[base + 1u]), max(co_red[base + 2u], co_red[base + 3u]));',
    '}',
  ];
}

function tileBody(p: CoopParts): string[] {
  return [
    ...stageCoopKv('k', p.formats),
    'workgroupBarrier(); // K is staged',
    '// S = Q·K^T for this invocation\u2019s rows r0.. and keys lane + 4c.',
    '// Explicitly zeroed: some drivers do not re-zero a `var` declared inside a loop.',
    'var sblk: array<array<f32, CO_SC>, CO_RM>;',
    'for (var i = 0u; i < CO_RM; i++) { for (var c = 0u; c < CO_SC; c++) { sblk[i][c] = 0.0f; } }',
    'for (var d = 0u; d < d4_loop; d++) {',
    '  var kk: array<vec4<f32>, CO_SC>;',
    '  for (var c = 0u; c < CO_SC; c++) { kk[c] = co_kv[(lane + 4u * c) * CO_KVS + d]; }',
    '  for (var i = 0u; i < CO_RM; i++) {',
    '    let qq = co_q[(r0 + i) * CO_QS + d];',
    '    for (var c = 0u; c < CO_SC; c++) { sblk[i][c] += dot(qq, kk[c]); }',
    '  }',
    '}',
    ...scoreBlock(p),
    ...reduceRowMax(p),
    '// Online softmax: rescale to the new row max, write P for the P·V step.',
    'for (var i = 0u; i < CO_RM; i++) {',
    '  let m_new = max(m_run[i], m_tile[i]);',
    '  let corr = exp(m_run[i] - m_new);',
    '  m_run[i] = m_new;',
    '  l_run[i] *= corr;',
    '  for (var c = 0u; c < CO_OC; c++) { acc[i][c] *= corr; }',
    '  for (var c = 0u; c < CO_SC; c++) {',
    '    let s = sblk[i][c];',
    '    co_p[(r0 + i) * CO_PS + lane + 4u * c] = select(0.0f, exp(s - m_new), s > MASKED);',
    '  }',
    '}',
    'workgroupBarrier(); // P is written and K is no longer read',
    ...stageCoopKv('v', p.formats),
    'workgroupBarrier(); // V is staged',
    '// O += P·V; every lane of a row reads the whole P row, so each sums l itself.',
    'for (var j = 0u; j < k_end - k0; j++) {',
    '  var vv: array<vec4<f32>, CO_OC>;',
    '  for (var c = 0u; c < CO_OC; c++) { vv[c] = co_kv[j * CO_KVS + lane + 4u * c]; }',
    '  for (var i = 0u; i < CO_RM; i++) {',
    '    let pj = co_p[(r0 + i) * CO_PS + j];',
    '    l_run[i] += pj;',
    '    for (var c = 0u; c < CO_OC; c++) { acc[i][c] += pj * vv[c]; }',
    '  }',
    '}',
  ];
}

function epilogue(p: CoopParts): string[] {
  const out = (x: string): string => (p.formats.out.dtype === 'f16' ? `vec4<f16>(${x})` : x);
  return [
    'workgroupBarrier(); // the rows\u2019 NaN flags are final',
    'let nan = bitcast<f32>(co_nan_bits);',
    'for (var i = 0u; i < CO_RM; i++) {',
    '  let row = row0 + r0 + i;',
    '  if (row < Nq) {',
    '    let bad = atomicLoad(&co_bad[r0 + i]) != 0u;',
    '    let l = l_run[i];',
    '    // l > 0 iff the row saw an allowed key; otherwise the row is all zeros.',
    '    let inv_l = select(0.0f, 1.0f / l, l > 0.0f);',
    '    let o_base = (bh * Nq + row) * CO_DV4;',
    '    for (var c = 0u; c < CO_OC; c++) {',
    '      let c4 = lane + 4u * c;',
    '      if (c4 < CO_DV4) {',
    `        out_buf4[o_base + c4] = ${out('select(acc[i][c] * inv_l, vec4<f32>(nan), bad)')};`,
    '      }',
    '    }',
    ...(p.lse
      ? [
          '    if (lane == 0u) {',
          '      var lse = bitcast<f32>(neg_inf_bits);',
          '      if (l > 0.0f) { lse = m_run[i] + log(l); }',
          '      lse_buf[bh * Nq + row] = select(lse, nan, bad);',
          '    }',
        ]
      : []),
    '  }',
    '}',
  ];
}

/** The `attention` entry point of the coop engine (plus its declarations). */
export function coopAttentionBody(p: CoopParts): string {
  const s = p.schedule;
  const dynamic = p.mode === 'dynamic';
  const staticClass = p.mode === 'full' ? 'TILE_FULL' : 'TILE_PARTIAL';
  const classify = dynamic
    ? [
        '    if (lid == 0u) {',
        '      co_cls[kt & 1u] = tile_class(b, h, q_lo, q_hi, u.k_offset + i32(k0), u.k_offset + i32(k_end) - 1i);',
        '    }',
        '    // Uniform for the barriers below; its barrier also ends the previous tile\u2019s reads.',
        '    let cls = workgroupUniformLoad(&co_cls[kt & 1u]);',
        '    if (cls != TILE_EMPTY) {',
      ]
    : [
        '    workgroupBarrier(); // the previous tile is no longer read',
        `    let cls = ${staticClass};`,
        '    {',
      ];
  return [
    ...vec4Views(p),
    ...declarations(p),
    '',
    ...attentionEntryHead('CO_THREADS'),
    '  let lane = lid % 4u;',
    '  let r0 = (lid / 4u) * CO_RM; // first tile row of this invocation',
    '  let row0 = wg.x * BLOCK_Q;',
    '  let q_lo = u.q_offset + i32(row0);',
    '  let q_hi = u.q_offset + i32(min(row0 + BLOCK_Q, Nq)) - 1i;',
    '  // CO_D4, as a bound the compiler cannot fold (Nk >= 0): LLVM-based drivers (lavapipe) fully',
    '  // unroll constant loops around the register-indexed ones and took ~10x longer to compile.',
    '  let d4_loop = select(CO_D4, 0u, u.Nk < 0i);',
    '  // Stage Q (rows past Nq are zero); the first tile\u2019s barrier publishes it.',
    '  for (var e = lid; e < BLOCK_Q * CO_D4; e += CO_THREADS) {',
    '    let r = e / CO_D4;',
    '    let c = e % CO_D4;',
    '    var x = vec4<f32>(0.0f);',
    '    if (row0 + r < Nq) { x = vec4<f32>(q_buf4[(bh * Nq + row0 + r) * CO_D4 + c]); }',
    '    co_q[r * CO_QS + c] = x;',
    '  }',
    '  var m_run: array<f32, CO_RM>;',
    '  var l_run: array<f32, CO_RM>;',
    '  var acc: array<array<vec4<f32>, CO_OC>, CO_RM>;',
    '  for (var i = 0u; i < CO_RM; i++) {',
    '    m_run[i] = MASKED;',
    '    l_run[i] = 0.0f;',
    '    for (var c = 0u; c < CO_OC; c++) { acc[i][c] = vec4<f32>(0.0f); }',
    '  }',
    `  let n_tiles = (Nk + BLOCK_K - 1u) / BLOCK_K; // ${s.blockK}-key tiles`,
    '  for (var kt = 0u; kt < n_tiles; kt++) {',
    '    let k0 = kt * BLOCK_K;',
    '    let k_end = min(k0 + BLOCK_K, Nk);',
    ...classify,
    ...pad(tileBody(p), 6),
    '    }',
    '  }',
    ...pad(epilogue(p), 2),
    '}',
  ].join('\n');
}
