// Quantized K/V caches on the tensor-core engines (mma on sm_80, wgmma and wgmma-ws on sm_90a):
// every element type and format feature compiles with nvcc, warnings as errors, in the plain,
// residue-class (dilated) and patch (neighbourhood) tile loads and in wgmma-ws's producer, with a
// float V beside a quantized K (that one still by TMA). The converter's values are checked on the
// CPU emulator (tc-dequant-emu.test.ts); the engines' results on the GPU (bench/cuda/quant-prefill.py).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastConvertible } from '../../src/codegen/cuda/dequant-fast.js';
import { compile } from '../../src/compile.js';
import type { Engine } from '../../src/ir/kernel.js';
import { expectOk, run, scratchDir, writeArtifact, quickCheckFlags } from '../cuda/support.js';

interface Case {
  readonly engine: Engine;
  readonly store: string;
  /** The rest of the body (a mask); causal when absent. */
  readonly mask?: string;
  readonly headDim?: number;
  /** Schedule.wsDequant (wgmma-ws). */
  readonly wsDequant?: 'serial' | 'pipelined';
}

const dilated = 'mask causal && (q - k) % 3 == 0';
const neighbourhood = 'mask abs(q / 64 - k / 64) <= 2 && abs(q % 64 - k % 64) <= 2';

const cases: readonly Case[] = [
  { engine: 'mma', store: 'store kv int8 scale f32 per token' },
  {
    engine: 'mma',
    store:
      'store k int2 scale f16 per channel group 5 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  },
  { engine: 'mma', store: 'store k e4m3\n  store v e5m2 scale f16 per channel', headDim: 64 },
  { engine: 'mma', store: 'store kv int4 scale f16 per token group 8 zero f16', mask: dilated },
  { engine: 'mma', store: 'store kv int8 scale f16 per token', mask: neighbourhood },
  {
    engine: 'wgmma',
    store:
      'store k int4 scale f16 per channel group 3 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  },
  {
    engine: 'wgmma',
    store: 'store kv e4m3 scale f32 per token group 4 norm f32 recent 2 bf16',
    mask: dilated,
  },
  { engine: 'wgmma', store: 'store kv int8 scale f16 per token', mask: neighbourhood },
  { engine: 'wgmma-ws', store: 'store kv int8 scale f32 per token' },
  {
    engine: 'wgmma-ws',
    store: 'store kv int4 scale f32 per token group 8 norm f16 recent 3 bf16',
    mask: 'mask causal',
  },
  { engine: 'wgmma-ws', store: 'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal' },
  { engine: 'wgmma-ws', store: 'store k int8 scale f16 per token', headDim: 64 },
  // The fast converter (dequant-fast.ts) of the pipelined producer, and the serial producer.
  { engine: 'wgmma-ws', store: 'store kv e4m3 scale f32 per token' },
  { engine: 'wgmma-ws', store: 'store k int4 scale f16 per token\n  store v e5m2', mask: 'mask causal' },
  { engine: 'wgmma-ws', store: 'store k int2 scale f32 per tensor', headDim: 64 },
  { engine: 'wgmma-ws', store: 'store kv int8 scale f32 per token', wsDequant: 'serial' },
];

const source = (c: Case, i: number): string => {
  const params = c.store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  return `attention tc${i}(${params}) {\n  ${c.store}\n  ${c.mask ?? 'mask causal'}\n}`;
};

describe.concurrent('quantized K/V on the tensor-core engines (nvcc)', () => {
  const dir = scratchDir('tcquant-nvcc');
  cases.forEach((c, i) =>
    it(`${c.engine}: ${c.store.replace(/\n\s*/g, '; ')}${c.mask ? ` (${c.mask})` : ''}`, async () => {
      const compiled = compile(source(c, i), {
        target: 'cuda',
        headDim: c.headDim ?? 128,
        // The fused converters (staged prefill has its own tests: quant-stage-*.test.ts).
        schedule: {
          engine: c.engine,
          quantPrefill: 'fused',
          ...(c.wsDequant ? { wsDequant: c.wsDequant } : {}),
        },
      });
      expect(compiled.kernel.schedule.engine).toBe(c.engine);
      const code = compiled.artifact.code;
      // Every quantized cache goes through the converter, never a cp.async / TMA of its codes.
      expect(code).toContain('_dq<');
      if (c.engine === 'wgmma-ws' && c.wsDequant === 'serial') {
        expect(code).toContain('load_panel_dq<D, BK, 128>(Ks');
        expect(code).toContain('stage_codes<DqRowsK::WPR>(Cs, kq.codes_row(kt * BK), rows, ptid);');
      }
      if (c.engine === 'wgmma-ws' && c.wsDequant === undefined) {
        // Pipelined: two staging slots; the fast converter where every quantized cache allows it.
        const fast = fastConvertible(compiled.kernel.formats);
        expect(code).toContain(fast ? 'k_tile_fast<D, BK>(Ks' : 'load_panel_dq<D, BK, 128>(Ks');
        expect(code).toContain(
          'stage_codes<DqRowsK::WPR>(Cs + slot * CSLOT + 0, kq.codes_row(n * BK), rows, ptid);',
        );
        expect(code).toContain('stage(nx, slot ^ 1);');
      }
      if (c.engine === 'wgmma-ws') {
        const vQuant = compiled.kernel.formats.v.kind === 'quant';
        expect(code.includes('cannot describe v to the TMA unit')).toBe(!vQuant);
        expect(code).not.toContain('cannot describe k to the TMA unit');
      }
      const cu = writeArtifact(dir, compiled.artifact);
      const arch = c.engine === 'mma' ? 'sm_80' : 'sm_90a';
      const flags = quickCheckFlags(arch);
      expectOk(
        await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', cu, '-o', join(dir, `tc${i}.o`)]),
        `nvcc ${cu}`,
      );
    }, 600_000),
  );

  it("wgmma-ws's schedule leaves room for the staged code words", () => {
    const tiles = (store: string, wsDequant?: 'serial'): [number, number] => {
      // The fused path (staged prefill, the default, gives its tiles to the float twin).
      const fused = store ? { quantPrefill: 'fused' as const } : {};
      const schedule = wsDequant ? { wsDequant, ...fused } : fused;
      const c = compile(`attention t() {\n  ${store}\n}`, { target: 'cuda', headDim: 128, schedule });
      expect(c.kernel.schedule.engine).toBe('wgmma-ws');
      return [c.kernel.schedule.blockK, JSON.parse(c.artifact.files!['t.json']!).sharedBytes];
    };
    // Unmasked bf16 takes the dense default (FA3 consumers, 128-key tiles, since dense5); the plain
    // consumers' 176-key tile is what the fused path falls back from: int8 codes (64 words a key) do
    // not fit beside it.
    expect(tiles('')[0]).toBe(128);
    const [bk8, bytes8] = tiles('store kv int8 scale f32 per token');
    expect(bk8).toBe(128);
    // Two slots of codes (pipelined producer) and the two per-token scale rows.
    expect(bytes8).toBe(32768 + 2 * 2 * 128 * 128 * 2 + 5 * 8 + 1024 + 2 * 128 * 64 * 4 + 2 * 128 * 4 + 16);
    // int2 codes (8 words a key) do in one staging slot (the serial producer), not in two.
    expect(tiles('store kv int2 scale f16 per token zero f16', 'serial')[0]).toBe(176);
    expect(tiles('store kv int2 scale f16 per token zero f16')[0]).toBe(128);
  });

  it('a float kernel emits none of it', () => {
    const { artifact } = compile('attention f() {\n  mask causal\n}', { target: 'cuda', headDim: 128 });
    expect(artifact.code).not.toContain('_dq<');
    expect(artifact.code).toContain('cannot describe k to the TMA unit');
  });
});
