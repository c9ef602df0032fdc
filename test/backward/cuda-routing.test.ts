// The CUDA SIMT backward of routing/selection kernels (issue 14 item 2), executed by the CPU
// emulator against the float64 gradient reference under the mask `static && selected`: the
// selection is the routing oracle's, fed to both sides as a constant (cuda-check.ts says why).
// Block routing (raw and pooled queries, votes, forced ids, GQA), token selection (vote heads),
// `from` and chunks, with Nq ≠ Nk, offsets and gradients into lse; one block every row selects
// and an empty selection (bwd_dkdv's inverted lists); `emit` keeps the static backward; the tensor-core engines refuse routing kernels, naming the SIMT engine.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compileBackward,
  compileCudaBackward,
  compileCudaBackwardMma,
  compileCudaBackwardWgmma,
  cudaBackwardBeside,
} from '../../src/backward.js';
import { expectOk, run, scratchDir, quickCheckFlags } from '../cuda/support.js';
import type { Shape } from '../support/arbitraries.js';
import { checkCudaBackward as check } from './cuda-check.js';

const TOL = 2e-5;
const shape = (s: Partial<Shape>): Shape => ({ B: 1, Hq: 2, Hkv: 1, Nq: 13, Nk: 21, D: 16, Dv: 8, ...s });

const expectSmall = (errors: Record<string, number>, where: string): void => {
  expect(Object.keys(errors)).toEqual(expect.arrayContaining(['dq', 'dk', 'dv']));
  for (const [name, e] of Object.entries(errors)) expect(e, `${name} ${where}`).toBeLessThanOrEqual(TOL);
};

const nsa = `attention nsa(top: int = 2) {
  route blocks(4) topk(top) by q . mean(k) vote groups force first(1) local(1)
  mask causal
}`;
const biformer = 'attention bif(top: int = 2) {\n  route blocks(4) topk(top) by mean(q) . mean(k)\n}';
// With a learnable temperature: its gradient (a partials slot) comes through the selected pairs only.
const tokens = `attention tok(budget: int = 5, temp: f32 = 1.5) {
  select topk(budget) by q . k vote heads
  score score / temp
  mask causal
}`;
const reuse = `attention reuse(budget: int = 4, idx: i32[batch, kv_heads, queries, budget]) {
  select from idx
  mask causal
}`;
const dhsa = `attention dh(chunk: i32[kv], top: int = 2) {
  route chunks(chunk) topk(top) by lnmean(q) . lnmean(k) force local(1)
  mask causal
}`;

/** A `from` tensor [B, Hkv, Nq, 4]: key positions in any order, repeats and −1 holes included. */
function fromIndices(s: Shape): { data: Int32Array; shape: number[] } {
  const n = s.B * s.Hkv * s.Nq * 4;
  const kOffset = s.kOffset ?? 0;
  const data = Int32Array.from({ length: n }, (_, i) =>
    (i * 7919) % 11 === 3 ? -1 : kOffset + ((i * 37) % s.Nk),
  );
  return { data, shape: [s.B, s.Hkv, s.Nq, 4] };
}

/** Chunk ids of Nk key positions: non-decreasing runs of 1 to 5 keys. */
const chunkIds = (nk: number): { data: Int32Array; shape: number[] } => {
  const data = new Int32Array(nk);
  for (let p = 1, id = 0, run = 0; p < nk; p++) data[p] = run++ >= 1 + ((p * 3) % 5) ? ((run = 0), ++id) : id;
  return { data, shape: [nk] };
};

describe('CUDA SIMT backward of routing/selection kernels (CPU emulation) vs the float64 reference', () => {
  it('blocks: raw queries, vote groups, forced first/local, causal, GQA, a gradient into lse', async () => {
    expectSmall(await check(nsa, shape({ Hq: 4, Hkv: 2, Nq: 13, Nk: 22 }), 7, { dlse: true }), 'nsa');
  }, 120_000);

  it('blocks: pooled query units (BiFormer), Nq ≠ Nk, offsets', async () => {
    expectSmall(await check(biformer, shape({ Nq: 11, Nk: 19, qOffset: 6, kOffset: 2 }), 3), 'biformer');
  }, 120_000);

  it('tokens: select with vote heads, a temperature, a gradient into lse', async () => {
    const errors = await check(tokens, shape({ Hq: 3, Hkv: 1, B: 2 }), 5, { dlse: true });
    expect(Object.keys(errors)).toContain('d$temp');
    expectSmall(errors, 'tokens');
  }, 120_000);

  it('from: a given index tensor (tidal_reuse), sorted and deduplicated by the forward', async () => {
    const s = shape({ Hq: 4, Hkv: 2, Nq: 9, Nk: 17, kOffset: 1, qOffset: 10 });
    expectSmall(await check(reuse, s, 9, { tensors: { idx: fromIndices(s) } as never }), 'from');
  }, 120_000);

  it('chunks (DHSA): pooled by chunk ids, forced local chunk', async () => {
    const s = shape({ Nq: 12, Nk: 20 });
    expectSmall(await check(dhsa, s, 13, { tensors: { chunk: chunkIds(20) } as never, dlse: true }), 'dhsa');
  }, 120_000);

  it('one block selected by every row: pooled query units, GQA, vote heads, a forced first block', async () => {
    // G = 1: every query head of both kv heads reads one list per id, and block 0's holds all 24 rows.
    const shared = `attention shared(top: int = 1) {
  route blocks(4) topk(top) by mean(q) . mean(k) vote heads force first(1)
  mask causal
}`;
    const s = shape({ Hq: 4, Hkv: 2, Nq: 24, Nk: 26, qOffset: 2 });
    expectSmall(await check(shared, s, 21, { dlse: true }), 'shared');
  }, 120_000);

  it('an empty selection (every row −1): no list, every gradient 0', async () => {
    const s = shape({ Hq: 2, Hkv: 2, Nq: 7, Nk: 9 });
    const none = { data: new Int32Array(s.B * s.Hkv * s.Nq * 4).fill(-1), shape: [s.B, s.Hkv, s.Nq, 4] };
    expectSmall(await check(reuse, s, 2, { tensors: { idx: none } as never }), 'empty');
  }, 120_000);

  it('emit: the attention is not restricted, so its backward is the static one (no indices)', async () => {
    const emit =
      'attention em(budget: int = 3) {\n  emit topk(budget) by q . k vote groups\n  mask causal\n}';
    const c = compileCudaBackward(emit, { headDim: 16, valueDim: 8 });
    expect(c.backward.fields.map((f) => f.name)).not.toContain('indices');
    expectSmall(await check(emit, shape({ Hq: 2, Hkv: 2 }), 4), 'emit');
  }, 120_000);
});

describe('which backward takes a routing kernel', () => {
  const stdlib = readFileSync('stdlib/nsa_select.attn', 'utf8');
  const simt = /the SIMT backward does \(--backward-engine simt\)/;

  it('the tensor-core engines refuse it, naming the SIMT engine; the default falls back to SIMT', () => {
    expect(() => compileCudaBackwardMma(stdlib, { dtype: 'bf16', headDim: 64 })).toThrow(simt);
    expect(() => compileCudaBackwardWgmma(stdlib, { dtype: 'bf16', headDim: 64 })).toThrow(simt);
    const asked = cudaBackwardBeside(stdlib, { headDim: 64 }, { dtype: 'bf16', engine: 'wgmma' });
    expect(asked.manifest).toMatchObject({ available: false, reason: expect.stringMatching(simt) });
    const chosen = cudaBackwardBeside(stdlib, { headDim: 64 }, { dtype: 'bf16', arch: 'sm_90a' }).manifest;
    expect(chosen).toMatchObject({ available: true, engine: 'simt', dtype: 'f32' });
    if (chosen.available) expect(chosen.fields.map((f) => f.name)).toContain('indices');
  });

  it("bwd_dkdv walks the inverted lists (bwd_invert, launched first), not every row's selection", () => {
    for (const [file, entry] of [['nsa_select'], ['tokenselect'], ['dhsa'], ['tidaldecode', 'tidal_reuse']]) {
      const source = readFileSync(`stdlib/${file}.attn`, 'utf8');
      const { code, namespace: ns } = compileCudaBackward(source, {
        headDim: 64,
        ...(entry ? { entry } : {}),
      }).backward;
      const dkdv = code.slice(code.indexOf('void __launch_bounds__(THREADS) bwd_dkdv('));
      expect(dkdv.slice(0, dkdv.indexOf('\n}\n'))).toContain(
        'for (int t = off[id_row]; t < off[id_row + 1]; ++t)',
      );
      expect(code, file).not.toContain('bwd_selected');
      expect(code).toContain(`extern "C" long long ${ns}_inverted(`);
      expect(code.indexOf('bwd_invert<<<')).toBeGreaterThan(0);
      expect(code.indexOf('bwd_invert<<<')).toBeLessThan(code.indexOf('bwd_dkdv<<<'));
    }
    const m = cudaBackwardBeside(stdlib, { headDim: 64 }, { dtype: 'bf16' }).manifest;
    expect(m).toMatchObject({ inverted: 'attnc_nsa_select_backward_inverted' });
  });

  it('the WGSL backward refuses it and says the CUDA SIMT backward takes it', () => {
    expect(() => compileBackward(stdlib, { headDim: 64 })).toThrow(
      /routing.*the CUDA SIMT backward takes them/,
    );
  });

  it('nvcc -arch=sm_90a accepts the stdlib routing backwards in one TU (warnings as errors)', async () => {
    const dir = scratchDir('bwd-routing-nvcc');
    const entries: [string, string?][] = [
      ['nsa_select'],
      ['biformer'],
      ['tokenselect'],
      ['tidaldecode', 'tidal_reuse'],
      ['tidaldecode', 'tidal_select'],
      ['dhsa'],
      ['cca'],
      ['landmark'],
      ['recycled', 'recycled_step'],
    ];
    const codes = entries.map(([file, entry]) => {
      const source = readFileSync(`stdlib/${file}.attn`, 'utf8');
      return compileCudaBackward(source, { headDim: 64, ...(entry ? { entry } : {}) }).backward.code;
    });
    const tu = join(dir, 'backward-routing.cu');
    writeFileSync(tu, codes.join('\n'));
    const flags = quickCheckFlags('sm_90a');
    expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
  }, 300_000);
});
