// Residue-class permutation of dilated masks (src/ir/passes/residue-classes.ts, the CUDA mapping
// in src/codegen/cuda/residue.ts). The CPU emulator cannot run the tensor-core cores, so the
// mapping is checked in two exact parts: the unit arithmetic the kernels contain, compiled for
// the host with g++ from the very text the renderer emits, must cover every query row once and
// give each unit exactly the keys its rows may see under `q % d == k % d` (absolute positions,
// offsets, negative and zero d, d above the lengths); and the per-class tile classifier,
// evaluated on a class tile's bounding positions, must never call a tile empty that has an
// allowed pair, nor full one that has a masked pair — against the kernel's own mask evaluated
// pair by pair. Numerics of the permuted kernels: bench/cuda/check.py on an H100.
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { residueUnitSource } from '../../src/codegen/cuda/residue.js';
import { compile } from '../../src/compile.js';
import { dumpIR } from '../../src/ir/dump.js';
import { show } from '../../src/ir/graph.js';
import { evaluate } from '../../src/ir/interp.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { rng } from '../../src/runtime/inputs.js';
import { floorMod, hostUnitTable } from './residue-host.js';
import { meta } from './support.js';

const cuda = (src: string, engine: 'mma' | 'wgmma' | 'simt' = 'wgmma', headDim = 64) =>
  compile(src, { target: 'cuda', headDim, dtype: engine === 'simt' ? 'f32' : 'bf16', schedule: { engine } });

const dilatedCausal = (d: string) => `attention t(dilation: int = 2) { mask causal && (q - k) % ${d} == 0 }`;

describe('residue-classes pass', () => {
  it('records the dilation conjunct, the per-class mask and its classifier', () => {
    const { kernel } = cuda(dilatedCausal('dilation'));
    expect(kernel.residue).toBeDefined();
    expect(show(kernel.residue!.modulus)).toBe('$dilation');
    // Inside a class only causality remains, so tiles are classified (full below the diagonal).
    expect(show(kernel.residue!.mask)).not.toContain('mod');
    expect(kernel.residue!.tiles.kind).toBe('dynamic');
    // The kernel's own mask (what WGSL and SIMT evaluate) keeps the conjunct.
    expect(show(kernel.mask)).toContain('mod');
  });

  it('matches either side order and literal moduli; skips |d| ≤ 1 and non-conjuncts', () => {
    expect(show(cuda(`attention t() { mask (k - q) % 3 == 0 && causal }`).kernel.residue!.modulus)).toBe('3');
    const pure = cuda(`attention t() { mask q % 4 == k % 4 }`).kernel.residue!;
    expect(pure.tiles).toEqual({ kind: 'static', value: 'full' });
    expect(cuda(`attention t() { mask causal && (q - k) % 1 == 0 }`).kernel.residue).toBeUndefined();
    expect(cuda(`attention t() { mask causal || (q - k) % 2 == 0 }`).kernel.residue).toBeUndefined();
    expect(cuda(`attention t() { mask (q - k) % 2 == 1 }`).kernel.residue).toBeUndefined();
  });

  it('is shown by --dump-ir', () => {
    const r = compile(dilatedCausal('dilation'), { target: 'cuda', headDim: 64, dtype: 'bf16' });
    const text = dumpIR({ ...r.kernel }, 'residue-classes');
    expect(text).toMatch(
      /residue classes: q % d == k % d with d = \$dilation; per class mask .*tiles dynamic/,
    );
  });

  it('changes CUDA tensor-core code only; SIMT keeps the row order', () => {
    const src = dilatedCausal('dilation');
    for (const engine of ['mma', 'wgmma'] as const) {
      const code = renderCuda(cuda(src, engine).kernel, meta).code;
      expect(code).toContain('residue_unit(units - 1 - iu');
      expect(code).toMatch(/load_(rows|panel)_strided<D, BQ>/); // the class's q rows
      // Its keys key0 + step·j, through the K/V row handles (kv-rows.ts).
      expect(code).toContain(
        'kv_from(kg, (long long)ru.key0 + (long long)ru.step * kt * BK, (long long)ru.step)',
      );
      // The attention loop no longer evaluates the dilation per element (other entry points of
      // the same file, e.g. a decode path, may keep the plain mask).
      const loop = code.slice(code.indexOf('residue_unit(units - 1 - iu'), code.indexOf('// out = o / l'));
      expect(loop).toContain('const int kpos = a.k_offset + ru.key0 + ru.step * (kbase + kk);');
      expect(loop).not.toContain('floormod_i(');
    }
    expect(renderCuda(cuda(src, 'simt').kernel, meta).code).not.toContain('residue_unit');
    expect(renderCuda(cuda(`attention t() { mask causal }`).kernel, meta).code).not.toContain('residue_unit');
  });
});

interface Unit {
  row0: number;
  step: number;
  q0: number;
  nq: number;
  key0: number;
  nk: number;
}
interface MapCase {
  d: number;
  Nq: number;
  Nk: number;
  qo: number;
  ko: number;
  BQ: number;
}

/** Runs the emitted unit arithmetic on the host: all units of each case. */
function hostUnits(cases: readonly MapCase[]): Unit[][] {
  const harness = {
    scratch: 'residue',
    sources: residueUnitSource,
    count: 'residue_units(d, Nq, B)',
    unit: 'residue_unit(u, d, Nq, Nk, qo, ko, B)',
    type: 'ResidueUnit',
    fields: ['row0', 'step', 'q0', 'nq', 'key0', 'nk'],
  };
  return hostUnitTable<Unit>(
    harness,
    cases.map((c) => [c.d, c.Nq, c.Nk, c.qo, c.ko, c.BQ]),
  );
}

function mapCases(): MapCase[] {
  const r = rng(11);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const cases: MapCase[] = [
    { d: 2, Nq: 64, Nk: 64, qo: 0, ko: 0, BQ: 16 },
    { d: 3, Nq: 37, Nk: 53, qo: 16, ko: 0, BQ: 8 },
    { d: -3, Nq: 29, Nk: 40, qo: -6, ko: 3, BQ: 8 },
    { d: 0, Nq: 20, Nk: 25, qo: 5, ko: 0, BQ: 8 },
    { d: 1000, Nq: 30, Nk: 7, qo: 0, ko: 0, BQ: 16 },
    { d: -2147483647 - 1, Nq: 9, Nk: 9, qo: -4, ko: 2, BQ: 16 },
    { d: 5, Nq: 3, Nk: 0, qo: 0, ko: 0, BQ: 16 },
    { d: 4, Nq: 1, Nk: 70, qo: 69, ko: 0, BQ: 16 },
  ];
  for (let i = 0; i < 40; i++)
    cases.push({
      d: int(-9, 9),
      Nq: int(1, 90),
      Nk: int(0, 90),
      qo: int(-40, 40),
      ko: int(-40, 40),
      BQ: [8, 16, 32][int(0, 2)]!,
    });
  return cases;
}

describe('residue unit mapping (emitted C, run on the host)', () => {
  it('covers every row once and gives each unit exactly the keys of its class', () => {
    const cases = mapCases();
    const all = hostUnits(cases);
    for (const [ci, c] of cases.entries()) {
      const units = all[ci]!;
      const seen = new Array<number>(c.Nq).fill(0);
      for (const u of units) {
        if (u.q0 >= u.nq) continue; // the kernel skips such units
        const keys = new Set<number>();
        for (let j = 0; j < u.nk; j++) keys.add(u.key0 + u.step * j);
        for (let i = u.q0; i < Math.min(u.q0 + c.BQ, u.nq); i++) {
          const row = u.row0 + u.step * i;
          expect(row, `case ${ci}`).toBeLessThan(c.Nq);
          seen[row]!++;
          // Keys the dilation conjunct allows for this row = the unit's keys.
          for (let j = 0; j < c.Nk; j++) {
            const allowed = floorMod(c.qo + row, c.d) === floorMod(c.ko + j, c.d);
            expect(keys.has(j), `case ${ci} ${JSON.stringify(c)} row ${row} key ${j}`).toBe(allowed);
          }
        }
        for (const j of keys) expect(j).toBeLessThan(c.Nk);
      }
      expect(
        seen.every((n) => n === 1),
        `case ${ci} ${JSON.stringify(c)}: rows covered once`,
      ).toBe(true);
    }
  });
});

/** Per-class classification is sound: checks every (unit, key tile) of each case by brute force. */
function checkClassifier(
  kernel: AttentionKernel,
  c: MapCase,
  units: readonly Unit[],
  BK: number,
  params: Record<string, number>,
) {
  const r = kernel.residue!;
  const sizes = { Nq: c.Nq, Nk: c.Nk, B: 1, H: 1, Hkv: 1, D: 64 };
  const classify = (vars: Record<string, number>) => {
    const env = { vars: { ...sizes, b: 0, h: 0, ...vars }, params };
    if (r.tiles.kind === 'static') return r.tiles.value;
    const t = evaluate(r.tiles.canBeTrue, env);
    const f = evaluate(r.tiles.canBeFalse, env);
    return !t ? 'empty' : !f ? 'full' : 'partial';
  };
  const counts = { empty: 0, full: 0, partial: 0 };
  for (const u of units) {
    if (u.q0 >= u.nq) continue;
    const qHiIdx = Math.min(u.q0 + c.BQ, u.nq) - 1;
    const rows = Array.from({ length: qHiIdx - u.q0 + 1 }, (_, i) => u.row0 + u.step * (u.q0 + i));
    for (let kt = 0; kt * BK < u.nk; kt++) {
      const kHiIdx = Math.min((kt + 1) * BK, u.nk) - 1;
      const keys = Array.from({ length: kHiIdx - kt * BK + 1 }, (_, j) => u.key0 + u.step * (kt * BK + j));
      const cls = classify({
        q_lo: c.qo + rows[0]!,
        q_hi: c.qo + rows[rows.length - 1]!,
        k_lo: c.ko + keys[0]!,
        k_hi: c.ko + keys[keys.length - 1]!,
      });
      counts[cls]++;
      for (const i of rows)
        for (const j of keys) {
          const env = { vars: { ...sizes, b: 0, h: 0, q: c.qo + i, k: c.ko + j }, params };
          const allowed = evaluate(kernel.mask, env) as boolean;
          // The per-class mask must agree with the full mask on class pairs.
          expect(evaluate(r.mask, env)).toBe(allowed);
          if (cls === 'empty') expect(allowed, `empty tile has an allowed pair ${i},${j}`).toBe(false);
          if (cls === 'full') expect(allowed, `full tile has a masked pair ${i},${j}`).toBe(true);
        }
    }
  }
  return counts;
}

describe('per-class tile classification (bounding intervals of class tiles)', () => {
  // [label, source, params, literal modulus (undefined: the `dilation` param, drawn per case)]
  const kernels: [string, string, Record<string, number>, number | undefined][] = [
    ['dilated causal', dilatedCausal('dilation'), {}, undefined],
    [
      'dilated window',
      `attention t(w: int = 60) { mask causal && q - k < w && (q - k) % 3 == 0 }`,
      { w: 60 },
      3,
    ],
    ['dilated prefix', `attention t(p: int = 7) { mask (k < p || causal) && (k - q) % 2 == 0 }`, { p: 7 }, 2],
  ];
  for (const [label, src, params, literal] of kernels) {
    it(label, () => {
      const { kernel } = cuda(src);
      expect(kernel.residue).toBeDefined();
      const cases = mapCases().map((c) => (literal === undefined ? c : { ...c, d: literal }));
      const all = hostUnits(cases);
      const total = { empty: 0, full: 0, partial: 0 };
      for (const [ci, c] of cases.entries()) {
        const p = literal === undefined ? { ...params, dilation: c.d } : params;
        const n = checkClassifier(kernel, c, all[ci]!, 8, p);
        for (const k of ['empty', 'full', 'partial'] as const) total[k] += n[k];
      }
      // The cases exercise full and partial tiles (a classifier that always says "partial" is
      // sound but useless).
      expect(total.full).toBeGreaterThan(0);
      expect(total.partial).toBeGreaterThan(0);
    });
  }
});
