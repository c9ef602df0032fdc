// The WGSL runtime's K/V row arguments (src/runtime/kv-rows.ts through validateRun): what a run's
// `kvCache` sets (the stride and max_pages uniforms, each cache's length as its buffer's), and
// every bad argument refused before the GPU with a message naming it.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { packUniforms } from '../../src/runtime/uniforms.js';
import { InputError, validateRun, type RunInputs } from '../../src/runtime/validate.js';

const paged = compile('attention p() {\n  cache paged 4\n  mask causal\n}\n', { target: 'wgsl', headDim: 8 });
const coop = compile('attention c() {\n  mask causal\n}\n', {
  target: 'wgsl',
  headDim: 8,
  wgslEngine: 'coop',
});
const kivi = compile('attention kv() {\n  store kv int8 scale f32 per token\n  mask causal\n}\n', {
  target: 'wgsl',
  headDim: 8,
});
const sizes = { B: 2, H: 2, Hkv: 1, Nq: 3, Nk: 10 };
const D = 8;
/** A pool of 7 HND pages of 4 rows: [7, Hkv = 1, 4, 8]. */
const pool = new Float32Array(7 * 4 * D);
const table = Int32Array.from([6, 0, 3, 1, 2, 5]); // [B = 2, max_pages = 3]

const inputs = (extra: Partial<RunInputs>): RunInputs => ({
  q: new Float32Array(2 * 2 * 3 * D),
  k: pool,
  v: pool,
  ...sizes,
  ...extra,
});

function issues(artifact: Parameters<typeof validateRun>[0], i: RunInputs): readonly string[] {
  try {
    validateRun(artifact, i);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as InputError).issues;
  }
  return [];
}

describe('kvCache on WGSL runs', () => {
  it('a paged run: HND strides by default, max_pages, the pool bound whole', () => {
    const r = validateRun(paged.artifact, inputs({ kvCache: { blockTable: table, maxPages: 3 } }));
    expect(Object.fromEntries(r.kv.uniforms)).toEqual({
      max_pages: 3,
      k_stride_b: 32,
      k_stride_h: 32,
      k_stride_n: 8,
      v_stride_b: 32,
      v_stride_h: 32,
      v_stride_n: 8,
    });
    expect(r.shapes.get('k')).toEqual([pool.length]);
    expect(r.shapes.get('block_table')).toEqual([2, 3]);
    const u = new DataView(packUniforms(paged.artifact, r));
    const at = (name: string): number => paged.artifact.uniforms.find((f) => f.name === name)!.offset;
    expect(u.getUint32(at('max_pages'), true)).toBe(3);
    expect(u.getUint32(at('k_stride_n'), true)).toBe(8);
  });

  it('refuses what the kernel could not read, naming the argument', () => {
    expect(issues(paged.artifact, inputs({}))).toEqual([
      'kvCache.blockTable: a paged cache (pages of 4 rows) reads its keys through an Int32Array [B, maxPages] = [2, 3] of page ids (at least 6), got undefined',
    ]);
    expect(issues(paged.artifact, inputs({ kvCache: { blockTable: table.slice(0, 5) } }))).toContain(
      'kvCache.blockTable: a paged cache (pages of 4 rows) reads its keys through an Int32Array [B, maxPages] = [2, 3] of page ids (at least 6), got an Int32Array of 5',
    );
    // Longer is an engine's table made for a larger batch: its rows past B (-1s here) go unread.
    const longer = Int32Array.from([...table, -1, -1, -1]);
    expect(issues(paged.artifact, inputs({ kvCache: { blockTable: longer, maxPages: 3 } }))).toEqual([]);
    // A block table of another element type showed as its String(): 'got 6,0,3,1,2,5'.
    expect(
      issues(paged.artifact, inputs({ kvCache: { blockTable: Float32Array.from(table) as never } })),
    ).toEqual([
      'kvCache.blockTable: a paged cache (pages of 4 rows) reads its keys through an Int32Array [B, maxPages] = [2, 3] of page ids (at least 6), got Float32Array of 6 elements',
    ]);
    const stray = Int32Array.from([6, 0, 7, 1, 2, 5]);
    expect(issues(paged.artifact, inputs({ kvCache: { blockTable: stray } }))[0]).toContain(
      'block_table[0][2] = 7 is not a page of the cache',
    );
    const overlap = { batch: 32, head: 32, row: 4 };
    expect(issues(paged.artifact, inputs({ kvCache: { blockTable: table, k: overlap } }))).toEqual([
      'kvCache.k: the row stride 4 is smaller than a row (8 elements): rows would overlap',
    ]);
    // A strided (not paged) kernel: a capacity below Nk, a block table it does not take.
    const short = { batch: 9 * D, head: 9 * D, row: D };
    const strided = inputs({ k: new Float32Array(2 * 9 * D), v: new Float32Array(2 * 10 * D) });
    const got = issues(coop.artifact, { ...strided, kvCache: { k: short, blockTable: table } });
    expect(got).toContain(
      'kvCache.blockTable: this kernel reads packed rows; only `cache paged N` kernels take a block table',
    );
    expect(got.some((x) => x.startsWith('kvCache.k: its strides address') && x.includes('< Nk = 10'))).toBe(
      true,
    );
    // The coop engine loads vec4s: strides in whole vec4s.
    expect(issues(coop.artifact, { ...strided, kvCache: { k: { batch: 90, head: 90, row: 9 } } })).toContain(
      "kvCache.k: strides must be multiples of 4 elements, the kernel's vector loads (got batch 90, head 90, row 9)",
    );
  });

  it('names a kvCache field it does not take (an NHD cache read as HND without a word)', () => {
    // k [B, Nk, Hkv, D] described with the emitted module's / CUDA's field names: the runtime
    // ignored them and read the cache as packed HND rows of the same length.
    const nhd = { k_stride_b: 10 * D, k_stride_h: D, k_stride_n: D };
    const strided = inputs({ k: new Float32Array(2 * 10 * D), v: new Float32Array(2 * 10 * D) });
    expect(issues(coop.artifact, { ...strided, kvCache: nhd as never })).toEqual([
      'kvCache.k_stride_b: no such field (kvCache takes k, v, blockTable, maxPages; strides as k: { batch, head, row })',
      'kvCache.k_stride_h: no such field (kvCache takes k, v, blockTable, maxPages; strides as k: { batch, head, row })',
      'kvCache.k_stride_n: no such field (kvCache takes k, v, blockTable, maxPages; strides as k: { batch, head, row })',
    ]);
    expect(
      issues(paged.artifact, inputs({ kvCache: { blockTable: table, maxpages: 3 } as never })),
    ).toContain(
      'kvCache.maxpages: no such field (kvCache takes k, v, blockTable, maxPages); did you mean "maxPages"?',
    );
  });

  it('describes a maxPages of the wrong type as what it is', () => {
    // A string '3' read "expected an integer >= 1, got 3".
    expect(
      issues(paged.artifact, inputs({ kvCache: { blockTable: table, maxPages: '3' as never } })),
    ).toContain('kvCache.maxPages: expected an integer in [1, 2147483647], got string 3');
  });

  it('a quantized cache keeps its own layout: it takes no strides', () => {
    const got = issues(kivi.artifact, {
      ...inputs({}),
      kvCache: { k: { batch: 80, head: 80, row: 8 } },
    });
    expect(got).toContain(
      'kvCache.k: k is a quantized cache, read at its own packed layout; it takes no strides',
    );
    expect(kivi.artifact.uniforms.some((f) => f.name.includes('stride'))).toBe(false);
  });
});
