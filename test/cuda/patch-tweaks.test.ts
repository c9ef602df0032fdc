// Schedule.patchTweaks (codegen/cuda/patch-tweaks.ts, patch-box.ts): opt-in refinements of the
// 2-D neighbourhood patches. Each shows up in the emitted code as promised and only when asked
// (the default is byte-identical: the goldens), boxMask only where the mask is exactly the
// neighbourhood, and the candidates bench/cuda/nbhd-list.mjs times build for sm_90a with no
// spills and no serialized wgmma (C7520). The unit and bit arithmetic run on the host in
// patch.test.ts; numerics on the H200 (bench/cuda/neighbourhood.sh).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { compile } from '../../src/compile.js';
import type { PatchTweak, Schedule } from '../../src/ir/kernel.js';
import { readStdlib, stdlibPath } from '../support/stdlib.js';
import { expectOk, meta, run, scratchDir, spillsByFunction } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const wg = { engine: 'wgmma', blockQ: 128, blockK: 128, threads: 256, stages: 2 } as const;
const nbhd = readStdlib('neighbourhood.attn');

const kernelOf = (src: string, schedule: Partial<Schedule>, headDim = 128) =>
  compile(src, { target: 'cuda', file: stdlibPath('neighbourhood.attn'), headDim, dtype: 'bf16', schedule })
    .kernel;
const codeOf = (src: string, schedule: Partial<Schedule>): string =>
  renderCuda(kernelOf(src, schedule), meta).code;
const tweaked = (patchTweaks: readonly PatchTweak[], extra: Partial<Schedule> = {}) =>
  codeOf(nbhd, { ...wg, ...extra, patchTweaks });

describe('patch tweaks: emitted structure', () => {
  const plain = codeOf(nbhd, wg);

  it('none of them without patchTweaks, and kernels without patches ignore them', () => {
    expect(tweaked([])).toBe(plain);
    for (const text of ['pk_s', 'pkb_s', 'PBOX', 'visitAll', '_gather_tab', 'patch_grid_box'])
      expect(plain).not.toContain(text);
    expect(plain).toContain('__launch_bounds__(THREADS, 1)');
    const causal = readStdlib('causal.attn');
    const all: PatchTweak[] = ['unitRegs', 'rowTable', 'visitAll', 'boxMask', 'blocks2'];
    expect(codeOf(causal, { ...wg, patchTweaks: all })).toBe(codeOf(causal, wg));
  });

  it('unitRegs: the unit is computed by every thread, not staged in shared memory', () => {
    const c = tweaked(['unitRegs']);
    expect(c).toContain('const PatchUnit pu = patch_unit(pgrid, iu,');
    expect(c).not.toContain('__shared__ PatchUnit pu_s;');
    expect(c).not.toContain('pu_s = patch_unit(');
  });

  it('rowTable: key rows once per tile, both gathers read the table', () => {
    const c = tweaked(['rowTable']);
    expect(c).toContain('pk_s[buf][r] = j < pu.nk ? patch_key(pu, j) : -1;');
    expect(c).toContain('load_panel_gather_tab<D, BK>(Ks + buf * (BK * D), kg, pk_s[buf], tid);');
    expect(c).toContain('load_panel_gather_tab<DV, BK>(Vs + buf * (BK * DV), vg, pk_s[buf], tid);');
    expect(c).not.toContain('load_panel_gather<D, BK>(');
  });

  it('visitAll: patch units skip the classifier; blocksN sets the launch bound', () => {
    const c = tweaked(['visitAll', 'blocks3'], { blockQ: 64, threads: 128, blockK: 64, stages: 1 });
    expect(c).toContain('if (!pu.plain) { full = false; return true; }');
    expect(c).toContain('__launch_bounds__(THREADS, 3)');
  });

  it('boxMask: bit words in box units, the general mask in plain ones; implies unitRegs and rowTable', () => {
    const c = tweaked(['boxMask']);
    expect(c).toContain('patch_grid_box(patch_grid(');
    expect(c).toContain('pkb_s[buf][r] = PBOX ? patch_key_bits(pu, j, PRY, PRX) : 0u;');
    expect(c).toMatch(/if \(!\(\(PBOX \? \(\(pkb_s\[buf\]\[kk\] & pqm\[r\]\) == pqm\[r\]\) : \(e0\)\)\)\)/);
    expect(c).toContain('if (pu.plain) unit_body(Flag<false>{});');
    expect(c).toContain('const PatchUnit pu = patch_unit(pgrid, iu,');
    expect(c).toContain('load_panel_gather_tab<D, BK>(');
    // Another conjunct (or a score modifier) keeps the general mask: no bit words.
    const more = nbhd.replace('mask abs(', 'mask q >= k && abs(');
    expect(more).not.toBe(nbhd);
    const other = codeOf(more, { ...wg, patchTweaks: ['boxMask'] });
    expect(other).toContain('patch_unit(');
    expect(other).not.toContain('pkb_s');
  });
});

// The candidates bench/cuda/nbhd-list.mjs times, in one translation unit (D = 128, bf16).
describe('patch tweaks compile with nvcc', () => {
  it('the bench candidates: no warnings, no spills, no serialized wgmma', async () => {
    const listPath = '../../bench/cuda/nbhd-list.mjs';
    const list = (await import(listPath)) as { nbhdCandidates: [string, Partial<Schedule>][] };
    const cases = list.nbhdCandidates;
    expect(cases.length).toBeGreaterThan(5);
    const dir = scratchDir('patch-tweaks');
    const parts = cases.map(([id, schedule]) => {
      const kernel = kernelOf(nbhd, schedule);
      expect(kernel.schedule.patchTweaks, id).toEqual(schedule.patchTweaks);
      // No decode variant (mma.test.ts and decode.test.ts build it): the candidates' kernels alone.
      return renderCuda({ ...kernel, decodeVariant: false, name: `nbhd_${id}` }, meta).code;
    });
    const tu = join(dir, 'nbhd.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = ['-arch=sm_90a', '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
    const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'nbhd.cubin')]);
    expectOk(r, `nvcc ${tu}`);
    expect(r.stderr).not.toContain('C7520');
    const attention = [...spillsByFunction(r.stderr)].filter(([name]) => name.endsWith('_attention'));
    expect(attention.length).toBe(cases.length);
    for (const [name, s] of attention) expect(s, name).toEqual({ stores: 0, loads: 0 });
  }, 900_000);
});
