// The CUDA `quantize` kernels of a paged quantized cache (`cache paged P` + `store`), executed on
// the CPU (quantize-emu.ts): a decoder appends tokens in steps into pools of pages in a random
// order through the block table; after every step the pools equal src/quant's `quantize` of the
// tokens so far, scattered by pageQuantCache, bit for bit (so the paged attention reads what the
// contiguous quantize writes: test/cuda/paged-quant-emu.test.ts). Every element type of the
// registry, every granularity, partly filled pages, salient tokens, recent windows; a page id
// outside the pools writes nothing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { quantizeSpecs } from '../../src/codegen/cuda/quantize-host.js';
import { quantizeFields, type QuantizeSpec } from '../../src/codegen/cuda/quantize.js';
import type { CacheSizes, QuantCache } from '../../src/quant/layout.js';
import { pagedRows } from '../../src/quant/paged-layout.js';
import { randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import type { QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { scratchDir } from '../cuda/support.js';
import { valueArb } from './arbitrary.js';
import {
  appendRange,
  emptyPool,
  expectedPool,
  firstTokens,
  marksAt,
  pageable,
  pagedFormatArb,
  randomPages,
} from './paged-quantize-support.js';
import { buildQuantizeEmulation, callBuffers, runQuantize, type QuantizeBuffers } from './quantize-emu.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/runtime/f16.js';

const seed = process.env.CI ? { seed: 20261204 } : {};

function expectSame(got: QuantizeBuffers, want: QuantizeBuffers, what: string): void {
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    const bad = w.findIndex((b, i) => g[i] !== b);
    expect({ what, tensor: name, firstDifferentByte: bad }).toEqual({
      what,
      tensor: name,
      firstDifferentByte: -1,
    });
  }
}

/** The pool tensors as struct fields (no x). */
const poolBuffers = (q: QuantCache): QuantizeBuffers => callBuffers(new Float32Array(0), q);

const cases = fc.record({
  format: pagedFormatArb,
  P: fc.constantFrom(1, 2, 4, 8, 16),
  D: fc.integer({ min: 1, max: 24 }),
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  input: fc.constantFrom('f32' as const, 'f16' as const),
  values: fc.array(valueArb, { minLength: 1, maxLength: 24 }),
  steps: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 }),
  salt: fc.nat(),
});

describe('CUDA quantize into a paged cache (CPU emulation) equals quantize, paged, bit for bit', () => {
  const dir = scratchDir('quantize-paged');
  let run = 0;
  it('random formats, page sizes and page orders; appends in steps, partly filled pages', async () => {
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const id = run++;
        const format = pageable(c.format, c.P);
        const spec: QuantizeSpec = {
          kernel: 'q',
          cache: 'k',
          format,
          dim: c.D,
          input: c.input,
          paged: { pageSize: c.P },
        };
        const exe = await buildQuantizeEmulation(`${dir}/r${id}`, spec);
        const Nk = c.steps.reduce((a, b) => a + b, 0);
        const s: CacheSizes = { B: c.B, Hkv: c.Hkv, Nk, D: c.D };
        const r = rng(c.salt + 1);
        const pages = randomPages(c.B, Nk, c.P, r);
        const salient = format.kind === 'int' && format.salient;
        const marks = salient ? randomSalientMarks(salient.by, s, r, Math.max(1, Nk >> 2), 0.3) : undefined;
        const f32 = Float32Array.from({ length: c.B * c.Hkv * Nk * c.D }, (_, i) => {
          const v = c.values[(i * 7 + c.salt) % c.values.length]!;
          return v * (1 + ((i * 13) % 5) / 4);
        });
        const raw = c.input === 'f32' ? f32 : new Uint16Array(f32.map(f32ToF16Bits));
        const exact = c.input === 'f32' ? f32 : new Float32Array([...(raw as Uint16Array)].map(f16BitsToF32));
        let pool = poolBuffers(emptyPool(format, s, pages, marks));
        let N0 = 0;
        for (const [j, step] of c.steps.entries()) {
          const N1 = N0 + step;
          const { start, n } = appendRange(format, N0, N1);
          const m = marksAt(marks, s, N1);
          const got = await runQuantize(
            exe,
            `${dir}/r${id}/s${j}`,
            {
              ...pool,
              x: bytes(firstTokens(raw, s, N1)),
              block_table: bytes(pages.blockTable),
              ...(m ? { salient: bytes(m.data) } : {}),
            },
            {
              B: c.B,
              Hkv: c.Hkv,
              Nk: N1,
              start,
              n,
              salientN: m?.n ?? 0,
              maxPages: pages.maxPages,
              pages: pages.pages,
            },
          );
          const want = poolBuffers(expectedPool(format, exact, s, N1, pages, marks));
          expectSame(got, want, `step ${j}: Nk ${N0} -> ${N1}, rows [${start}, +${n}), P ${c.P}`);
          pool = Object.fromEntries(Object.keys(want).map((k) => [k, got[k]!]));
          N0 = N1;
        }
      }),
      { numRuns: 12, endOnFailure: true, ...seed },
    );
  }, 600_000);

  it('rows whose page id is outside the pools are skipped: nothing is written outside them', async () => {
    const c = compile('attention p() {\n  cache paged 4\n  store kv int8 scale f16 per token\n}', {
      target: 'cuda',
      headDim: 8,
      valueDim: 8,
      dtype: 'f32',
    });
    const spec = quantizeSpecs(c.kernel)[0]!;
    expect(spec.paged).toEqual({ pageSize: 4 });
    const exe = await buildQuantizeEmulation(`${dir}/bad`, spec);
    const s: CacheSizes = { B: 1, Hkv: 1, Nk: 8, D: 8 };
    // Sequence page 0 → pool page 1; page 1 → id 7, outside a pool of 2 pages.
    const pages: QuantPages = { pageSize: 4, maxPages: 2, pages: 2, blockTable: Int32Array.from([1, 7]) };
    const good: QuantPages = { ...pages, pages: 3, blockTable: Int32Array.from([1, 2]) };
    const x = Float32Array.from({ length: 64 }, (_, i) => (i % 11) - 5);
    const before = emptyPool(spec.format, s, pages, undefined);
    const got = await runQuantize(
      exe,
      `${dir}/bad/run`,
      { ...poolBuffers(before), x: bytes(x), block_table: bytes(pages.blockTable) },
      { B: 1, Hkv: 1, Nk: 8, start: 0, n: 8, maxPages: 2, pages: 2 },
    );
    // Page 1 holds tokens 0..3 exactly as a good table writes them; page 0 stays poisoned.
    const want = poolBuffers(expectedPool(spec.format, x, s, 8, good, undefined));
    for (const name of ['codes', 'scale'] as const) {
      const rows = pagedRows(spec.format, name, 8, 4)!;
      const perPage = rows.rowLen * (4 / rows.tokensPerRow) * (name === 'codes' ? 4 : 2); // bytes, Hkv = 1
      expect(got[name]!.slice(perPage, 2 * perPage)).toEqual(want[name]!.slice(perPage, 2 * perPage));
      expect(got[name]!.slice(0, perPage)).toEqual(poolBuffers(before)[name]!.slice(0, perPage));
    }
  }, 120_000);

  it('the header declares the paged args: block table, max_pages, pages and the pool shapes', () => {
    const c = compile(
      'attention p() {\n  cache paged 16\n  store k int4 scale f16 per channel group 8 zero f16\n}',
      {
        target: 'cuda',
        headDim: 64,
        valueDim: 64,
        dtype: 'f16',
      },
    );
    const [spec] = quantizeSpecs(c.kernel);
    const fields = quantizeFields(spec!).join('\n');
    expect(fields).toContain('const int* block_table; /* i32 [B, max_pages]');
    expect(fields).toContain('unsigned int* codes; /* u32 [pages, Hkv, 16, 8] pool */');
    expect(fields).toContain('int max_pages, pages;');
    expect(c.artifact.files!['p.h']).toContain('const int* block_table;');
    expect(c.artifact.code).toContain('constexpr int PAGE = 16;');
    expect(c.artifact.code).toMatch(/max_pages=%d pages of 16 rows hold fewer than Nk=%d tokens/);
  });
});

function bytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
