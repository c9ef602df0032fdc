// The CPU emulation of the tensor-core decode kernels (query-major and key-major) over quantized
// caches, packed or paged (int8 / fp8, decode-mma-quant.ts and decode-mma-paged.ts; KIVI,
// decode-mma-kivi.ts; per-token int4 / int2, decode-mma-tokint.ts): the kernel's device code built with the warp-level stand-ins of
// decode-mma-emu.ts, run and merged by decode.ts's merge kernel on random stored caches, against the
// float64 reference of the dequantized caches.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { MMA_EMU_MACRO, MMA_SMEM_DECL } from '../../src/codegen/cuda/decode-mma.js';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaCacheParts } from '../../src/codegen/cuda/dequant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import { readFloat, writeFloat } from '../../src/quant/floats.js';
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

/** What a KIVI cache's kernel holds: KIVI's pairs; the key-major kernel beside the query-major one, behind its switch. */
export const KIVI_KERNEL: readonly string[] = ['dk_kpair(', '#if ATTNC_DEC_MMA_KM'];

export interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly splitKeys: number;
  /** Scale tensors 2 bytes past a 4-byte boundary (the scale stream's plain-copy path). */
  readonly oddScales?: boolean;
  /** K scales times 2^-n (f16, rounded: subnormal ones too) and q times 2^n: tiny scales, S as large. */
  readonly kScaleShift?: number;
  /** The head dimension of q, k and v (128 unless given). */
  readonly D?: number;
}

/** Relative errors of out and lse against the reference, and the NaN count of out. */
export interface Errors {
  readonly out: number;
  readonly lse: number;
  readonly nans: number;
}

const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const bf16Bits = (x: Float32Array): Uint16Array =>
  Uint16Array.from(
    new Uint32Array(Float32Array.from(x).buffer),
    (w) => (w + 0x7fff + ((w >>> 16) & 1)) >>> 16,
  );
const fromBf16 = (b: Uint16Array): Float32Array =>
  new Float32Array(Uint32Array.from(b, (x) => x << 16).buffer);

/**
 * Paged caches (`cache paged P`): pools of pages in a random order (runtime/kv-quant-pages.ts:
 * every element no token addresses poisoned) read through a block table; `seed` seeds the inputs
 * and the page order; `defines`: more #define lines before the kernel.
 */
export interface Paging {
  readonly P: number;
  readonly seed: number;
  readonly defines?: string;
}

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

/**
 * `knobs`: ATTNC_DEC_* overrides (decode-knobs.ts) defined before the kernel; `mutate`: a source
 * edit; `expected`: what the kernel must hold; `paging`: the caches in pages (else packed).
 */
export async function emulate(
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
  mutate: (device: string) => string = (d) => d,
  expected: readonly string[] = KIVI_KERNEL,
  paging?: Paging,
): Promise<Errors> {
  const D = c.D ?? 128;
  const pagedLine = paging ? `cache paged ${paging.P}\n  ` : '';
  const source = `attention qm${tag}() {\n  ${pagedLine}${store}\n  ${mask}\n}`;
  const comp = compile(source, {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype,
    // MMA_LEAN (decode-mma-lean.ts) exists only where the lean code is emitted as a knob.
    schedule: { engine: 'simt', decodeLean: leanKnob('MMA_LEAN' in knobs) },
  });
  const kernel = comp.kernel;
  const ns = `attnc_${kernel.name}`;
  const layout = cudaLayout(kernel);
  const fld = (key: string) => layout.field(key);
  const dir = scratchDir(`decode-mma-packed-${tag}`);
  const decode = decodeSource(kernel, layout, ns).split(DEVICE_END)[0]!;
  for (const s of expected) expect(decode, `the tensor-core kernel of ${store}`).toContain(s);
  const device = withQuantStandIns(mutate(decode))
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replaceAll(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;'); // both KIVI kernels
  const formats = checkedFormats(comp.decl);
  const rand = rng(paging?.seed ?? c.Nk * 13 + c.H);
  const stored = randomStoredInputs(formats, { ...c, D, Dv: D }, rand);
  const qShift = 2 ** (c.kScaleShift ?? 0);
  const q = new Float32Array(c.B * c.H * c.Nq * D).map(() => (rand() * 2 - 1) * qShift);
  const ks = stored.caches.k!.scale!;
  for (let i = 0; c.kScaleShift && i < ks.data.length; ++i) writeFloat(ks, i, readFloat(ks, i) / qShift);
  const qBits = dtype === 'bf16' ? bf16Bits(q) : q;
  const qValues = dtype === 'bf16' ? fromBf16(qBits as Uint16Array) : q;
  const pages = paging && randomPages(c, paging.P, rand);
  const inputs: [string, ArrayBufferView][] = [['q', qBits]];
  if (pages) inputs.push(['block_table', pages.blockTable]);
  for (const which of ['k', 'v'] as const) {
    const cache = pages
      ? pageQuantCache(formats[which]!, stored.caches[which]!, { B: c.B, Hkv: c.Hkv, Nk: c.Nk, D }, pages)
      : stored.caches[which]!;
    const held = (name: string): ArrayBufferView => {
      const x = cache[name as keyof QuantCache]!;
      return ArrayBuffer.isView(x) ? x : x.data;
    };
    inputs.push([which, held('codes')]);
    for (const { part } of cudaCacheParts(formats[which]!))
      inputs.push([`cache:${which}_${part}`, held(part)]);
  }
  const reads = inputs.map(([key, data], i) => {
    const path = join(dir, `in${i}.bin`);
    const shift = c.oddScales && key.endsWith('_scale') ? 2 : 0;
    writeFileSync(path, Buffer.concat([Buffer.alloc(shift), bytesOf(data)]));
    const ptr = `static_cast<unsigned char*>(rd("${path}", ${data.byteLength + shift})) + ${shift}`;
    return `a.${fld(key)} = reinterpret_cast<decltype(a.${fld(key)})>(${ptr});`;
  });
  const packed = (c.H / c.Hkv) * c.Nq;
  const rowTiles = Math.ceil(packed / 4);
  // Row groups of MMA_ROWS packed rows (16, or 8 in the key-major KIVI kernel): the host's count.
  const rowGroups = `((${packed} + dec::MMA_ROWS - 1) / dec::MMA_ROWS)`;
  const nSplits = Math.ceil(c.Nk / c.splitKeys);
  const outBytes = dtype === 'bf16' ? 2 : 4;
  const main = `
#define ${MMA_EMU_MACRO} 1
${Object.entries(knobs)
  .map(([n, v]) => `#define ATTNC_DEC_${n} ${v}`)
  .join('\n')}
${paging?.defines ?? ''}
${EMU_BLOCK_HELPERS}
${device}
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  ${EMU_READ_FILE}
  ${reads.join('\n  ')}
  ${pages ? `a.${fld('max_pages')} = ${pages.maxPages};` : ''}
  std::vector<unsigned char> out((size_t)${c.B * c.H * c.Nq * D * outBytes}, 0xff);
  std::vector<float> lse(${c.B * c.H * c.Nq}, NAN);
  a.${fld('out')} = reinterpret_cast<decltype(a.${fld('out')})>(out.data());
  a.${fld('lse')} = lse.data();
  a.B = ${c.B}; a.H = ${c.H}; a.Hkv = ${c.Hkv}; a.Nq = ${c.Nq}; a.Nk = ${c.Nk};
  a.q_offset = ${c.Nk - c.Nq}; a.k_offset = 0; a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(kernel, 'a')}
  std::vector<float> part((size_t)${c.B * c.Hkv * rowTiles * nSplits} * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{${nSplits} * ${rowGroups}, ${c.Hkv}, ${c.B}}, dec::MMA_THREADS, dec::MMA_SMEM, [&] { dec::mma_split_kernel(a, part.data(), ${c.splitKeys}, ${nSplits}, ${rowTiles}); });
  emu::launch(dim3{${c.Nq}, ${c.H}, ${c.B}}, 128, ${nSplits * 4}, [&] { dec::merge_kernel(a, part.data(), ${nSplits}, ${rowTiles}); });
  FILE* f = fopen("${join(dir, 'out.bin')}", "wb"); fwrite(out.data(), 1, out.size(), f); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  const base = emulationSource(comp.artifact, kernel);
  const src = join(dir, 'decode-mma-packed.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode-mma-packed.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  expectOk(await run(exe, []), exe);
  const raw = readFileSync(join(dir, 'out.bin'));
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const nOut = c.B * c.H * c.Nq * D;
  const out = dtype === 'bf16' ? fromBf16(new Uint16Array(buf, 0, nOut)) : new Float32Array(buf, 0, nOut);
  const lse = new Float32Array(buf, nOut * outBytes, c.B * c.H * c.Nq);
  const empty = new Float32Array(0);
  const inp = { q: qValues, k: empty, v: empty, B: c.B, Hq: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D, Dv: D };
  const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D };
  const ref = referenceStoredDecl(comp.decl, inp, { params: {}, tensors: {}, sizes }, stored.caches);
  const o = compareArrays(out, ref.out, ref.outScale);
  const l = compareArrays(lse, ref.lse, 1);
  return { out: o.relError, lse: l.relError, nans: o.nanCount };
}

/**
 * The reference's bounds: q̂ (f32 q; KIVI's q̂_g = f16(q · s_g)) and p·s round to f16 (2^-11 each),
 * the output to bf16 where that is the dtype (2^-9); `expected`: what the kernel must hold.
 */
export async function agrees(
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
  expected: readonly string[] = KIVI_KERNEL,
  mutate: (device: string) => string = (d) => d,
): Promise<void> {
  const e = await emulate(tag, store, dtype, c, mask, knobs, mutate, expected);
  const what = `${store.replace(/\n\s*/g, '; ')} ${mask} ${dtype} ${JSON.stringify(c)} ${JSON.stringify(e)}`;
  expect(e.nans, what).toBe(0);
  // q̂_g and p·s round to f16 (2^-11 each), the output to bf16 where that is the dtype (2^-9).
  expect(e.out, what).toBeLessThanOrEqual(dtype === 'bf16' ? 4e-3 : 1e-3);
  expect(e.lse, what).toBeLessThanOrEqual(dtype === 'bf16' ? 3e-5 : 1e-3);
}
