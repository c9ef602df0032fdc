// The two sides of the coop engine's run-time subgroup check (use_sg, coop.ts): shuffles between
// a row's lanes need those lanes inside one subgroup, in order, which WebGPU does not promise for
// more than four lanes; where the check fails, workgroup memory takes the shuffles' place.
import type { CoopParts } from './coop.js';
import { coopGeometry, sgCheck } from './coop-geometry.js';
import { pad } from './entry-lines.js';

/** Shuffles within a row's lanes ('shuffle') or workgroup memory in their place ('memory'). */
export type SgPath = 'shuffle' | 'memory';

/**
 * `shuffle` where the row's lanes are known to share a subgroup (four lanes, or this rendering's
 * side of the hoisted check), `memory` on the other side, else both behind `if (use_sg)`.
 */
export function bySubgroupPath(p: CoopParts, shuffle: string[], memory: string[]): string[] {
  if (!sgCheck(coopGeometry(p.schedule)) || p.sgPath === 'shuffle') return shuffle;
  if (p.sgPath === 'memory') return memory;
  return ['if (use_sg) {', ...pad(shuffle, 2), '} else {', ...pad(memory, 2), '}'];
}
