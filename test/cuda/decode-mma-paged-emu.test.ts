// The tensor-core decode kernel (src/codegen/cuda/decode-mma.ts) over paged bf16 caches on the CPU
// emulator (decode-mma-emu.ts's warp-level stand-ins): its tile fetch looks a thread's pages up
// once per run of rows (kv-rows.ts pagedTileFetch). Pages smaller than a thread's run (one lookup
// per row), between a run and a tile, and larger than a tile; pools in a random page order with
// NaN everywhere the block table does not address, the last page partly filled, GQA, ragged Nk and
// splits that end inside a tile. Every output must be bit-equal to the contiguous kernel's over
// the same keys (the same math, only the addresses differ), and agree with the reference.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MMA_EMU_MACRO, MMA_SMEM_DECL } from '../../src/codegen/cuda/decode-mma.js';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { rng } from '../../src/runtime/inputs.js';
import { scatterKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { EMU_BLOCK_HELPERS, EMU_READ_FILE, withStandIns } from './decode-mma-emu.js';
import { compileEmulation, emulationSource } from './emu.js';
import { packedStridesCpp } from './emu-call.js';
import { expectOk, leanKnob, run, scratchDir } from './support.js';

const D = 64;
const seed0 = process.env.CI ? 20261204 : Math.floor(Math.random() * 2 ** 31);

interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nk: number;
  readonly splitKeys: number;
}

/** f32 → bf16 bits, round to nearest even (NaN stays NaN). */
const bf16Bits = (x: Float32Array): Uint16Array =>
  Uint16Array.from(new Uint32Array(Float32Array.from(x).buffer), (w) =>
    Number.isNaN(new Float32Array(Uint32Array.of(w).buffer)[0])
      ? 0x7fc0
      : (w + 0x7fff + ((w >>> 16) & 1)) >>> 16,
  );
const bf16Values = (bits: Uint16Array): Float32Array =>
  new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer);
const bytesOf = (x: Uint16Array | Int32Array): Uint8Array =>
  new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** A pool of HND pages [pages, Hkv, P, D] in a random order (spare pages and rows NaN), K and V sharing the table. */
function pagedLayout(c: Case, P: number, r: () => number): { layout: KvCacheLayout; length: number } {
  const maxPages = Math.ceil(c.Nk / P) + 1; // one page past Nk: never read
  const pool = c.B * maxPages + 2;
  const ids = Array.from({ length: pool }, (_, i) => i).sort(() => r() - 0.5);
  const blockTable = Int32Array.from({ length: c.B * maxPages }, (_, i) => ids[i]!);
  const page = c.Hkv * P * D;
  const strides = { batch: page, head: P * D, row: D };
  return { layout: { kind: 'paged', pageSize: P, strides, blockTable, maxPages }, length: pool * page };
}

/** Builds and runs the decode of `source` (paged when P > 0) on case c; returns the output bits. */
async function emulate(source: string, P: number, c: Case, seed: number, defines = ''): Promise<Uint16Array> {
  // ATTNC_DEC_MMA_LEAN exists where the lean code is emitted as a knob (decode-mma-lean.ts).
  const decodeLean = leanKnob(defines.includes('ATTNC_DEC_MMA_LEAN'));
  const { artifact, kernel, decl } = compile(source, {
    target: 'cuda',
    headDim: D,
    dtype: 'bf16',
    schedule: { engine: 'simt', decodeLean }, // the emulator runs the SIMT prefill; decode is what is tested
  });
  const layout = cudaLayout(kernel);
  const decode = decodeSource(kernel, layout, `attnc_${kernel.name}`);
  const ns = `attnc_${kernel.name}`;
  const tag = defines ? `-${defines.replace(/\W+/g, '_')}` : '';
  const dir = scratchDir(`decode-mma-paged-emu-${P}-${seed}${tag}`);
  const device = withStandIns(decode.split(DEVICE_END)[0]!, 'bf16')
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replace(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;');
  const r = rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (Math.floor(r() * 257) - 128) / 64);
  const qBits = bf16Bits(fill(c.B * c.H * D));
  const logical = {
    k: bf16Values(bf16Bits(fill(c.B * c.Hkv * c.Nk * D))),
    v: bf16Values(bf16Bits(fill(c.B * c.Hkv * c.Nk * D))),
  };
  const n: KvSizes = { B: c.B, Hkv: c.Hkv, Nk: c.Nk, W: D };
  const paged = P > 0 ? pagedLayout(c, P, r) : undefined;
  for (const t of ['k', 'v'] as const) {
    let cache = logical[t];
    if (paged) {
      cache = new Float32Array(paged.length).fill(Number.NaN);
      scatterKv(logical[t], cache, paged.layout, n);
    }
    writeFileSync(join(dir, `${t}.bin`), bytesOf(bf16Bits(cache)));
  }
  writeFileSync(join(dir, 'q.bin'), bytesOf(qBits));
  const table = paged?.layout.kind === 'paged' ? paged.layout.blockTable : new Int32Array(1);
  writeFileSync(join(dir, 'table.bin'), bytesOf(table));
  const fld = (key: string) => layout.field(key);
  const packed = c.H / c.Hkv;
  const rowTiles = Math.ceil(packed / 4);
  const rowGroups = Math.ceil(packed / 16);
  const nSplits = Math.ceil(c.Nk / c.splitKeys);
  const kvLen = paged ? paged.length : c.B * c.Hkv * c.Nk * D;
  const pagedArgs =
    paged?.layout.kind === 'paged'
      ? [
          `a.k_stride_b = a.v_stride_b = ${paged.layout.strides.batch}; a.k_stride_h = a.v_stride_h = ${P * D}; a.k_stride_n = a.v_stride_n = ${D};`,
          `a.${fld('block_table')} = (const int*)rd("${join(dir, 'table.bin')}", ${table.length * 4}); a.${fld('max_pages')} = ${paged.layout.maxPages};`,
        ]
      : [];
  const main = `
#define ${MMA_EMU_MACRO} 1
${EMU_BLOCK_HELPERS}
${device}
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  ${EMU_READ_FILE}
  a.${fld('q')} = rd("${join(dir, 'q.bin')}", ${qBits.length * 2});
  a.${fld('k')} = rd("${join(dir, 'k.bin')}", ${kvLen * 2});
  a.${fld('v')} = rd("${join(dir, 'v.bin')}", ${kvLen * 2});
  std::vector<uint16_t> out(${c.B * c.H * D}, 0xffff);
  std::vector<float> lse(${c.B * c.H}, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  a.B = ${c.B}; a.H = ${c.H}; a.Hkv = ${c.Hkv}; a.Nq = 1; a.Nk = ${c.Nk};
  a.q_offset = ${c.Nk - 1}; a.k_offset = 0; a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(kernel, 'a')}
  ${pagedArgs.join('\n  ')}
  std::vector<float> part((size_t)${c.B * c.Hkv * rowTiles * nSplits} * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{${nSplits * rowGroups}, ${c.Hkv}, ${c.B}}, dec::MMA_THREADS, dec::MMA_SMEM, [&] { dec::mma_split_kernel(a, part.data(), ${c.splitKeys}, ${nSplits}, ${rowTiles}); });
  emu::launch(dim3{1, ${c.H}, ${c.B}}, 128, ${nSplits * 4}, [&] { dec::merge_kernel(a, part.data(), ${nSplits}, ${rowTiles}); });
  FILE* f = fopen("${join(dir, 'out.bin')}", "wb"); fwrite(out.data(), 2, out.size(), f); fclose(f);
  return 0;
}
`;
  const base = emulationSource(artifact, kernel);
  const src = join(dir, 'decode.emu.cpp');
  // Knob overrides go first: the prelude's #ifndef defaults (kv-rows.ts) then keep them.
  writeFileSync(src, `${defines}\n` + base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  expectOk(await run(exe, []), exe);
  const raw = readFileSync(join(dir, 'out.bin'));
  const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  // The reference over the logical caches (one query at the last position: causal = full).
  const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: 1, Nk: c.Nk };
  const pred = declPredicates(decl.decl, { params: {}, tensors: {}, sizes: { ...sizes, D } });
  const inputs = {
    q: bf16Values(qBits),
    ...logical,
    ...sizes,
    Hq: c.H,
    D,
    Dv: D,
    qOffset: c.Nk - 1,
    kOffset: 0,
  };
  const ref = referenceAttention(inputs, pred);
  const o = compareArrays(bf16Values(bits), ref.out, ref.outScale, ref.outNaNAllowed);
  const where = `P ${P} ${JSON.stringify(c)} seed ${seed}`;
  expect(o.nanCount, where).toBe(0);
  expect(o.relError, where).toBeLessThanOrEqual(1e-2);
  return bits;
}

const causal = readFileSync(join('stdlib', 'causal.attn'), 'utf8');
const pagedSource = (P: number) =>
  readFileSync(join('stdlib', 'paged-decode.attn'), 'utf8').replace('cache paged 16', `cache paged ${P}`);

describe(`the tensor-core decode over paged bf16 caches on the CPU emulator (seed ${seed0})`, () => {
  // D = 64: a thread copies runs of 4 rows of a 128-key tile (8 warps x 16 keys).
  const pages: [string, number, string][] = [
    ['pages of 2, smaller than a run (a lookup per row)', 2, ''],
    ['pages of 16, between a run and a tile', 16, ''],
    ['pages of 256, larger than a tile', 256, ''],
    ['pages of 16, the per-copy lookup (ATTNC_KV_PAGE_RUNS 0)', 16, '#define ATTNC_KV_PAGE_RUNS 0'],
    // The default addresses a run inside one page from one base; 0 sends every row through row().
    ['pages of 16, every row through row() (ATTNC_KV_PAGE_BASE 0)', 16, '#define ATTNC_KV_PAGE_BASE 0'],
    ['pages of 16, each fetch its own lookups (ATTNC_KV_PAGE_ONCE 0)', 16, '#define ATTNC_KV_PAGE_ONCE 0'],
    // The lean code is exact (decode-mma-lean.ts): bit-equal to the default contiguous kernel.
    ['pages of 16, the lean per-step code (ATTNC_DEC_MMA_LEAN 3)', 16, '#define ATTNC_DEC_MMA_LEAN 3'],
  ];
  const r = rng(seed0);
  const cases: Case[] = [
    { B: 2, H: 8, Hkv: 2, Nk: 301 + Math.floor(r() * 60), splitKeys: 99 }, // splits end inside tiles and runs
    { B: 1, H: 4, Hkv: 1, Nk: 517 + Math.floor(r() * 200), splitKeys: 390 }, // through the pipeline
  ];
  const contiguous = new Map<number, Promise<Uint16Array>>(); // per case, shared by the page sizes
  for (const [label, P, defines] of pages)
    it(`${label}: bit-equal to the contiguous kernel, agrees with the reference`, async () => {
      for (const [i, c] of cases.entries()) {
        const seed = seed0 + 31 * i;
        if (!contiguous.has(i)) contiguous.set(i, emulate(causal, 0, c, seed));
        const paged = await emulate(pagedSource(P), P, c, seed, defines);
        expect(Array.from(paged), `P ${P} ${JSON.stringify(c)}`).toEqual(
          Array.from(await contiguous.get(i)!),
        );
      }
    }, 900_000);
});
