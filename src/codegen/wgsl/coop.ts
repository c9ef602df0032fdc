// The cooperative flash-attention entry point of a WGSL module (schedule.wgslEngine = 'coop'),
// for GPUs: the row engine (attention.ts) gives one invocation a query row and a private
// accumulator of Dv floats, which spills on a GPU. Here a workgroup owns BLOCK_Q query rows and
// every row is shared by CO_LANES invocations (schedule.coopLanes, 4 by default), each owning
// CO_RM consecutive rows:
//   - Q is staged once in workgroup memory (vec4, rows padded against bank conflicts);
//   - per K tile (coop-tile.ts): K is staged (vec4, coalesced), each invocation computes a
//     register block of S (its CO_RM rows × the keys lane, lane + CO_LANES, …), applies score and
//     mask, reduces the row max over its lanes (subgroupShuffleXor, or workgroup memory),
//     rescales its accumulators and writes P = exp(s − m) to workgroup memory;
//   - V takes K's place in the same buffer (or has its own, schedule.coopSplitKv) and each
//     invocation adds P·V to its register block of O (its rows × vec4 columns lane, lane + CO_LANES, …).
// Barriers are in uniform control flow: the tile class is made uniform by workgroupUniformLoad.
// Non-finite scores: NaN or +inf among a row's allowed scores makes its output and lse NaN (a
// per-row flag, not NaN arithmetic, which Vulkan drivers need not preserve); −inf weighs 0.
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';
import type { RoutingPlan } from '../../ir/routing.js';
import type { Linearized } from '../linearize.js';
import type { ClassMode } from './attention.js';
import { attentionEntryHead, pad } from './entry-lines.js';
import {
  classWords,
  coopF16,
  coopGeometry,
  halfTiles,
  pWords,
  sgCheck,
  type CoopGeometry,
} from './coop-geometry.js';
import { coopTileLoop, spansChunks } from './coop-loop.js';
import type { SgPath } from './coop-subgroup.js';
import type { WgslFeatures } from './features.js';
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
  /** Block routing attending the selection: tiles and keys gated by each row's. */
  readonly routed: CoopRouted | undefined;
  /**
   * The side of the run-time subgroup check (use_sg) this rendering is inside: coopSgHoist renders
   * the tile loop once for each. Absent: each use checks it.
   */
  readonly sgPath?: SgPath;
}

/** The tile loop; under coopSgHoist once a side of the subgroup check. */
function tileLoops(p: CoopParts): string[] {
  const g = coopGeometry(p.schedule);
  if (!g.sgHoist || !sgCheck(g)) return coopTileLoop(p);
  return [
    '// schedule.coopSgHoist: the subgroup check (uniform) chooses the whole loop.',
    'if (use_sg) {',
    ...pad(coopTileLoop({ ...p, sgPath: 'shuffle' }), 2),
    '} else {',
    ...pad(coopTileLoop({ ...p, sgPath: 'memory' }), 2),
    '}',
  ];
}

/** A routing plan and the routing feature's coop code (coop-route.ts, through features.ts). */
export interface CoopRouted {
  readonly plan: RoutingPlan;
  readonly render: WgslFeatures['routing'];
}

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

const pTileNote = 'P = exp(s - m) of the tile (or lanes\u2019 row maxima)';
const pColumnNote = 'lanes\u2019 row maxima, a column of P (no subgroups)';

function declarations(p: CoopParts): string[] {
  const s = p.schedule;
  const g = coopGeometry(s);
  // coopDoubleKv: two of each K/V tile buffer, taken in turn (coop-tile.ts: kvb).
  const kvLen = s.blockK * g.kvStride * (g.doubleKv ? 2 : 1);
  const turns = g.doubleKv ? ' (two, in turn)' : '';
  return [
    `const CO_THREADS: u32 = ${s.threads}u;`,
    `const CO_LANES: u32 = ${g.lanes}u; // invocations per query row`,
    `const CO_RM: u32 = ${g.rowsPerThread}u; // query rows per invocation`,
    `const CO_SC: u32 = ${g.scoreCols}u; // score columns per invocation (keys lane + CO_LANES·c)`,
    `const CO_OC: u32 = ${g.outVec4s}u; // vec4 output columns per invocation (lane + CO_LANES·c)`,
    `const CO_D4: u32 = ${s.headDim / 4}u;`,
    `const CO_DV4: u32 = ${s.valueDim / 4}u;`,
    `const CO_QS: u32 = ${g.qStride}u; // row strides of the staged tiles (padded)`,
    `const CO_KVS: u32 = ${g.kvStride}u;`,
    `const CO_PS: u32 = ${g.pStride}u;`,
    ...(g.prefetch
      ? [
          `const CO_KR: u32 = ${g.kRegs}u; // vec4 registers of a prefetched K (V) tile per invocation`,
          `const CO_VR: u32 = ${g.vRegs}u;`,
          'const CO_NONE: u32 = 0xffffffffu; // no tile',
        ]
      : []),
    '// NaN for rows with a NaN or +inf allowed score (a variable: constant NaN is a WGSL error).',
    'var<private> co_nan_bits: u32 = 0x7fc00000u;',
    ...halfTiles(
      [
        ...(g.qGlobal ? [] : [`var<workgroup> co_q: array<vec4<f32>, ${s.blockQ * g.qStride}>; // Q tile`]),
        g.splitKv
          ? `var<workgroup> co_kv: array<vec4<f32>, ${kvLen}>; // K tile${turns}`
          : `var<workgroup> co_kv: array<vec4<f32>, ${kvLen}>; // K tile, then V tile${turns}`,
        ...(g.splitKv ? [`var<workgroup> co_v: array<vec4<f32>, ${kvLen}>; // V tile${turns}`] : []),
      ],
      coopF16(p.formats),
    ),
    `var<workgroup> co_p: array<f32, ${s.blockQ * pWords(g)}>; // ${g.pShuffle ? pColumnNote : pTileNote}`,
    'var<workgroup> co_bad: array<atomic<u32>, BLOCK_Q>; // row saw a NaN or +inf allowed score',
    ...(p.mode === 'dynamic' || p.routed
      ? ['var<workgroup> co_cls: array<u32, CO_THREADS>; // tile classes of a chunk of tiles']
      : []),
    ...((p.mode === 'dynamic' || p.routed) && g.doubleKv
      ? [`var<workgroup> co_clsw: array<u32, ${classWords(s)}>; // the chunk\u2019s classes, 16 to a word`]
      : []),
    ...(sgCheck(g) ? ['var<workgroup> co_nosg: u32; // some row’s lanes are not inside one subgroup'] : []),
    ...(spansChunks(p)
      ? [
          'var<workgroup> co_span_at: array<atomic<u32>, 2>; // first and last + 1 tile with work, as found',
          'var<workgroup> co_span: vec2<u32>; // the same, read uniformly',
        ]
      : []),
  ];
}

/** The entry point's header (attention.ts's, plus the subgroup builtins when they are checked). */
function entryHead(g: CoopGeometry): string[] {
  const sg = sgCheck(g)
    ? ', @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_id: u32'
    : '';
  return [
    ...attentionEntryHead('CO_THREADS', sg, g.headsInner),
    ...(sgCheck(g)
      ? [
          '  // Shuffles need each row’s lanes inside one subgroup, in order (not promised by WebGPU).',
          '  if (sg_size < CO_LANES || sg_id != lid % sg_size) { co_nosg = 1u; }',
          '  let use_sg = workgroupUniformLoad(&co_nosg) == 0u;',
        ]
      : []),
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
    '      let c4 = lane + CO_LANES * c;',
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

const stageQ = [
  '  // Stage Q (rows past Nq are zero); the first tile\u2019s barrier publishes it.',
  '  for (var e = lid; e < BLOCK_Q * CO_D4; e += CO_THREADS) {',
  '    let r = e / CO_D4;',
  '    let c = e % CO_D4;',
  '    var x = vec4<f32>(0.0f);',
  '    if (row0 + r < Nq) { x = vec4<f32>(q_buf4[(bh * Nq + row0 + r) * CO_D4 + c]); }',
  '    co_q[r * CO_QS + c] = x;',
  '  }',
];

/** Q read from storage: the first vec4 of each of this invocation's rows (rows past Nq read row Nq - 1, never stored). */
const qRows = [
  '  var q_row: array<u32, CO_RM>;',
  '  for (var i = 0u; i < CO_RM; i++) { q_row[i] = (bh * Nq + min(row0 + r0 + i, Nq - 1u)) * CO_D4; }',
];

/** The `attention` entry point of the coop engine (plus its declarations). */
export function coopAttentionBody(p: CoopParts): string {
  const s = p.schedule;
  const g = coopGeometry(s);
  return [
    ...vec4Views(p),
    ...declarations(p),
    ...(p.routed ? ['', ...p.routed.render.unitKeysFn(p.routed.plan)] : []),
    '',
    ...entryHead(g),
    '  let lane = lid % CO_LANES;',
    '  let r0 = (lid / CO_LANES) * CO_RM; // first tile row of this invocation',
    ...(g.qDescending
      ? ['  let row0 = ((Nq + BLOCK_Q - 1u) / BLOCK_Q - 1u - wg.x) * BLOCK_Q; // the last tile first']
      : ['  let row0 = wg.x * BLOCK_Q;']),
    '  let q_lo = u.q_offset + i32(row0);',
    '  let q_hi = u.q_offset + i32(min(row0 + BLOCK_Q, Nq)) - 1i;',
    '  // CO_D4 and CO_LANES, as bounds the compiler cannot fold (Nk >= 0): LLVM-based drivers',
    '  // (lavapipe) fully unroll constant loops around the register-indexed ones and took ~10x',
    '  // longer to compile.',
    ...(g.unroll
      ? [
          '  // schedule.coopUnroll: the S loop\u2019s bound a constant, for a GPU driver to unroll.',
          '  let d4_loop = CO_D4;',
        ]
      : ['  let d4_loop = select(CO_D4, 0u, u.Nk < 0i);']),
    ...(g.subgroups && !sgCheck(g) ? [] : ['  let lanes_loop = select(CO_LANES, 0u, u.Nk < 0i);']),
    ...(g.qGlobal ? qRows : halfTiles(stageQ, coopF16(p.formats))),
    ...(p.routed ? p.routed.render.routedRowState : []),
    '  var m_run: array<f32, CO_RM>;',
    '  var l_run: array<f32, CO_RM>;',
    '  var acc: array<array<vec4<f32>, CO_OC>, CO_RM>;',
    '  for (var i = 0u; i < CO_RM; i++) {',
    '    m_run[i] = MASKED;',
    '    l_run[i] = 0.0f;',
    '    for (var c = 0u; c < CO_OC; c++) { acc[i][c] = vec4<f32>(0.0f); }',
    '  }',
    `  let n_tiles = (Nk + BLOCK_K - 1u) / BLOCK_K; // ${s.blockK}-key tiles`,
    ...(g.prefetch
      ? [
          ...halfTiles(
            [
              '  var pk: array<vec4<f32>, CO_KR>; // K and V of tile pf_tile, prefetched',
              '  var pv: array<vec4<f32>, CO_VR>;',
            ],
            coopF16(p.formats),
          ),
          '  var pf_tile = CO_NONE;',
        ]
      : []),
    ...pad(tileLoops(p), 2),
    ...pad(epilogue(p), 2),
    '}',
  ].join('\n');
}
