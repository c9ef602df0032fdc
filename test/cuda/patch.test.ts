// The patch layout of 2-D neighbourhood masks (src/ir/passes/neighbourhood.ts, the CUDA mapping
// in src/codegen/cuda/patch.ts). The CPU emulator cannot run the tensor-core cores, so, as for the
// residue classes, the mapping is checked exactly: the unit arithmetic the kernels contain,
// compiled for the host with g++ from the very text the renderer emits, must cover every query
// row once, give each unit every key its rows may see under the neighbourhood mask exactly once
// (and only real keys), and bound its rows' and keys' positions for the tile classifier; for
// random widths, radii (negative too), lengths, offsets and tile heights.
import { describe, expect, it } from 'vitest';
import { patchUnitSource } from '../../src/codegen/cuda/patch.js';
import { patchBoxSource } from '../../src/codegen/cuda/patch-box.js';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { compile } from '../../src/compile.js';
import { dumpIR } from '../../src/ir/dump.js';
import { show } from '../../src/ir/graph.js';
import { rng } from '../../src/runtime/inputs.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';
import {
  missedPairs,
  neighbourhoodAllows,
  randomNeighbourhoodCase,
  runHostHarness,
  unitRecords,
} from './host-harness.js';
import type { NeighbourhoodCase } from './host-harness.js';
import { meta } from './support.js';

/** `patchTweaks: []` pins the untweaked layout (the default neighbourhood schedule carries tweaks). */
const cuda = (src: string, engine: 'mma' | 'wgmma' | 'simt' = 'wgmma') =>
  compile(src, {
    target: 'cuda',
    headDim: 64,
    dtype: engine === 'simt' ? 'f32' : 'bf16',
    schedule: { engine, patchTweaks: [] },
  });

describe('neighbourhood-patches pass', () => {
  it('records W and both radii of stdlib/neighbourhood.attn', () => {
    const r = compile(readStdlib('neighbourhood.attn'), {
      target: 'cuda',
      file: stdlibPath('neighbourhood.attn'),
      headDim: 64,
      dtype: 'bf16',
    });
    const n = r.kernel.neighbourhood!;
    expect([show(n.width), show(n.rowRadius), show(n.colRadius)]).toEqual(['$W', '$r', '$r']);
    expect(dumpIR({ ...r.kernel }, 'neighbourhood-patches')).toContain(
      'neighbourhood patches: image width W = $W, radii $r (rows), $r (columns)',
    );
  });

  it('matches either side order, `r >= abs(…)`, other conjuncts and separate radii', () => {
    const n = cuda(
      'attention t(W: int = 64) { mask causal && 3 >= abs(k / W - q / W) && abs(k % W - q % W) <= 2 }',
    ).kernel.neighbourhood!;
    expect([show(n.width), show(n.rowRadius), show(n.colRadius)]).toEqual(['$W', '3', '2']);
    expect(
      cuda('attention t() { mask abs(q / 32 - k / 32) <= 1 && abs(q % 32 - k % 32) <= 1 }').kernel
        .neighbourhood,
    ).toBeDefined();
  });

  it('skips masks that are not a neighbourhood', () => {
    const none = (mask: string) =>
      cuda(`attention t(W: int = 64, V: int = 32) { mask ${mask} }`).kernel.neighbourhood;
    expect(none('abs(q / W - k / W) <= 2')).toBeUndefined(); // rows only
    expect(none('abs(q / W - k / W) <= 2 && abs(q % V - k % V) <= 2')).toBeUndefined(); // two widths
    expect(none('abs(q / W - k / W) <= 2 || abs(q % W - k % W) <= 2')).toBeUndefined(); // not a conjunction
    expect(none('abs(q / 1 - k / 1) <= 2 && abs(q % 1 - k % 1) <= 2')).toBeUndefined(); // W = 1
    expect(none('abs(q / W - q / W) <= 2 && abs(q % W - k % W) <= 2')).toBeUndefined();
    // Dilated masks take the residue classes instead.
    expect(
      cuda('attention t() { mask (q - k) % 2 == 0 && abs(q / 8 - k / 8) <= 1 && abs(q % 8 - k % 8) <= 1 }')
        .kernel.neighbourhood,
    ).toBeUndefined();
  });
});

describe('patch layout in the CUDA cores', () => {
  const src = readStdlib('neighbourhood.attn');
  it('mma and wgmma gather Q by patch and K/V by the patch neighbourhood', () => {
    for (const engine of ['mma', 'wgmma'] as const) {
      const code = renderCuda(cuda(src, engine).kernel, meta).code;
      const loader = engine === 'mma' ? 'load_rows' : 'load_panel';
      expect(code).toContain(
        'pu_s = patch_unit(patch_grid(PW_, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ, gridDim.x)',
      );
      expect(code).toContain(`${loader}_gather<D, BQ>(Qs,`);
      expect(code).toContain(`${loader}_gather<D, BK>(Ks + buf * (BK * D), kg,`);
      expect(code).toContain('const int k_lo = a.k_offset + patch_key(pu, kt * BK);');
      expect(code).toContain('const int nkt = (pu.nk + BK - 1) / BK;');
      expect(code).not.toContain('residue_unit');
    }
  });

  it('the default engine for 16-bit storage is wgmma (wgmma-ws has no patches); SIMT keeps the row order', () => {
    const byDefault = compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16' }).artifact;
    expect(byDefault.schedule.engine).toBe('wgmma');
    expect(byDefault.code).toContain('patch_unit(');
    // The H200's pick (patch-tweaks.ts neighbourhoodDefaults): D = 128 takes 64-query patches with
    // the box mask, D = 64 the per-thread unit and the row table; both keep the backward's patch
    // order ('backward', backward-patch.ts), which named patchTweaks would otherwise drop.
    expect(byDefault.schedule).toMatchObject({
      blockQ: 64,
      blockK: 64,
      patchTweaks: ['boxMask', 'visitAll', 'blocks3', 'backward'],
    });
    const d64 = compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16' }).artifact;
    expect(d64.schedule.patchTweaks).toEqual(['unitRegs', 'rowTable', 'visitAll', 'backward']);
    expect(d64.code).toContain('load_panel_gather_tab<');
    expect(renderCuda(cuda(src, 'simt').kernel, meta).code).not.toContain('patch_unit');
    expect(renderCuda(cuda(src, 'wgmma').kernel, meta).code).toContain('patch_unit');
    const ws = compile(src, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { engine: 'wgmma-ws' },
    });
    expect(ws.artifact.code).not.toContain('patch_unit');
  });
});

interface Case extends NeighbourhoodCase {
  BQ: number;
}
interface Unit {
  plain: boolean;
  qLo: number;
  qHi: number;
  rows: number[];
  keys: number[];
  /** boxMask (patch-box.ts): each unit-local query's bits, then each key's. */
  qBits: number[];
  kBits: number[];
}

/**
 * Runs the emitted unit arithmetic on the host: every unit of each case, rows and keys; with
 * `box`, the boxMask grid (patch shape clamped to 16 × 16) and the query and key bit words.
 */
function hostUnits(cases: readonly Case[], box = false): Unit[][] {
  const main = [
    'int main() {',
    '  int W, ry, rx, Nq, Nk, qo, ko, BQ;',
    '  while (scanf("%d %d %d %d %d %d %d %d", &W, &ry, &rx, &Nq, &Nk, &qo, &ko, &BQ) == 8) {',
    '    const int grid = (Nq + BQ - 1) / BQ;',
    '    const PatchGrid g0 = patch_grid(W, Nq, Nk, qo, ko, BQ, grid);',
    `    const PatchGrid g = ${box ? 'patch_grid_box(g0, W, BQ, grid)' : 'g0'};`,
    '    const int n = patch_units(g, Nq, BQ);',
    '    for (int un = 0; un < n; ++un) {',
    '      const PatchUnit u = patch_unit(g, un, W, ry, rx, Nq, Nk, qo, ko, BQ);',
    '      printf("%d %d %d |", u.plain, u.q_lo, u.q_hi);',
    '      for (int i = 0; i < BQ; ++i) printf(" %d", patch_row(u, i));',
    '      printf(" |");',
    '      for (int j = 0; j < u.nk; ++j) printf(" %d", patch_key(u, j));',
    '      printf(" |");',
    `      if (${box ? '!u.plain' : '0'}) {`,
    '        for (int i = 0; i < BQ; ++i) printf(" %u", patch_query_bits(u, i));',
    '        printf(" |");',
    '        for (int j = 0; j < u.nk + 2; ++j) printf(" %u", patch_key_bits(u, j, ry, rx));',
    '      } else printf(" |");',
    '      printf(";");',
    '    }',
    '    printf("\\n");',
    '  }',
    '}',
  ];
  const input = cases.map((c) => `${c.W} ${c.ry} ${c.rx} ${c.Nq} ${c.Nk} ${c.qo} ${c.ko} ${c.BQ}`);
  return runHostHarness('patch', [...patchUnitSource, ...patchBoxSource], main, input).map((line) =>
    unitRecords(line).map(([head, rows, keys, qBits, kBits]) => {
      const [plain, qLo, qHi] = head!;
      return {
        plain: plain === 1,
        qLo: qLo!,
        qHi: qHi!,
        rows: rows!,
        keys: keys!,
        qBits: qBits!,
        kBits: kBits!,
      };
    }),
  );
}

/** The neighbourhood mask on positions (W ≥ 1 here; differences stay far from the int range). */
const allowed = neighbourhoodAllows;

function cases(): Case[] {
  const r = rng(13);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const out: Case[] = [
    { W: 37, ry: 3, rx: 3, Nq: 400, Nk: 400, qo: 0, ko: 0, BQ: 64 },
    { W: 16, ry: 2, rx: 1, Nq: 300, Nk: 260, qo: -40, ko: 25, BQ: 32 },
    { W: 5, ry: 1, rx: 4, Nq: 90, Nk: 100, qo: 3, ko: -7, BQ: 16 },
    { W: 1000, ry: 1, rx: 2, Nq: 70, Nk: 90, qo: 0, ko: 0, BQ: 16 }, // one image row
    { W: 9, ry: -1, rx: 2, Nq: 50, Nk: 50, qo: 0, ko: 0, BQ: 16 }, // nothing allowed
    { W: 0, ry: 1, rx: 1, Nq: 40, Nk: 30, qo: 0, ko: 0, BQ: 16 }, // plain layout
    { W: 12, ry: 1, rx: 1, Nq: 40, Nk: 30, qo: 1 << 29, ko: 0, BQ: 16 }, // near the int range: plain
    { W: 8, ry: 2, rx: 2, Nq: 64, Nk: 0, qo: 0, ko: 0, BQ: 16 },
    { W: 7, ry: 100000, rx: 1, Nq: 120, Nk: 150, qo: -20, ko: 10, BQ: 32 }, // box rows clamped
    { W: 7, ry: 2, rx: 2147483647, Nq: 120, Nk: 150, qo: 5, ko: 0, BQ: 16 }, // whole image rows
    { W: (1 << 29) + 1, ry: 0, rx: 3, Nq: 40, Nk: 40, qo: 0, ko: 0, BQ: 16 }, // W too wide: plain
  ];
  for (let i = 0; i < 40; i++)
    out.push({ ...randomNeighbourhoodCase(int, 'query'), BQ: [16, 32, 64][int(0, 2)]! });
  return out;
}

/** The checks of a layout: rows covered once, each unit's keys real, distinct, ascending, complete. */
function checkCoverage(cs: readonly Case[], all: readonly Unit[][]): number {
  let patched = 0;
  for (const [ci, c] of cs.entries()) {
    const what = `case ${ci} ${JSON.stringify(c)}`;
    const seen = new Array<number>(c.Nq).fill(0);
    for (const u of all[ci]!) {
      if (!u.plain) patched++;
      const rows = u.rows.filter((row) => row < c.Nq);
      for (const row of rows) {
        seen[row]!++;
        expect(row, what).toBeGreaterThanOrEqual(0);
        // Bounding positions for the classifier.
        expect(c.qo + row, what).toBeGreaterThanOrEqual(u.qLo);
        expect(c.qo + row, what).toBeLessThanOrEqual(u.qHi);
      }
      expect(new Set(u.keys).size, `${what}: keys distinct`).toBe(u.keys.length);
      for (const [j, key] of u.keys.entries()) {
        expect(key >= 0 && key < c.Nk, `${what}: key ${key} exists`).toBe(true);
        if (j > 0) expect(key, `${what}: keys ascend`).toBeGreaterThan(u.keys[j - 1]!);
      }
      if (c.W < 1) continue; // the plain layout visits every key
      expect(missedPairs(c, 'query', rows, u.keys), what).toEqual([]);
    }
    expect(
      seen.every((n) => n === 1),
      `${what}: rows covered once`,
    ).toBe(true);
  }
  return patched;
}

describe('patch unit mapping (emitted C, run on the host)', () => {
  it('boxMask: 16 × 16 patches, and the bit words are the mask on every visited pair', () => {
    const cs = [
      ...cases(),
      { W: 128, ry: 7, rx: 7, Nq: 128 * 12, Nk: 128 * 12, qo: 0, ko: 0, BQ: 128 },
      { W: 128, ry: 7, rx: 7, Nq: 128 * 12, Nk: 128 * 12, qo: 0, ko: 0, BQ: 64 },
      { W: 3, ry: 1, rx: 1, Nq: 200, Nk: 200, qo: 7, ko: -5, BQ: 128 }, // narrower than a patch
      { W: 300, ry: 2, rx: 20, Nq: 600, Nk: 650, qo: -10, ko: 0, BQ: 128 }, // two image rows
      { W: 50, ry: 30, rx: 30, Nq: 600, Nk: 600, qo: 0, ko: 0, BQ: 64 }, // radii past the patch
    ];
    const all = hostUnits(cs, true);
    expect(checkCoverage(cs, all)).toBeGreaterThan(100);
    let pairs = 0;
    for (const [ci, c] of cs.entries())
      for (const u of all[ci]!) {
        if (u.plain) continue;
        const what = `case ${ci} ${JSON.stringify(c)}`;
        expect(u.kBits.slice(u.keys.length), `${what}: no bits past the keys`).toEqual([0, 0]);
        for (const [i, row] of u.rows.entries()) {
          if (row >= c.Nq) continue;
          const qb = u.qBits[i]!;
          const wrong = u.keys.filter(
            (key, j) => ((u.kBits[j]! & qb) >>> 0 === qb) !== allowed(c, c.qo + row, c.ko + key),
          );
          expect(wrong, `${what}: row ${row}, keys`).toEqual([]);
          pairs += u.keys.length;
        }
      }
    expect(pairs).toBeGreaterThan(100000);
  });

  it('covers every row once and gives each unit exactly once every key its rows may see', () => {
    const cs = cases();
    expect(checkCoverage(cs, hostUnits(cs))).toBeGreaterThan(100);
  });

  it('visits the neighbourhood, not whole image rows', () => {
    // 15×15 neighbourhoods on a 128-wide image, 64-query patches (8×8): 22 rows of 22 keys.
    const c: Case = { W: 128, ry: 7, rx: 7, Nq: 128 * 48, Nk: 128 * 48, qo: 0, ko: 0, BQ: 64 };
    const units = hostUnits([c])[0]!;
    expect(units.every((u) => !u.plain)).toBe(true);
    const inner = units.filter((u) => u.rows.every((r) => r < c.Nq)).map((u) => u.keys.length);
    expect(Math.max(...inner)).toBe(22 * 22);
  });
});
