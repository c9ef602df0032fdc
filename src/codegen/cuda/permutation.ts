// The row and key permutations of the tensor-core cores (the mma-body.ts family): a work unit is
// a set of query rows and a contiguous run of keys in a permuted order. Residue classes of dilated
// masks (residue.ts) and 2-D patches of neighbourhood masks (patch.ts) give the same pieces of
// code; the plain row order has none.
import type { CoreExprs } from './exprs.js';
import { mmaLoadKv } from './kv-load-mma.js';
import { patchPerm } from './patch.js';
import { perm } from './residue.js';

export type Permutation = ReturnType<typeof patchPerm>;

export function permutationOf(e: CoreExprs): Permutation | null {
  const r = e.residue;
  if (r)
    return {
      ...perm,
      everyTile: undefined,
      kvLoad: (loader: string) => mmaLoadKv(loader, true),
      unitLoop: (body: readonly string[]) => perm.unitLoop(r.modulus, body),
    };
  return e.patch ? patchPerm(e.patch) : null;
}
