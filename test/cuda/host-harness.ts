// Runs device arithmetic on the host: the very C text the kernels contain (__host__ __device__
// functions), compiled with g++ beside a `main` that reads one case a line and prints that case's
// units. Shared by the residue-class units (residue-host.ts), the forward's patch units
// (patch.test.ts) and the backward's key-side patch units (backward-patch.test.ts).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './support.js';

/** The program's output: one line per line of `input`, in order. */
export function runHostHarness(
  scratch: string,
  sources: readonly string[],
  main: readonly string[],
  input: readonly string[],
): string[] {
  const dir = scratchDir(scratch);
  const program = ['#include <stdio.h>', '#define __host__', '#define __device__', ...sources, ...main].join(
    '\n',
  );
  writeFileSync(join(dir, 'units.cpp'), program);
  execFileSync('g++', ['-O1', '-Wall', '-Werror', '-o', join(dir, 'units'), join(dir, 'units.cpp')]);
  const out = execFileSync(join(dir, 'units'), {
    input: input.join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  return out.split('\n').slice(0, input.length);
}

/** An output line's units (`;`-separated) as their `|`-separated fields of space-separated numbers. */
export const unitRecords = (line: string): number[][][] =>
  line
    .split(';')
    .filter((u) => u.trim())
    .map((u) => u.split('|').map((f) => f.trim().split(/\s+/).filter(Boolean).map(Number)));

/** Floor division and modulo as the language defines them (modulo 0 for d = 0). */
export const floorDiv = (a: number, b: number): number => Math.floor(a / b);
export const floorMod = (a: number, d: number): number => (d === 0 ? 0 : a - d * Math.floor(a / d));

/** A neighbourhood case of the patch units' host tests: image width, radii, lengths and offsets. */
export interface NeighbourhoodCase {
  W: number;
  ry: number;
  rx: number;
  Nq: number;
  Nk: number;
  qo: number;
  ko: number;
}

/** The neighbourhood mask on positions (W ≥ 1; differences far from the int range). */
export const neighbourhoodAllows = (c: NeighbourhoodCase, q: number, k: number): boolean =>
  Math.abs(floorDiv(q, c.W) - floorDiv(k, c.W)) <= c.ry &&
  Math.abs(floorMod(q, c.W) - floorMod(k, c.W)) <= c.rx;

/**
 * A random case (W 1..40, radii -1..4, lengths up to 260, offsets ±60) from `int(lo, hi)`; the
 * units' side (`unitSide`) has at least one position, the other side may have none.
 */
export function randomNeighbourhoodCase(
  int: (lo: number, hi: number) => number,
  unitSide: 'query' | 'key',
): NeighbourhoodCase {
  const [minQ, minK] = unitSide === 'query' ? [1, 0] : [0, 1];
  return {
    W: int(1, 40),
    ry: int(-1, 4),
    rx: int(-1, 4),
    Nq: int(minQ, 260),
    Nk: int(minK, 260),
    qo: int(-60, 60),
    ko: int(-60, 60),
  };
}

/**
 * The pairs the neighbourhood allows that a unit does not visit: its own indices `own` (query rows,
 * or keys for `ownSide` 'key') against every index of the other side missing from `visited`.
 */
export function missedPairs(
  c: NeighbourhoodCase,
  ownSide: 'query' | 'key',
  own: readonly number[],
  visited: readonly number[],
): string[] {
  const seen = new Set(visited);
  const others = ownSide === 'query' ? c.Nk : c.Nq;
  const missed: string[] = []; // one expect per unit: the loop is hot
  for (const i of own)
    for (let j = 0; j < others; j++) {
      if (seen.has(j)) continue;
      const [q, k] = ownSide === 'query' ? [i, j] : [j, i];
      if (neighbourhoodAllows(c, c.qo + q, c.ko + k)) missed.push(`query ${q} key ${k}`);
    }
  return missed;
}
