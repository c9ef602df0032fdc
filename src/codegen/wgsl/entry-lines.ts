// WGSL lines both engines (attention.ts, coop.ts), the decode merges, the routing and importance
// passes share: indentation, the prefill entry point's head, the lse store, and the mask test
// of a pair that the row engine and the importance pass wrap their scoring in. Apart from the row
// engine's pieces (attention-row.ts) so that compileAsync's coop chunks do not load those.
import type { Linearized } from '../linearize.js';
import type { ClassMode } from './attention.js';
import { kvEntry } from './kv-load.js';

export const pad = (lines: readonly string[], n: number): string[] =>
  lines.map((l) => (l ? ' '.repeat(n) + l : l));

/**
 * The prefill entry point's signature and the values both engines (attention.ts, coop.ts)
 * derive from the workgroup id: sizes, (b, h), the (batch, head) row and the GQA kv row base.
 * `builtins` adds parameters after the invocation index (coop.ts's subgroup builtins).
 */
export function attentionEntryHead(workgroupSize: string, builtins = '', headsInner = false): string[] {
  const wg = headsInner
    ? '@builtin(workgroup_id) wg_launch: vec3<u32>, @builtin(num_workgroups) n_wg: vec3<u32>'
    : '@builtin(workgroup_id) wg: vec3<u32>';
  return [
    `@compute @workgroup_size(${workgroupSize})`,
    `fn attention(${wg}, @builtin(local_invocation_index) lid: u32${builtins}) {`,
    ...(headsInner ? headsInnerOrder : []),
    '  let Nq = u32(u.Nq);',
    '  let Nk = u32(u.Nk);',
    '  let b = i32(wg.z);',
    '  let h = i32(wg.y);',
    '  let bh = wg.z * u32(u.H) + wg.y;',
    '  // GQA: query head h reads kv head h / (H / Hkv).',
    ...kvEntry('wg.z', 'wg.y / (u32(u.H) / u32(u.Hkv))'),
  ];
}

/**
 * Launch order (x fastest) renumbered so that consecutive workgroups take every (head, batch) of
 * one query tile before the next tile (schedule.coopHeadsInner); `wg` is then (tile, head, batch)
 * as in the plain order, so everything after reads it unchanged.
 */
const headsInnerOrder = [
  '  // Every (head, batch) of a query tile before the next tile (schedule.coopHeadsInner).',
  '  let wg_flat = wg_launch.x + n_wg.x * (wg_launch.y + n_wg.y * wg_launch.z);',
  '  let wg_hb = wg_flat % (n_wg.y * n_wg.z);',
  '  let wg = vec3<u32>(wg_flat / (n_wg.y * n_wg.z), wg_hb % n_wg.y, wg_hb / n_wg.y);',
];

/**
 * Stores a row's lse at `lse_buf[index]`: NaN when the row is poisoned, m + log(l) when it saw an
 * allowed key (l > 0), else -inf. Every entry point that writes an lse (the row engine, the
 * merges of the decode modules) writes it so.
 */
export function lseStore(v: {
  readonly index: string;
  readonly poisoned: string;
  readonly nan: string;
  readonly m: string;
  readonly l: string;
}): string[] {
  return [
    `if (${v.poisoned}) {`,
    `  lse_buf[${v.index}] = ${v.nan};`,
    `} else if (${v.l} > 0.0f) {`,
    `  lse_buf[${v.index}] = ${v.m} + log(${v.l});`,
    '} else {',
    `  lse_buf[${v.index}] = bitcast<f32>(neg_inf_bits); // -inf`,
    '}',
  ];
}

/**
 * `body` for a pair the mask allows, in a tile of class `cls`: full tiles evaluate no mask, and
 * under dynamic classes only partial tiles do (the importance pass scores its pairs so too).
 */
export function whereAllowed(
  mode: ClassMode,
  mask: Linearized | undefined,
  body: readonly string[],
): string[] {
  if (mode === 'full') return [...body];
  const evalMask = [...mask!.stmts, `allowed = ${mask!.roots[0]};`];
  return [
    'var allowed = true;',
    ...(mode === 'dynamic' ? ['if (cls == TILE_PARTIAL) {', ...pad(evalMask, 2), '}'] : evalMask),
    'if (allowed) {',
    ...pad(body, 2),
    '}',
  ];
}
