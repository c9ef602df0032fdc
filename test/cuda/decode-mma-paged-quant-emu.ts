// The CPU emulation of the tensor-core decode kernel over paged quantized caches (decode-mma-paged.ts,
// decode-mma-tokint.ts): pools of pages in a random order (runtime/kv-quant-pages.ts: every element
// no token addresses poisoned), the kernel's device code with decode-mma-emu.ts's stand-ins, merged
// by decode.ts's merge kernel, against the float64 reference of the contiguous caches.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { MMA_EMU_MACRO, MMA_SMEM_DECL } from '../../src/codegen/cuda/decode-mma.js';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaCacheParts } from '../../src/codegen/cuda/dequant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { EMU_BLOCK_HELPERS, EMU_READ_FILE, withQuantStandIns } from './decode-mma-emu.js';
import { compileEmulation, emulationSource } from './emu.js';
import { packedStridesCpp } from './emu-call.js';
import { expectOk, leanKnob, run, scratchDir } from './support.js';

export interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly splitKeys: number;
}

const D = 128;
export const seed0 = process.env.CI ? 20261204 : Math.floor(Math.random() * 2 ** 31);
const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const fromBf16 = (b: Uint16Array): Float32Array =>
  new Float32Array(Uint32Array.from(b, (x) => x << 16).buffer);
const bf16Bits = (x: Float32Array): Uint16Array =>
  Uint16Array.from(
    new Uint32Array(Float32Array.from(x).buffer),
    (w) => (w + 0x7fff + ((w >>> 16) & 1)) >>> 16,
  );

/** A block table over a shuffled pool with spare pages (one past Nk per batch, two unused). */
function randomPages(c: Case, P: number, r: () => number): QuantPages {
  const maxPages = Math.ceil(c.Nk / P) + 1;
  const pages = c.B * maxPages + 2;
  const ids = Array.from({ length: pages }, (_, i) => i).sort(() => r() - 0.5);
  return {
    pageSize: P,
    maxPages,
    pages,
    blockTable: Int32Array.from({ length: c.B * maxPages }, (_, i) => ids[i]!),
  };
}

export async function emulate(
  tag: string,
  store: string,
  P: number,
  c: Case,
  seed: number,
  mask = '',
  lean = 0, // ATTNC_DEC_MMA_LEAN bits, the lean code emitted as a knob (decode-mma-lean.ts); 0: the default code
  defines = '', // more #define lines before the kernel
  expected = 'dm_fetch_code_pages<', // what the kernel must hold
  mutate: (device: string) => string = (d) => d, // a source edit (mutation tests)
): Promise<void> {
  const source = `attention qp${tag}() {\n  cache paged ${P}\n  ${store}\n  ${mask}\n}`;
  const comp = compile(source, {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype: 'bf16',
    schedule: { engine: 'simt', decodeLean: leanKnob(lean !== 0) },
  });
  const kernel = comp.kernel;
  const layout = cudaLayout(kernel);
  const full = decodeSource(kernel, layout, `attnc_${kernel.name}`);
  const ns = `attnc_${kernel.name}`;
  const fld = (key: string) => layout.field(key);
  const dir = scratchDir(`decode-mma-paged-quant-${tag}-${seed}`);
  const decode = full.split(DEVICE_END)[0]!;
  expect(decode, 'the paged quantized cache takes the tensor-core kernel').toContain(expected);
  const device = withQuantStandIns(mutate(decode))
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replaceAll(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;');
  const formats = checkedFormats(comp.decl);
  const rand = rng(seed);
  const stored = randomStoredInputs(formats, { ...c, D, Dv: D }, rand);
  const q = new Float32Array(c.B * c.H * c.Nq * D).map(() => rand() * 2 - 1);
  const qBits = bf16Bits(q);
  const pages = randomPages(c, P, rand);
  const sizes = { B: c.B, Hkv: c.Hkv, Nk: c.Nk, D };
  const inputs: [string, ArrayBufferView][] = [
    ['q', qBits],
    ['block_table', pages.blockTable],
  ];
  for (const which of ['k', 'v'] as const) {
    const pool = pageQuantCache(formats[which]!, stored.caches[which]!, sizes, pages);
    const held = (name: string): ArrayBufferView => {
      const x = pool[name as keyof QuantCache]!;
      return ArrayBuffer.isView(x) ? x : x.data;
    };
    inputs.push([which, held('codes')]);
    for (const { part } of cudaCacheParts(formats[which]!))
      inputs.push([`cache:${which}_${part}`, held(part)]);
  }
  const reads = inputs.map(([key, data], i) => {
    const path = join(dir, `in${i}.bin`);
    writeFileSync(path, bytesOf(data));
    return `a.${fld(key)} = reinterpret_cast<decltype(a.${fld(key)})>(rd("${path}", ${data.byteLength}));`;
  });
  const packed = (c.H / c.Hkv) * c.Nq;
  const rowTiles = Math.ceil(packed / 4);
  // Row groups of MMA_ROWS packed rows (16, or 8 in the key-major kernel): the host's count.
  const rowGroups = `((${packed} + dec::MMA_ROWS - 1) / dec::MMA_ROWS)`;
  const nSplits = Math.ceil(c.Nk / c.splitKeys);
  const main = `
#define ${MMA_EMU_MACRO} 1
${lean ? `#define ATTNC_DEC_MMA_LEAN ${lean}` : ''}
${defines}
${EMU_BLOCK_HELPERS}
${device}
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  ${EMU_READ_FILE}
  ${reads.join('\n  ')}
  a.${fld('max_pages')} = ${pages.maxPages};
  std::vector<uint16_t> out(${c.B * c.H * c.Nq * D}, 0xffff);
  std::vector<float> lse(${c.B * c.H * c.Nq}, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  a.B = ${c.B}; a.H = ${c.H}; a.Hkv = ${c.Hkv}; a.Nq = ${c.Nq}; a.Nk = ${c.Nk};
  a.q_offset = ${c.Nk - c.Nq}; a.k_offset = 0; a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(kernel, 'a')}
  std::vector<float> part((size_t)${c.B * c.Hkv * rowTiles * nSplits} * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{${nSplits} * ${rowGroups}, ${c.Hkv}, ${c.B}}, dec::MMA_THREADS, dec::MMA_SMEM, [&] { dec::mma_split_kernel(a, part.data(), ${c.splitKeys}, ${nSplits}, ${rowTiles}); });
  emu::launch(dim3{${c.Nq}, ${c.H}, ${c.B}}, 128, ${nSplits * 4}, [&] { dec::merge_kernel(a, part.data(), ${nSplits}, ${rowTiles}); });
  FILE* f = fopen("${join(dir, 'out.bin')}", "wb"); fwrite(out.data(), 2, out.size(), f); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  const base = emulationSource(comp.artifact, kernel);
  const src = join(dir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  expectOk(await run(exe, []), exe);
  const raw = readFileSync(join(dir, 'out.bin'));
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const nOut = c.B * c.H * c.Nq * D;
  const out = fromBf16(new Uint16Array(buf, 0, nOut));
  const lse = new Float32Array(buf, nOut * 2, c.B * c.H * c.Nq);
  const empty = new Float32Array(0);
  const inp = {
    q: fromBf16(qBits),
    k: empty,
    v: empty,
    B: c.B,
    Hq: c.H,
    Hkv: c.Hkv,
    Nq: c.Nq,
    Nk: c.Nk,
    D,
    Dv: D,
  };
  const ref = referenceStoredDecl(
    comp.decl,
    inp,
    { params: {}, tensors: {}, sizes: { ...c, D } },
    stored.caches,
  );
  const what = `P ${P} ${store} ${mask} ${JSON.stringify(c)} seed ${seed}`;
  const o = compareArrays(out, ref.out, ref.outScale);
  const l = compareArrays(lse, ref.lse, 1);
  expect(o.nanCount, what).toBe(0);
  // As the packed kernel (decode-mma-quant-emu.test.ts): q̂ and p·s in f16, the output in bf16.
  expect(o.relError, what).toBeLessThanOrEqual(4e-3);
  expect(l.relError, what).toBeLessThanOrEqual(3e-5);
}
