// The backward's dK/dV kernel in residue-class order (codegen/cuda/backward-residue.ts): the
// key-side unit arithmetic compiled for the host from the very text the kernels contain (every key
// in exactly one unit, each unit's rows exactly those its keys may see under q % d == k % d), the
// emitted structure on every engine (mma, wgmma, the producer kernel and its knobs; atomic and
// deterministic), and nvcc sm_90a builds of all of them with warnings as errors and bounded
// spills. Numerics: backward-residue-emu.test.ts (mma on the CPU emulator) and bench/cuda on a GPU.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { residueKeyUnitSource } from '../../src/codegen/cuda/backward-residue.js';
import { residueUnitSource } from '../../src/codegen/cuda/residue.js';
import { rng } from '../../src/runtime/inputs.js';
import { backwardEngines, expectPlainOrder, forEveryEngine, nvccSm90a } from './backward-engines.js';
import { floorMod, hostUnitTable } from './residue-host.js';
import { expectNoSpills } from './support.js';

interface KeyUnit {
  key0: number;
  step: number;
  k0: number;
  nk: number;
  row0: number;
  nq: number;
}
interface KeyCase {
  d: number;
  Nq: number;
  Nk: number;
  qo: number;
  ko: number;
  BN: number;
}

/** All units of each case, by the emitted residue_units / residue_key_unit run on the host. */
function hostKeyUnits(cases: readonly KeyCase[]): KeyUnit[][] {
  const harness = {
    scratch: 'bwd-residue',
    sources: [...residueUnitSource, ...residueKeyUnitSource],
    count: 'residue_units(d, Nk, B)', // dkdv_units
    unit: 'residue_key_unit(u, d, Nq, Nk, qo, ko, B)',
    type: 'ResidueKeyUnit',
    fields: ['key0', 'step', 'k0', 'nk', 'row0', 'nq'],
  };
  return hostUnitTable<KeyUnit>(
    harness,
    cases.map((c) => [c.d, c.Nq, c.Nk, c.qo, c.ko, c.BN]),
  );
}

function keyCases(): KeyCase[] {
  const r = rng(23);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const cases: KeyCase[] = [
    { d: 2, Nq: 64, Nk: 64, qo: 0, ko: 0, BN: 16 },
    { d: 3, Nq: 53, Nk: 37, qo: 0, ko: 16, BN: 8 },
    { d: -3, Nq: 40, Nk: 29, qo: 3, ko: -6, BN: 8 },
    { d: 0, Nq: 25, Nk: 20, qo: 0, ko: 5, BN: 8 },
    { d: 1000, Nq: 7, Nk: 30, qo: 0, ko: 0, BN: 16 },
    { d: -2147483647 - 1, Nq: 9, Nk: 9, qo: 2, ko: -4, BN: 16 },
    { d: 5, Nq: 0, Nk: 3, qo: 0, ko: 0, BN: 16 }, // keys with no rows at all
    { d: 4, Nq: 70, Nk: 1, qo: 0, ko: 69, BN: 16 },
  ];
  for (let i = 0; i < 40; i++)
    cases.push({
      d: int(-9, 9),
      Nq: int(0, 90),
      Nk: int(1, 90),
      qo: int(-40, 40),
      ko: int(-40, 40),
      BN: [8, 16, 32][int(0, 2)]!,
    });
  return cases;
}

describe('residue key units (emitted C, run on the host)', () => {
  it('put every key in one unit and give each unit exactly the rows of its class', () => {
    const cases = keyCases();
    const all = hostKeyUnits(cases);
    for (const [ci, c] of cases.entries()) {
      const where = `case ${ci} ${JSON.stringify(c)}`;
      const seen = new Array<number>(c.Nk).fill(0);
      for (const u of all[ci]!) {
        if (u.k0 >= u.nk) continue; // the kernel's block leaves at once
        const rows = new Set<number>();
        for (let i = 0; i < u.nq; i++) rows.add(u.row0 + u.step * i);
        for (const i of rows) expect(i, where).toBeLessThan(c.Nq);
        for (let j = u.k0; j < Math.min(u.k0 + c.BN, u.nk); j++) {
          const key = u.key0 + u.step * j;
          expect(key, where).toBeLessThan(c.Nk);
          seen[key]!++;
          // Rows the dilation conjunct allows for this key = the unit's rows.
          for (let q = 0; q < c.Nq; q++) {
            const allowed = floorMod(c.qo + q, c.d) === floorMod(c.ko + key, c.d);
            expect(rows.has(q), `${where} key ${key} row ${q}`).toBe(allowed);
          }
        }
      }
      expect(
        seen.every((n) => n === 1),
        `${where}: keys covered once`,
      ).toBe(true);
    }
  });
});

const dilated = readFileSync('stdlib/dilated.attn', 'utf8');
describe('dK/dV in residue-class order: emitted structure', () => {
  it('every engine and mode walks class units and never evaluates the dilation in bwd_dkdv (nor in the deterministic bwd_dq)', () => {
    forEveryEngine(dilated, 'dilated.attn', (what, code, dkdv, deterministic) => {
      expect(dkdv, what).toContain(
        'residue_key_unit(blockIdx.x, a.p_dilation, a.Nq, a.Nk, a.q_offset, a.k_offset, BN)',
      );
      expect(dkdv, what).toMatch(
        /load_(rows|panel)_strided<D, BN>\(Ks, a\.k \+ krow0 \* D, \(size_t\)ru\.step \* D/,
      );
      expect(dkdv, what).toMatch(/load_(rows|panel)_strided<D, BM>/);
      expect(dkdv, what).not.toContain('floormod');
      // The element step reads its positions from shared memory.
      expect(dkdv, what).toContain('const int kpos = __float_as_int(Ls[');
      // A block per unit.
      expect(code, what).toContain('bwd_dkdv<<<dim3((unsigned)dkdv_units(*a), (unsigned)a->Hkv');
      if (deterministic) {
        // bwd_dq walks the query side's class units (backward-dq-order.ts), over the class's keys.
        const dq = code.slice(code.indexOf('bwd_dq(const Args a)'));
        expect(dq, what).toContain(
          'residue_unit(units - 1 - iu, RD, a.Nq, a.Nk, a.q_offset, a.k_offset, BQ)',
        );
        expect(dq, what).toContain('load_rows_strided<D, BQ>(Qs, a.q + (qrow0 + ru.row0');
        expect(dq, what).toContain('load_rows_strided<D, BK>(Ks + buf * (BK * D)');
        expect(dq, what).not.toContain('floormod');
        // The grid keeps cdiv(Nq, BQ) blocks: `partials` is sized by it.
        expect(code, what).toContain('bwd_dq<<<dim3((unsigned)((a->Nq + 16 * WARPS - 1) / (16 * WARPS))');
      }
    });
  });

  it('masks without a dilation conjunct keep the plain order', () => expectPlainOrder('residue_'));
});

describe('dK/dV in residue-class order: nvcc sm_90a', () => {
  // The engines whose dK/dV kernels differ in structure (row gathers, the producer, dqBulk and
  // ping-pong's dq_meta): every mode at D = 128, the three base engines at D = 64. The other knob
  // sets only change instructions inside the tile body (the emitted-structure test above covers
  // them); building all of them took 100 s of CI's 2 cores.
  const built = (headDim: number, deterministic: boolean, name: string): boolean =>
    ['mma', 'wg', 'ws'].includes(name) ||
    (headDim === 128 && ['ws_pp', 'ws_dqb', 'ws_nosplit'].includes(name)) ||
    (headDim === 128 && !deterministic && name === 'ws_all8');
  it('builds the structurally different engines (atomic and deterministic, D 64 and 128): warnings as errors, bounded spills', async () => {
    const parts: string[] = [];
    for (const headDim of [64, 128])
      for (const deterministic of [false, true])
        for (const [name, code] of backwardEngines(dilated, 'dilated.attn', headDim, deterministic).filter(
          ([n]) => built(headDim, deterministic, n),
        ))
          parts.push(
            code.replaceAll(
              'attnc_dilated_backward',
              `attnc_dilated_${name}_${headDim}_${deterministic ? 'det' : 'at'}_backward`,
            ),
          );
    const r = await nvccSm90a('bwd-residue-nvcc', parts);
    // Measured (CUDA 13, bwd_dkdv at D = 128): wgmma without the producer 20/30 bytes stored/
    // loaded (16/26 deterministic), the producer kernels 4-16 (the default, ping-pong: 12/10);
    // mma and every D = 64 kernel none. The bound keeps them from growing.
    expectNoSpills(r.stderr, 3 * parts.length, [/attnc_dilated_w\w+_128_\w+_backward\w*bwd_dkdvE/], 32);
  }, 900_000);
});
