// Runs a residue-class unit function on the host: the very text the kernels contain, compiled with
// g++ and fed one case a line, printing every unit of each case. Shared by the forward's query
// units (residue.test.ts) and the backward's key units (backward-residue.test.ts).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './support.js';

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
  const dir = scratchDir(h.scratch);
  const harness = [
    '#include <stdio.h>',
    '#define __host__',
    '#define __device__',
    ...h.sources,
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
  ].join('\n');
  writeFileSync(join(dir, 'units.cpp'), harness);
  execFileSync('g++', ['-O1', '-o', join(dir, 'units'), join(dir, 'units.cpp')]);
  const input = args.map((a) => a.join(' ')).join('\n') + '\n';
  const out = execFileSync(join(dir, 'units'), { input, encoding: 'utf8' });
  return out
    .split('\n')
    .slice(0, args.length)
    .map((line) =>
      line
        .split(';')
        .filter(Boolean)
        .map((u) => {
          const values = u.trim().split(' ').map(Number);
          return Object.fromEntries(h.fields.map((f, i) => [f, values[i]])) as T;
        }),
    );
}

/** Floor modulo as the language defines it (0 for d = 0). */
export const floorMod = (a: number, d: number): number => (d === 0 ? 0 : a - d * Math.floor(a / d));
