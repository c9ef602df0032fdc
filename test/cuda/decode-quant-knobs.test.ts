// The quantized tiles' own knobs of the tensor-core decode kernel (decode-mma-quant.ts's
// quantTileKnobs: warps, keys, stages, register cap): unset they stand for the shared knobs, so a 16-bit float kernel in the same
// translation unit (a staged kernel's float twin) keeps its own; a default that would not fit
// 227 KiB of shared memory is not taken.
import { describe, expect, it } from 'vitest';
import { quantTileKnobs } from '../../src/codegen/cuda/decode-mma-quant.js';
import { compile } from '../../src/compile.js';

const defineOf = (lines: readonly string[], name: string): string | undefined =>
  lines.find((l) => l.startsWith(`#define ATTNC_DEC_MMA_${name} `))?.split(' ')[2];

describe('quantized tile knobs of the tensor-core decode kernel', () => {
  it('default to the shared knobs, or to fitting defaults of their own', () => {
    const shared = quantTileKnobs(128, 128, false, {});
    expect(['QWARPS', 'QKEYS', 'QSTAGES', 'QMIN_BLOCKS'].map((n) => defineOf(shared, n))).toEqual([
      'ATTNC_DEC_MMA_WARPS',
      'ATTNC_DEC_MMA_KEYS',
      'ATTNC_DEC_MMA_STAGES',
      'ATTNC_DEC_MMA_MIN_BLOCKS',
    ]);
    const own = quantTileKnobs(128, 128, false, { WARPS: 4, STAGES: 6 });
    expect(['QWARPS', 'QKEYS', 'QSTAGES'].map((n) => defineOf(own, n))).toEqual([
      '4',
      'ATTNC_DEC_MMA_KEYS',
      '6',
    ]);
    // 8 warps x 16 keys x 6 stages x 312 bytes = 234 KiB: not taken.
    expect(defineOf(quantTileKnobs(128, 128, false, { STAGES: 6 }), 'QSTAGES')).toBe('ATTNC_DEC_MMA_STAGES');
  });

  // Round 32's code-row fetch (one pointer a thread) is the default where it was timed faster:
  // KIVI caches (H200 call 67, with 16-byte scale copies), not int8 / fp8 (4-8% slower there).
  it('take the one-pointer code-row fetch for KIVI caches only', () => {
    expect(defineOf(quantTileKnobs(128, 128, true), 'FETCH_RUNS')).toBe('1');
    expect(defineOf(quantTileKnobs(128, 128, false), 'FETCH_RUNS')).toBe('0');
    const emitted = (store: string): string | undefined =>
      defineOf(
        compile(`attention f() {\n  ${store}\n}\n`, {
          target: 'cuda',
          headDim: 128,
          dtype: 'bf16',
        }).artifact.code.split('\n'),
        'FETCH_RUNS',
      );
    expect(emitted('store kv int8 scale f16 per token')).toBe('0');
    const kivi = (w: string, per: string) =>
      `store ${w} int4 scale f16 per ${per} group 32 zero f16 recent 128 f16`;
    expect(emitted(`${kivi('k', 'channel')}\n  ${kivi('v', 'token')}`)).toBe('1');
  });

  it('size the int8 kernel and leave the float twin of the same artifact on the shared knobs', () => {
    const c = compile('attention q8() {\n  store kv int8 scale f16 per token\n}\n', {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
    });
    const consts = c.artifact.code.split('\n').filter((l) => l.startsWith('constexpr int MMA_ROWS = '));
    expect(consts).toEqual([
      // 8 rows a block in the key-major kernel (decode-mma-km.ts), behind its switch.
      'constexpr int MMA_ROWS = (ATTNC_DEC_MMA_KM ? 8 : 16), MMA_WARPS = ATTNC_DEC_MMA_QWARPS, MMA_KEYS = ATTNC_DEC_MMA_QKEYS;',
      'constexpr int MMA_ROWS = 16, MMA_WARPS = ATTNC_DEC_MMA_WARPS, MMA_KEYS = ATTNC_DEC_MMA_KEYS;',
    ]);
    // The register cap too: -DATTNC_DEC_MMA_QMIN_BLOCKS=n reaches the int8 kernel's launch bounds only.
    const bounds = c.artifact.code
      .split('\n')
      .filter((l) => l.includes('mma_split_kernel(const Args'))
      .map((l) => /__launch_bounds__\(MMA_THREADS, (\w+)\)/.exec(l)?.[1]);
    // The int8 kernel twice: key-major and query-major, one of them compiled (ATTNC_DEC_MMA_KM).
    expect(bounds).toEqual([
      'ATTNC_DEC_MMA_QMIN_BLOCKS',
      'ATTNC_DEC_MMA_QMIN_BLOCKS',
      'ATTNC_DEC_MMA_MIN_BLOCKS',
    ]);
  });
});
