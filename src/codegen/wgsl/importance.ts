// The importance entry point of a WGSL module (kernel.outputs.importance): a second pass after the
// attention, as a backward pass runs, that turns the final lse back into probabilities without
// ever storing the N×N matrix. One workgroup per (tile of IMP_KEYS keys, kv head, batch);
// invocation j owns key k0 + j (so decode, with a handful of query rows over a long KV, is
// parallel over keys), reads its k row once, and for each query head of the kv head (GQA) walks
// the query rows in tiles of IMP_ROWS staged in workgroup memory (q rows and their lse), adding
// exp(score - lse) where the mask allows. The (row tile, key tile) pairs are classified as in the
// attention: empty ones are skipped, full ones evaluate no mask.
import { sharedStorage, type StorageDType, type TensorFormat } from '../../ir/formats.js';
import { dequantAt } from './dequant-calls.js';
import { kvEntry, kvRowAt } from './kv-load.js';
import type { AttentionKernel, ImportanceMode } from '../../ir/kernel.js';
import type { VarName } from '../../ir/ops.js';
import type { DecodeVariant, EntryPoint } from '../artifact.js';
import { linearize, type Linearized } from '../linearize.js';
import { pad, whereAllowed } from './entry-lines.js';
import { bindingsRead, classMode, elementVars } from './kernel-vars.js';
import { wgslRenderer, type WgslContext } from './rules.js';

/** Keys per workgroup (one invocation each). */
export const IMP_KEYS = 64;
/** Bytes of workgroup memory the staged rows may take: WebGPU's guaranteed minimum. */
const STAGE_BYTES = 16384;

/** The binding the pass writes: [B, H, Nk] f32. */
export const IMPORTANCE_BINDING = 'importance';

/** Query rows staged per tile: a power of two ≤ 32 whose q rows and lse fit STAGE_BYTES. */
export function importanceRows(headDim: number): number {
  let rows = 32;
  while (rows > 1 && rows * (headDim + 1) * 4 > STAGE_BYTES) rows /= 2;
  return rows;
}

export interface WgslImportance {
  readonly source: string;
  readonly entry: EntryPoint;
}

/**
 * The entry point and its launch record. `cx` renders the mask and score (helpers it uses are
 * recorded in cx.used, so render this before the module's helper section); a dynamic classifier
 * is the module's own `tile_class`.
 */
export function renderImportance(
  kernel: AttentionKernel,
  mode: ImportanceMode,
  cx: (vars: Partial<Record<VarName, string>>) => WgslContext,
): WgslImportance {
  const s = kernel.schedule;
  const cls = classMode(kernel);
  const classRoots = kernel.tiles.kind === 'dynamic' ? [kernel.tiles.canBeTrue, kernel.tiles.canBeFalse] : [];
  const maskRoots = cls === 'dynamic' || cls === 'partial' ? [kernel.mask] : [];
  const roots = cls === 'empty' ? [] : [...classRoots, ...maskRoots, kernel.score];
  const reads = bindingsRead(roots);
  const entry: EntryPoint = {
    name: 'importance',
    role: 'importance',
    workgroupSize: [IMP_KEYS, 1, 1],
    grid: [`cdiv(Nk, ${IMP_KEYS})`, 'Hkv', 'B'],
    bindings:
      cls === 'empty'
        ? [IMPORTANCE_BINDING, 'uniforms']
        : ['q', 'k', 'lse', IMPORTANCE_BINDING, ...reads, 'uniforms'],
  };
  const r = wgslRenderer(cx(elementVars));
  const mask = maskRoots.length ? linearize(maskRoots, r, 'imk') : undefined;
  const score = linearize([kernel.score], r, 'isc');
  const rows = importanceRows(s.headDim);
  return {
    source:
      cls === 'empty'
        ? emptySource()
        : source(sharedStorage(kernel.formats), rows, s.headDim, cls, mask, score, mode, kernel.formats.k),
    entry,
  };
}

/** Every tile empty: no key is seen, every importance is 0. */
function emptySource(): string {
  return [
    '// Importance: the mask allows no pair, so every key gets 0.',
    `@compute @workgroup_size(${IMP_KEYS})`,
    'fn importance(@builtin(global_invocation_id) gid: vec3<u32>) {',
    '  let Nk = u32(u.Nk);',
    '  if (gid.x >= Nk) { return; }',
    '  let group = u32(u.H) / u32(u.Hkv);',
    '  for (var hq = gid.y * group; hq < (gid.y + 1u) * group; hq++) {',
    '    importance_buf[(gid.z * u32(u.H) + hq) * Nk + gid.x] = 0.0f;',
    '  }',
    '}',
  ].join('\n');
}

/** An allowed (row, key) pair's term: exp(score - lse) of the row, for a row that saw a key. */
function pairTerm(score: Linearized): string[] {
  return [
    'seen++;',
    'let lse_row = imp_lse[i];',
    '// A row with no allowed key (lse -inf) or a poisoned one (NaN) adds nothing.',
    'if ((bitcast<u32>(lse_row) & 0x7f800000u) != 0x7f800000u) {',
    '  var dot = 0.0f;',
    '  for (var d = 0u; d < HEAD_DIM; d++) {',
    '    dot += imp_q[i * HEAD_DIM + d] * krow[d];',
    '  }',
    '  let score = u.scale * dot;',
    ...pad(score.stmts, 2),
    `  let s = ${score.roots[0]};`,
    '  // A score of -inf weighs 0 (and is no real score: the attention skipped it too).',
    '  if (s > MASKED) { total += exp(s - lse_row); }',
    '}',
  ];
}

/** The pass's comment, constants and staged row tile (q rows and their lse). */
function declarations(mode: ImportanceMode, rows: number, headDim: number): string[] {
  return [
    '// Importance (after the attention, from its final lse): one workgroup per (tile of IMP_KEYS keys,',
    '// kv head, batch); invocation j owns key k0 + j and, per query head of the kv head, walks the',
    '// query rows in tiles of IMP_ROWS staged in workgroup memory, adding exp(score - lse) where the',
    `// mask allows (${mode === 'sum' ? 'the sum' : 'divided by the number of rows the mask lets see the key'}).`,
    `const IMP_KEYS: u32 = ${IMP_KEYS}u;`,
    `const IMP_ROWS: u32 = ${rows}u;`,
    `var<workgroup> imp_q: array<f32, ${rows * headDim}>; // IMP_ROWS x HEAD_DIM`,
    `var<workgroup> imp_lse: array<f32, ${rows}>;`,
  ];
}

function source(
  dtype: StorageDType,
  rows: number,
  headDim: number,
  cls: 'full' | 'partial' | 'dynamic',
  mask: Linearized | undefined,
  score: Linearized,
  mode: ImportanceMode,
  kFormat: TensorFormat,
): string {
  const load = (e: string): string => (dtype === 'f16' ? `f32(${e})` : e);
  // A quantized K cache is read through its dequantizing function (dequant.ts).
  const kAt =
    kFormat.kind === 'quant' ? dequantAt('k', 'col', 'd') : load(`k_buf[${kvRowAt('k', 'col')} + d]`);
  const classify =
    cls === 'dynamic'
      ? 'tile_class(b, h, u.q_offset + i32(r0), u.q_offset + i32(r_end) - 1i, k_lo, k_hi)'
      : cls === 'full'
        ? 'TILE_FULL'
        : 'TILE_PARTIAL';
  const result = mode === 'sum' ? 'total' : 'select(0.0f, total / f32(seen), seen > 0u)';
  return [
    ...declarations(mode, rows, headDim),
    '',
    ...entryHead(cls === 'dynamic'),
    '  // GQA: the query heads of kv head wg.y are wg.y * group .. wg.y * group + group - 1.',
    '  for (var hq = wg.y * group; hq < (wg.y + 1u) * group; hq++) {',
    '    let h = i32(hq);',
    '    let bh = wg.z * u32(u.H) + hq;',
    '    var total = 0.0f;',
    '    var seen = 0u; // rows whose mask allows this key',
    '    let n_tiles = (Nq + IMP_ROWS - 1u) / IMP_ROWS;',
    '    for (var qt = 0u; qt < n_tiles; qt++) {',
    '      let r0 = qt * IMP_ROWS;',
    '      let r_end = min(r0 + IMP_ROWS, Nq);',
    `      let cls = ${classify};`,
    ...stageRowTile(load),
    '      if (cls != TILE_EMPTY && col_ok) {',
    '        if (!k_loaded) {',
    '          for (var d = 0u; d < HEAD_DIM; d++) {',
    `            krow[d] = ${kAt};`,
    '          }',
    '          k_loaded = true;',
    '        }',
    '        for (var row = r0; row < r_end; row++) {',
    '          let i = row - r0;',
    '          let q = u.q_offset + i32(row);',
    ...pad(whereAllowed(cls, mask, pairTerm(score)), 10),
    '        }',
    '      }',
    '    }',
    '    if (col_ok) {',
    `      importance_buf[bh * Nk + col] = ${result};`,
    '    }',
    '  }',
    '}',
  ].join('\n');
}

/** The entry point's signature and its key: column, position, and (dynamic) the key tile's range. */
function entryHead(dynamic: boolean): string[] {
  return [
    '@compute @workgroup_size(IMP_KEYS)',
    'fn importance(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let Nq = u32(u.Nq);',
    '  let Nk = u32(u.Nk);',
    '  let b = i32(wg.z);',
    '  let group = u32(u.H) / u32(u.Hkv);',
    ...kvEntry('wg.z', 'wg.y'),
    '  let col = wg.x * IMP_KEYS + lid;',
    '  let col_ok = col < Nk;',
    '  let k = u.k_offset + i32(col);',
    ...(dynamic
      ? [
          '  let k_lo = u.k_offset + i32(wg.x * IMP_KEYS);',
          '  let k_hi = u.k_offset + i32(min((wg.x + 1u) * IMP_KEYS, Nk)) - 1i;',
        ]
      : []),
    "  // This invocation's key row: read once for every query head of the kv head, and only once a",
    '  // tile that is not empty needs it (a window over a long KV reads its window only).',
    '  var krow: array<f32, HEAD_DIM>;',
    '  var k_loaded = false;',
  ];
}

/** The row tile's q rows and lse into workgroup memory (skipped for an empty tile), between barriers. */
function stageRowTile(load: (e: string) => string): string[] {
  return [
    '      workgroupBarrier(); // the previous row tile is no longer read',
    '      if (cls != TILE_EMPTY) {',
    '        for (var e = lid; e < (r_end - r0) * HEAD_DIM; e += IMP_KEYS) {',
    `          imp_q[e] = ${load('q_buf[(bh * Nq + r0) * HEAD_DIM + e]')};`,
    '        }',
    '        for (var e = lid; e < r_end - r0; e += IMP_KEYS) {',
    '          imp_lse[e] = lse_buf[bh * Nq + r0 + e];',
    '        }',
    '      }',
    '      workgroupBarrier(); // the row tile is staged',
  ];
}

/** The decode module with the importance pass appended (after its merge has written lse). */
export function withImportance(decode: DecodeVariant, imp: WgslImportance): DecodeVariant {
  const a = decode.artifact;
  return {
    ...decode,
    artifact: { ...a, code: `${a.code}\n${imp.source}\n`, entryPoints: [...a.entryPoints, imp.entry] },
  };
}
