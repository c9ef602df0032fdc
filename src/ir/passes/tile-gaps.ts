// A schedule-pass probe: do a q-tile's non-empty key tiles come in separate runs with a long
// stretch of empty tiles between them (attention sinks + a sliding window: tile 0, then the
// window's tiles thousands of keys later)? Such masks want tile scans that skip 32 tiles per warp
// ballot and fine key tiles (the sink tile holds a few live keys): measured on the H200 at 16K,
// 1.00 ms with 64 × 64 ballot-scanned tiles vs 1.16 ms with the per-tile walk of 128-key tiles
// (bench/results/cuda-table-h200-2026-12-03.json). The probe evaluates the tile classifier at the
// parameters' defaults on a 16K × 16K grid of 128 × 64 tiles, at a few q-tiles; a classifier it
// cannot evaluate (tensor summaries, a required parameter, an unknown var) is not gapped.
import type { Node } from '../graph.js';
import { evaluate, type InterpEnv, type Value } from '../interp.js';
import type { ParamSlot } from '../kernel.js';

/** What the probe reads of the IR (a structural subset of AttentionIR). */
export interface TileGapFacts {
  readonly tiles?: { readonly kind: string; readonly canBeTrue?: Node };
  readonly params?: readonly ParamSlot[];
  readonly summaries?: readonly unknown[];
}

const PROBE_N = 16384;
const PROBE_BQ = 128;
const PROBE_BK = 64;
/** Empty tiles between two non-empty ones that make a gap (4 × 64 keys: a ballot's 32 pays off). */
const MIN_GAP_TILES = 4;

function probeEnv(params: readonly ParamSlot[]): InterpEnv | undefined {
  const values: Record<string, Value> = {};
  for (const p of params) {
    if (p.default === undefined) return undefined;
    values[p.name] = p.dtype === 'bool' ? p.default !== 0 : p.default;
  }
  const vars = { B: 1, H: 1, Hkv: 1, Nq: PROBE_N, Nk: PROBE_N, D: 128, b: 0, h: 0 };
  return { vars, params: values };
}

/** The longest run of empty tiles between two non-empty ones, for q-tile `qt`. */
function longestInnerGap(canBeTrue: Node, env: InterpEnv, qt: number): number {
  const q_lo = qt * PROBE_BQ;
  const q_hi = Math.min(q_lo + PROBE_BQ, PROBE_N) - 1;
  let lastLive = -1;
  let gap = 0;
  for (let kt = 0; kt * PROBE_BK < PROBE_N; kt++) {
    const k_lo = kt * PROBE_BK;
    const vars = { ...env.vars, q_lo, q_hi, k_lo, k_hi: k_lo + PROBE_BK - 1 };
    if (!evaluate(canBeTrue, { ...env, vars })) continue;
    if (lastLive >= 0) gap = Math.max(gap, kt - lastLive - 1);
    lastLive = kt;
  }
  return gap;
}

/** Whether some q-tile's non-empty key tiles are separated by a long run of empty ones. */
export function hasGappedTileRuns(ir: TileGapFacts): boolean {
  const tiles = ir.tiles;
  if (tiles?.kind !== 'dynamic' || tiles.canBeTrue === undefined) return false;
  if ((ir.summaries?.length ?? 0) > 0) return false; // tensor-dependent: ballot scans already
  const env = probeEnv(ir.params ?? []);
  if (env === undefined) return false;
  const nqt = PROBE_N / PROBE_BQ;
  try {
    for (const qt of [0, nqt / 4, nqt / 2, nqt - 1]) {
      if (longestInnerGap(tiles.canBeTrue, env, qt) >= MIN_GAP_TILES) return true;
    }
  } catch {
    return false; // a var or lookup the probe does not bind: no claim
  }
  return false;
}
