// Runs a residue-class unit function on the host: the very text the kernels contain, compiled with
// g++ and fed one case a line, printing every unit of each case. Shared by the forward's query
// units (residue.test.ts) and the backward's key units (backward-residue.test.ts).
import { floorMod, runHostHarness, unitRecords } from './host-harness.js';

export interface UnitHarness {
  readonly scratch: string;
  readonly sources: readonly string[];
  /** C: the unit count, of d, Nq, Nk, qo, ko and B (the tile size). */
  readonly count: string;
  /** C: unit u's struct, of u and the same names. */
  readonly unit: string;
  readonly type: string;
  /** The struct's int fields, printed and returned in this order. */
  readonly fields: readonly string[];
}

/** Every unit of each case (`args`: d, Nq, Nk, qo, ko, B), as objects keyed by `fields`. */
export function hostUnitTable<T>(h: UnitHarness, args: readonly (readonly number[])[]): T[][] {
  const main = [
    'int main() {',
    '  int d, Nq, Nk, qo, ko, B;',
    '  while (scanf("%d %d %d %d %d %d", &d, &Nq, &Nk, &qo, &ko, &B) == 6) {',
    `    const int n = ${h.count};`,
    '    for (int u = 0; u < n; ++u) {',
    `      const ${h.type} r = ${h.unit};`,
    `      printf("${h.fields.map(() => '%d').join(' ')};", ${h.fields.map((f) => `r.${f}`).join(', ')});`,
    '    }',
    '    printf("\\n");',
    '  }',
    '}',
  ];
  const lines = runHostHarness(
    h.scratch,
    h.sources,
    main,
    args.map((a) => a.join(' ')),
  );
  return lines.map((line) =>
    unitRecords(line).map(([values]) => Object.fromEntries(h.fields.map((f, i) => [f, values![i]])) as T),
  );
}

export { floorMod };
