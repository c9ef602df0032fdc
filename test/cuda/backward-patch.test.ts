// The backward's dK/dV kernel in 2-D patch order (codegen/cuda/backward-patch.ts): the key-side
// unit arithmetic compiled for the host from the very text the kernels contain (every key in
// exactly one unit, each unit's query box holding every query its keys may see, both ascending,
// the classifier's key bounds), and the emitted structure on every engine (mma, wgmma, the
// producer kernel and its knobs; atomic and deterministic). Numerics: backward-patch-emu.test.ts
// (mma on the CPU emulator); nvcc builds: backward-mma.test.ts and backward-wgmma.test.ts build
// stdlib/neighbourhood.attn with every other stdlib pattern (warnings as errors, bounded spills).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { patchKeyUnitSource } from '../../src/codegen/cuda/backward-patch.js';
import { patchUnitSource } from '../../src/codegen/cuda/patch.js';
import { rng } from '../../src/runtime/inputs.js';
import { backwardEngines, dkdvOf, expectPlainOrder, forEveryEngine, nvccSm90a } from './backward-engines.js';
import { missedPairs, randomNeighbourhoodCase, runHostHarness, unitRecords } from './host-harness.js';
import type { NeighbourhoodCase } from './host-harness.js';
import { expectNoSpills } from './support.js';

interface Case extends NeighbourhoodCase {
  BN: number;
}
interface KeyUnit {
  plain: boolean;
  /** The patch's bounding positions, clipped to the keys. */
  kLo: number;
  kHi: number;
  keys: number[];
  /** The query box's rows, in walk order. */
  queries: number[];
}

/** Every unit of each case, by the emitted dkdv_units arithmetic and patch_key_unit run on the host. */
function hostKeyUnits(cases: readonly Case[]): KeyUnit[][] {
  const main = [
    'int main() {',
    '  int W, ry, rx, Nq, Nk, qo, ko, BN;',
    '  while (scanf("%d %d %d %d %d %d %d %d", &W, &ry, &rx, &Nq, &Nk, &qo, &ko, &BN) == 8) {',
    '    const int n = patch_units(patch_key_grid(W, Nq, Nk, qo, ko, BN), Nk, BN); // dkdv_units',
    '    for (int un = 0; un < n; ++un) {',
    '      const PatchKeyUnit u = patch_key_unit(un, W, ry, rx, Nq, Nk, qo, ko, BN);',
    '      printf("%d %d %d |", u.keys.plain, u.box.q_lo, u.box.q_hi);',
    '      for (int c = 0; c < u.n; ++c) printf(" %d", patch_tile_key(u, c));',
    '      printf(" |");',
    '      for (int j = 0; j < u.box.nk; ++j) printf(" %d", patch_key(u.box, j));',
    '      printf(";");',
    '    }',
    '    printf("\\n");',
    '  }',
    '}',
  ];
  const input = cases.map((c) => `${c.W} ${c.ry} ${c.rx} ${c.Nq} ${c.Nk} ${c.qo} ${c.ko} ${c.BN}`);
  return runHostHarness('bwd-patch', [...patchUnitSource, ...patchKeyUnitSource], main, input).map((line) =>
    unitRecords(line).map(([head, keys, queries]) => {
      const [plain, kLo, kHi] = head!;
      return { plain: plain === 1, kLo: kLo!, kHi: kHi!, keys: keys!, queries: queries! };
    }),
  );
}

function cases(): Case[] {
  const r = rng(29);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const out: Case[] = [
    { W: 37, ry: 3, rx: 3, Nq: 400, Nk: 400, qo: 0, ko: 0, BN: 64 },
    { W: 10, ry: 1, rx: 1, Nq: 100, Nk: 100, qo: 0, ko: 0, BN: 128 }, // narrower than the 16-wide patch
    { W: 16, ry: 2, rx: 2, Nq: 260, Nk: 300, qo: 25, ko: -40, BN: 32 },
    { W: 1000, ry: 2, rx: 2, Nq: 60, Nk: 90, qo: 0, ko: 0, BN: 128 }, // patches with no key
    { W: 5000, ry: 3, rx: 3, Nq: 80, Nk: 150, qo: 0, ko: 0, BN: 128 }, // too many patches: plain
    { W: 0, ry: 1, rx: 1, Nq: 40, Nk: 30, qo: 0, ko: 0, BN: 16 }, // plain
    { W: 12, ry: 1, rx: 1, Nq: 30, Nk: 40, qo: 0, ko: 1 << 29, BN: 16 }, // near the int range: plain
    { W: 9, ry: -1, rx: -1, Nq: 50, Nk: 50, qo: 0, ko: 0, BN: 16 }, // nothing allowed: empty boxes
    { W: 8, ry: 2, rx: 2, Nq: 0, Nk: 64, qo: 0, ko: 0, BN: 16 }, // keys with no query at all
    { W: 7, ry: 100000, rx: 1, Nq: 150, Nk: 120, qo: 10, ko: -20, BN: 32 }, // box rows clamped
  ];
  for (let i = 0; i < 40; i++)
    out.push({ ...randomNeighbourhoodCase(int, 'key'), BN: [16, 32, 64, 128][int(0, 3)]! });
  return out;
}

/** Positions ascend strictly and are indices below `n`. */
function expectAscending(xs: readonly number[], n: number, what: string): void {
  const bad = xs.filter((x, i) => x < 0 || x >= n || (i > 0 && x <= xs[i - 1]!));
  expect(bad, what).toEqual([]);
}

describe('patch key units (emitted C, run on the host)', () => {
  it('put every key in one unit and give each unit every query its keys may see', () => {
    const cs = cases();
    const all = hostKeyUnits(cs);
    let patched = 0;
    for (const [ci, c] of cs.entries()) {
      const what = `case ${ci} ${JSON.stringify(c)}`;
      const seen = new Array<number>(c.Nk).fill(0);
      for (const u of all[ci]!) {
        if (!u.plain) patched++;
        expect(u.keys.length, what).toBeLessThanOrEqual(c.BN);
        expectAscending(u.keys, c.Nk, `${what}: keys`);
        expectAscending(u.queries, c.Nq, `${what}: queries`);
        for (const k of u.keys) seen[k]!++;
        // The patch's bounding positions (the kernel's k_lo, k_hi are its first and last key).
        const out = u.keys.filter((k) => c.ko + k < u.kLo || c.ko + k > u.kHi);
        expect(out, `${what}: keys within the patch's bounds`).toEqual([]);
        if (c.W < 1) continue; // plain units walk every query
        expect(missedPairs(c, 'key', u.keys, u.queries), what).toEqual([]);
      }
      expect(
        seen.every((n) => n === 1),
        `${what}: keys covered once`,
      ).toBe(true);
    }
    expect(patched).toBeGreaterThan(100);
  });

  it('falls back to plain key tiles where the forward does, and walks the neighbourhood, not image rows', () => {
    const [wide, nowhere, farOff, image] = hostKeyUnits([
      { W: 5000, ry: 3, rx: 3, Nq: 80, Nk: 150, qo: 0, ko: 0, BN: 128 },
      { W: 0, ry: 1, rx: 1, Nq: 40, Nk: 30, qo: 0, ko: 0, BN: 16 },
      { W: 12, ry: 1, rx: 1, Nq: 30, Nk: 40, qo: 0, ko: 1 << 29, BN: 16 },
      { W: 128, ry: 7, rx: 7, Nq: 128 * 48, Nk: 128 * 48, qo: 0, ko: 0, BN: 128 },
    ]);
    for (const units of [wide!, nowhere!, farOff!]) expect(units.every((u) => u.plain)).toBe(true);
    // 8 × 16 key patches on a 128-wide image, r 7: 22 rows of 30 queries (the plain order's key
    // tile, one image row, walks 15 whole image rows: 1920 queries).
    expect(image!.every((u) => !u.plain)).toBe(true);
    expect(Math.max(...image!.map((u) => u.queries.length))).toBe(22 * 30);
  });
});

const neighbourhood = readFileSync('stdlib/neighbourhood.attn', 'utf8');
// The default (backward-patch.ts backwardPatchAsked); patchTweaks named without 'backward' opt out.
const plain = { patchTweaks: [] } as const;
describe('dK/dV in 2-D patch order: emitted structure', () => {
  it('every engine and mode runs a block per key patch, gathers its rows and adds dQ by row', () => {
    forEveryEngine(neighbourhood, 'neighbourhood.attn', (what, code, dkdv, deterministic) => {
      expect(dkdv, what).toContain(
        'patch_key_unit(blockIdx.x, a.p_W, a.p_r, a.p_r, a.Nq, a.Nk, a.q_offset, a.k_offset, BN)',
      );
      expect(dkdv, what).toMatch(/load_(rows|panel)_gather<D, BN>\(Ks, a\.k \+ krow0 \* D, /);
      expect(dkdv, what).toMatch(
        /load_(rows|panel)_gather<D, BM>\(Qs \+ buf \* \(BM \* D\), a\.q \+ qrow0 \* D/,
      );
      expect(dkdv, what).toContain('const int kpos = __float_as_int(Ls[');
      // dqBulk's dQ warp adds row runs: dropped under the patch order.
      expect(dkdv, what).not.toContain('dq_meta');
      expect(code, what).toContain('bwd_dkdv<<<dim3((unsigned)dkdv_units(*a), (unsigned)a->Hkv');
      if (deterministic) {
        // bwd_dq walks query patches over their boxes' keys (backward-dq-order.ts), on a grid of
        // cdiv(Nq, BQ) blocks (`partials` is sized by it).
        const dq = code.slice(code.indexOf('bwd_dq(const Args a)'));
        expect(dq, what).toContain('load_rows_gather<D, BQ>(Qs, a.q + qrow0 * D');
        expect(dq, what).toContain('load_rows_gather<D, BK>(Ks + buf * (BK * D), a.k + krow0 * D');
        expect(code, what).toContain('bwd_dq<<<dim3((unsigned)((a->Nq + 16 * WARPS - 1) / (16 * WARPS))');
      }
    });
  });

  it('patchTweaks named without backward keep the plain order and its ping-pong dQ', () => {
    for (const [name, code] of backwardEngines(neighbourhood, 'neighbourhood.attn', 128, false, plain)) {
      expect(code, name).not.toContain('patch_key');
      expect(code, name).toContain('bwd_dkdv<<<dim3((unsigned)((a->Nk + BN - 1) / BN), (unsigned)a->Hkv');
      if (name === 'ws') expect(dkdvOf(code), name).toContain('dq_meta');
    }
  });

  it('masks without a neighbourhood keep their order', () => expectPlainOrder('patch_'));
});

describe('dK/dV in 2-D patch order: nvcc sm_90a', () => {
  // The producer kernel's default (its dqBulk and ping-pong dropped: the same kernel as ws_all8,
  // ws_dqb and ws_pp here) and ws_nosplit, the one knob set with another tile body; every stdlib
  // pattern's mma, wgmma and deterministic builds are backward-mma.test.ts's and backward-wgmma.test.ts's.
  it('builds the producer kernel, default and ws_nosplit, D = 128, and the deterministic default (bwd_dq in patches): warnings as errors, bounded spills', async () => {
    const rename =
      (tag: string) =>
      ([name, code]: [string, string]) =>
        code.replaceAll('attnc_neighbourhood_backward', `attnc_nb_${name}${tag}_backward`);
    const parts = [
      ...backwardEngines(neighbourhood, 'neighbourhood.attn', 128, false)
        .filter(([name]) => name === 'ws' || name === 'ws_nosplit')
        .map(rename('')),
      ...backwardEngines(neighbourhood, 'neighbourhood.attn', 128, true)
        .filter(([name]) => name === 'ws')
        .map(rename('_det')),
    ];
    expect(parts).toHaveLength(3);
    const r = await nvccSm90a('bwd-patch-nvcc', parts);
    // Measured (CUDA 13): the default 4/4 bytes stored/loaded, ws_nosplit none, the deterministic
    // bwd_dq none (its dK/dV kernel as the default's). The bound keeps them from growing.
    expectNoSpills(r.stderr, 3 * parts.length, [/attnc_nb_ws(_det)?_backward\w*bwd_dkdvE/], 8);
  }, 600_000);
});
