// The tensor-core decode kernel (src/codegen/cuda/decode-mma.ts) executed on the CPU emulator
// through warp-level stand-ins for ldmatrix / mma.sync (decode-mma-emu.ts), then decode.ts's merge
// kernel, against the dense float64 reference: bf16 and f16, GQA groups of 1..8 query heads × Nq
// (one and several 16-row groups), ragged Nk, splits that end inside a tile and a warp's keys,
// splits longer than the pipeline, and the knobs (warps, keys per warp, stages).
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
import { fromF16, toF16 } from '../../src/runtime/f16.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { makeInputs } from '../support/arbitraries.js';
import { EMU_BLOCK_HELPERS, EMU_READ_FILE, withStandIns } from './decode-mma-emu.js';
import { compileEmulation, emulationSource } from './emu.js';
import { packedStridesCpp } from './emu-call.js';
import { expectOk, leanKnob, run, scratchDir } from './support.js';

interface MmaCase {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly splitKeys: number;
  readonly qOffset?: number;
  readonly kOffset?: number;
  /** Elements set to NaN before the run (docs/LANGUAGE.md "Non-finite values"). */
  readonly nan?: readonly { readonly tensor: 'q' | 'k' | 'v'; readonly index: number }[];
  readonly knobs?: Readonly<Record<'WARPS' | 'KEYS' | 'STAGES', number>>;
  /** ATTNC_DEC_MMA_LEAN bits (decode-mma-lean.ts), emitted as a knob; absent: the default code. */
  readonly lean?: 1 | 2 | 3;
}

const D = 64;
const bytesOf = (x: Float32Array | Uint16Array): Uint8Array =>
  new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** Round-to-nearest-even f32 → 16-bit storage bits and back (what the kernel reads). */
function storage(dtype: 'bf16' | 'f16', x: Float32Array): { bits: Uint16Array; values: Float32Array } {
  if (dtype === 'bf16') {
    const u = new Uint32Array(Float32Array.from(x).buffer);
    const bits = u.map((w) => (w + 0x7fff + ((w >>> 16) & 1)) >>> 16);
    return {
      bits: Uint16Array.from(bits),
      values: new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer),
    };
  }
  const bits = toF16(x);
  return { bits, values: fromF16(bits) };
}

async function emulate(dtype: 'bf16' | 'f16', c: MmaCase, file = 'full.attn'): Promise<void> {
  const source = readFileSync(join('stdlib', file), 'utf8');
  const { artifact, kernel, decl } = compile(source, {
    target: 'cuda',
    file,
    headDim: D,
    dtype,
    schedule: { engine: 'simt', decodeLean: leanKnob(c.lean !== undefined) },
  });
  const ns = `attnc_${kernel.name}`;
  const layout = cudaLayout(kernel);
  const dir = scratchDir(`decode-mma-emu-${dtype}`);
  const base = emulationSource(artifact, kernel);
  const knobs = Object.entries({ ...c.knobs, ...(c.lean ? { LEAN: c.lean } : {}) }).map(
    ([n, v]) => `#define ATTNC_DEC_MMA_${n} ${v}`,
  );
  const device = withStandIns(decodeSource(kernel, layout, ns).split(DEVICE_END)[0]!, dtype)
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replace(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;');
  const qOffset = c.qOffset ?? c.Nk - c.Nq;
  const kOffset = c.kOffset ?? 0;
  const shape = { B: c.B, Hq: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D, Dv: D, qOffset, kOffset };
  const raw = makeInputs(shape, c.Nk * 7 + c.H);
  for (const x of c.nan ?? []) raw[x.tensor][x.index] = NaN;
  const inputs = { ...raw };
  for (const n of ['q', 'k', 'v'] as const) {
    const s = storage(dtype, raw[n]);
    inputs[n] = s.values;
    writeFileSync(join(dir, `${n}.bin`), bytesOf(s.bits));
  }
  const packed = (c.H / c.Hkv) * c.Nq;
  const rowTiles = Math.ceil(packed / 4);
  const rowGroups = Math.ceil(packed / 16);
  const nSplits = Math.ceil(c.Nk / c.splitKeys);
  const fld = (key: string) => layout.field(key);
  const params = Object.fromEntries(decl.defaults);
  const main = `
#define ${MMA_EMU_MACRO} 1
${knobs.join('\n')}
${EMU_BLOCK_HELPERS}
${device}
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  ${EMU_READ_FILE}
  a.${fld('q')} = rd("${join(dir, 'q.bin')}", ${inputs.q.length * 2});
  a.${fld('k')} = rd("${join(dir, 'k.bin')}", ${inputs.k.length * 2});
  a.${fld('v')} = rd("${join(dir, 'v.bin')}", ${inputs.v.length * 2});
  std::vector<uint16_t> out(${c.B * c.H * c.Nq * D}, 0xffff);
  std::vector<float> lse(${c.B * c.H * c.Nq}, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  a.B = ${c.B}; a.H = ${c.H}; a.Hkv = ${c.Hkv}; a.Nq = ${c.Nq}; a.Nk = ${c.Nk};
  a.q_offset = ${qOffset}; a.k_offset = ${kOffset}; a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(kernel, 'a')}
  ${kernel.params.map((p) => `a.${fld(`param:${p.name}`)} = ${Number(params[p.name])};`).join('\n  ')}
  std::vector<float> part((size_t)${c.B * c.Hkv * rowTiles * nSplits} * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{${nSplits * rowGroups}, ${c.Hkv}, ${c.B}}, dec::MMA_THREADS, dec::MMA_SMEM, [&] { dec::mma_split_kernel(a, part.data(), ${c.splitKeys}, ${nSplits}, ${rowTiles}); });
  emu::launch(dim3{${c.Nq}, ${c.H}, ${c.B}}, 128, ${nSplits * 4}, [&] { dec::merge_kernel(a, part.data(), ${nSplits}, ${rowTiles}); });
  FILE* f = fopen("${join(dir, 'out.bin')}", "wb"); fwrite(out.data(), 2, out.size(), f); fclose(f);
  f = fopen("${join(dir, 'lse.bin')}", "wb"); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  const src = join(dir, 'decode-mma.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode-mma.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  expectOk(await run(exe, []), exe);
  const outRaw = readFileSync(join(dir, 'out.bin'));
  const bits = new Uint16Array(outRaw.buffer.slice(outRaw.byteOffset, outRaw.byteOffset + outRaw.byteLength));
  const out =
    dtype === 'bf16' ? new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer) : fromF16(bits);
  const lseRaw = readFileSync(join(dir, 'lse.bin'));
  const lse = new Float32Array(lseRaw.buffer.slice(lseRaw.byteOffset, lseRaw.byteOffset + lseRaw.byteLength));
  const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
  const pred = declPredicates(decl.decl, { params, tensors: {}, sizes: { ...sizes, D } });
  const ref = referenceAttention({ ...inputs, ...sizes, Hq: c.H, D, Dv: D, qOffset, kOffset }, pred);
  const o = compareArrays(out, ref.out, ref.outScale, ref.outNaNAllowed);
  const l = compareArrays(lse, ref.lse, 1);
  const where = `${file} ${dtype} ${JSON.stringify(c)}`;
  // A NaN in q poisons its row in the reference (the kernel must match it there, compareArrays).
  expect(Array.from(ref.out).some(Number.isNaN), where).toBe(c.nan?.some((x) => x.tensor === 'q') ?? false);
  expect(o.nanCount, where).toBe(0);
  // p rounds to the storage type before P·V (decode-mma.ts): bf16 ~ 2^-8 relative per weight.
  expect(o.relError, where).toBeLessThanOrEqual(dtype === 'bf16' ? 1e-2 : 2e-3);
  expect(l.relError, where).toBeLessThanOrEqual(1e-5);
}

describe('the tensor-core decode kernel on the CPU emulator agrees with the reference', () => {
  it('bf16: GQA 4 x Nq 1, ragged Nk, splits ending inside a tile', async () => {
    await emulate('bf16', { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 });
  }, 600_000);
  it('f16: several 16-row groups (GQA 8 x Nq 3), long splits through the pipeline', async () => {
    await emulate('f16', { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 517, splitKeys: 517 });
  }, 600_000);
  it('masks and score modifiers: causal (empty rows, skipped tiles), sliding window, softcap, alibi', async () => {
    // Rows before every key: out 0, lse -inf; tiles past every row's last key are not fetched.
    await emulate(
      'bf16',
      { B: 1, H: 4, Hkv: 2, Nq: 3, Nk: 700, splitKeys: 300, qOffset: 200 },
      'causal.attn',
    );
    await emulate('bf16', { B: 1, H: 2, Hkv: 2, Nq: 2, Nk: 70, splitKeys: 32, qOffset: -5 }, 'causal.attn');
    await emulate('f16', { B: 1, H: 4, Hkv: 1, Nq: 2, Nk: 300, splitKeys: 64 }, 'sliding_window.attn');
    await emulate(
      'bf16',
      { B: 2, H: 6, Hkv: 2, Nq: 2, Nk: 97, splitKeys: 32, qOffset: 40, kOffset: 5 },
      'softcap.attn',
    );
    await emulate('bf16', { B: 1, H: 2, Hkv: 1, Nq: 5, Nk: 130, splitKeys: 96 }, 'alibi.attn');
  }, 600_000);
  it('non-finite values: NaN in a masked key is never used, NaN in q poisons its row only', async () => {
    // Causal rows at positions 100, 101 of 200 keys: keys 150 and 180 are masked for both.
    const row = (h: number, n: number) => (h * 2 + n) * D; // [B=1, H=2, Nq=2, D]
    const key = (j: number) => j * D; // [B=1, Hkv=1, Nk=200, D]
    const nan = [
      { tensor: 'k' as const, index: key(150) + 3 },
      { tensor: 'v' as const, index: key(180) + 5 },
      { tensor: 'q' as const, index: row(1, 0) + 7 },
    ];
    await emulate(
      'bf16',
      { B: 1, H: 2, Hkv: 1, Nq: 2, Nk: 200, splitKeys: 96, qOffset: 100, nan },
      'causal.attn',
    );
  }, 600_000);
  it('bf16 knobs: 2 warps, 32 keys a warp, 2 stages; MHA', async () => {
    await emulate('bf16', {
      B: 1,
      H: 2,
      Hkv: 2,
      Nq: 2,
      Nk: 260,
      splitKeys: 130,
      knobs: { WARPS: 2, KEYS: 32, STAGES: 2 },
    });
  }, 600_000);
  it('lean (ATTNC_DEC_MMA_LEAN): one row half at GQA 4, both halves and one in GQA 8 x Nq 3, masks and NaN', async () => {
    // GQA 4 x Nq 1: rows 4..15 padding, the one-half loop; bit 1 alone: the vote, both halves.
    await emulate('bf16', { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100, lean: 3 });
    await emulate('bf16', { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100, lean: 1 });
    // 24 packed rows: row group 0 takes both halves, row group 1 (rows 16..23) one.
    await emulate('f16', { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 517, splitKeys: 517, lean: 3 });
    // Empty causal rows (m stays -inf), NaN in a masked key and in q (a poisoned row).
    const nan = [
      { tensor: 'k' as const, index: 150 * D + 3 },
      { tensor: 'q' as const, index: 2 * D + 7 },
    ];
    await emulate(
      'bf16',
      { B: 1, H: 2, Hkv: 1, Nq: 2, Nk: 200, splitKeys: 96, qOffset: 100, nan, lean: 3 },
      'causal.attn',
    );
    await emulate(
      'bf16',
      { B: 1, H: 4, Hkv: 2, Nq: 3, Nk: 700, splitKeys: 300, qOffset: 200, lean: 3 },
      'causal.attn',
    );
  }, 900_000);
});
