// Quantized K/V in the tensor-core decode kernel (decode-mma-quant.ts): int8 and fp8 code rows
// dequantized into f16 fragments with folded per-token scales, run on the CPU emulator (warp-level
// stand-in for the f16 mma.sync, decode-mma-emu.ts) and merged by decode.ts's merge kernel, against
// the float64 reference of the dequantized caches: K and V element types mixed, GQA 1..8 × Nq,
// ragged Nk, splits ending inside a tile, a causal mask, q in f32 and bf16.
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { withQuantStandIns } from './decode-mma-emu.js';
import { compileEmulation, emulationSource } from './emu.js';
import { packedStridesCpp } from './emu-call.js';
import { expectOk, leanKnob, run, scratchDir } from './support.js';

interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly splitKeys: number;
  /** Scale tensors 2 bytes past a 4-byte boundary (the scale stream's plain-copy path). */
  readonly oddScales?: boolean;
}

const D = 128;
const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const bf16Bits = (x: Float32Array): Uint16Array =>
  Uint16Array.from(
    new Uint32Array(Float32Array.from(x).buffer),
    (w) => (w + 0x7fff + ((w >>> 16) & 1)) >>> 16,
  );
const fromBf16 = (b: Uint16Array): Float32Array =>
  new Float32Array(Uint32Array.from(b, (x) => x << 16).buffer);

/** `knobs`: ATTNC_DEC_* overrides (decode-knobs.ts) defined before the kernel. */
async function emulate(
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
  mutate: (device: string) => string = (d) => d,
): Promise<void> {
  const source = `attention qm${tag}() {\n  ${store}\n  ${mask}\n}`;
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
  const dir = scratchDir(`decode-mma-quant-${tag}`);
  const decode = decodeSource(kernel, layout, ns).split(DEVICE_END)[0]!;
  expect(decode, 'the quantized format takes the tensor-core kernel').toContain('dmq_k(');
  // The key-major kernel (decode-mma-km.ts) is emitted beside the query-major one, behind its switch.
  expect(decode, 'the key-major kernel').toContain('#if ATTNC_DEC_MMA_KM');
  const device = withQuantStandIns(mutate(decode))
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replaceAll(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;'); // both kernels
  const formats = checkedFormats(comp.decl);
  const rand = rng(c.Nk * 13 + c.H);
  const stored = randomStoredInputs(formats, { ...c, D, Dv: D }, rand);
  const q = new Float32Array(c.B * c.H * c.Nq * D).map(() => rand() * 2 - 1);
  const qBits = dtype === 'bf16' ? bf16Bits(q) : q;
  const qValues = dtype === 'bf16' ? fromBf16(qBits as Uint16Array) : q;
  const inputs: [string, ArrayBufferView][] = [['q', qBits]];
  for (const which of ['k', 'v'] as const) {
    const held = (name: string): ArrayBufferView => {
      const x = stored.caches[which]![name as keyof QuantCache]!;
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
  // Row groups of MMA_ROWS packed rows (16, or 8 in the key-major kernel): the host's count.
  const rowGroups = `((${packed} + dec::MMA_ROWS - 1) / dec::MMA_ROWS)`;
  const nSplits = Math.ceil(c.Nk / c.splitKeys);
  const outBytes = dtype === 'bf16' ? 2 : 4;
  const main = `
#define ${MMA_EMU_MACRO} 1
${Object.entries(knobs)
  .map(([n, v]) => `#define ATTNC_DEC_${n} ${v}`)
  .join('\n')}
inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
inline int emu_or_acc = 0;
inline int __syncthreads_or(int p) {
  if (p) emu_or_acc = 1;
  emu::block_bar.wait();
  const int r = emu_or_acc;
  emu::block_bar.wait();
  if (threadIdx.x == 0) emu_or_acc = 0;
  emu::block_bar.wait();
  return r;
}
${device}
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  auto rd = [](const char* p, size_t n) { void* b = aligned_alloc(64, (n + 63) / 64 * 64 + 64); FILE* f = fopen(p, "rb"); if (n && fread(b, 1, n, f) != n) exit(3); fclose(f); return b; };
  ${reads.join('\n  ')}
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
  const src = join(dir, 'decode-mma-quant.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode-mma-quant.emu');
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
  const what = `${store.replace(/\n\s*/g, '; ')} ${mask} ${dtype} ${JSON.stringify(c)}`;
  const o = compareArrays(out, ref.out, ref.outScale);
  const l = compareArrays(lse, ref.lse, 1);
  expect(o.nanCount, what).toBe(0);
  // q̂ (f32 q) and p·s round to f16 (2^-11 each), the output to bf16 where that is the dtype (2^-9).
  expect(o.relError, what).toBeLessThanOrEqual(dtype === 'bf16' ? 4e-3 : 1e-3);
  expect(l.relError, what).toBeLessThanOrEqual(dtype === 'bf16' ? 3e-5 : 1e-3); // q̂: exact for bf16 q, 2^-11 for f32
}

describe('quantized K/V in the tensor-core decode kernel (CPU emulation) agrees with the reference', () => {
  it('int8, scale f16 per token: GQA 4 x Nq 1, ragged Nk, splits ending inside a tile (f32 and bf16 q)', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('i8f', 'store kv int8 scale f16 per token', 'f32', c);
    await emulate('i8b', 'store kv int8 scale f16 per token', 'bf16', c);
    await emulate('i8o', 'store kv int8 scale f16 per token', 'bf16', { ...c, Nk: 190, oddScales: true });
  }, 600_000);
  it('e4m3 per token; e5m2 unscaled K with int8 V; int8 K with e4m3 V: GQA 8 x Nq 3, causal', async () => {
    await emulate('e4', 'store kv e4m3 scale f16 per token', 'bf16', {
      B: 1,
      H: 8,
      Hkv: 1,
      Nq: 3,
      Nk: 260,
      splitKeys: 260,
    });
    await emulate(
      'e5',
      'store k e5m2\n  store v int8 scale f16 per token',
      'f32',
      { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 },
      'mask causal',
    );
    await emulate('ie', 'store k int8 scale f16 per token\n  store v e4m3', 'bf16', {
      B: 1,
      H: 2,
      Hkv: 2,
      Nq: 1,
      Nk: 97,
      splitKeys: 48,
    });
  }, 600_000);
  it('e3m4 (no hardware conversion: the bit decoder on every arch) per token K, unscaled V', async () => {
    const c = { B: 1, H: 4, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 };
    await emulate('e3', 'store k e3m4 scale f16 per token\n  store v e3m4', 'bf16', c, 'mask causal');
  }, 600_000);
  it('tile knobs: QKEYS 16 x QSTAGES 3, QKEYS 16, 4 warps x 32 keys x 5 stages (int8, e4m3; splits ending inside a tile)', async () => {
    const c = { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 700 };
    await emulate('ks3', 'store kv int8 scale f16 per token', 'bf16', c, '', {
      MMA_QKEYS: 16,
      MMA_QSTAGES: 3,
    });
    await emulate('kk16', 'store kv e4m3 scale f16 per token', 'bf16', c, '', { MMA_QKEYS: 16 });
    await emulate(
      'kw4',
      'store kv int8 scale f16 per token',
      'f32',
      { ...c, Nq: 2, Nk: 530 },
      'mask causal',
      {
        MMA_QWARPS: 4,
        MMA_QKEYS: 32,
        MMA_QSTAGES: 5,
      },
    );
  }, 600_000);
  // The one-pointer code-row fetch (ATTNC_DEC_MMA_FETCH_RUNS 1: KIVI's default, off for int8 / fp8)
  // over 128-byte rows; splits ending inside a tile (rows past a split's end must arrive as zeros:
  // the e4m3 case fails when one more row is copied), and 4 warps (a pass of 32 rows, 4 a tile).
  it('code rows from one pointer a thread (ATTNC_DEC_MMA_FETCH_RUNS 1): int8 with 4 warps, e4m3 GQA 8 x Nq 3', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('fr8', 'store kv int8 scale f16 per token', 'bf16', c, '', {
      MMA_FETCH_RUNS: 1,
      MMA_QWARPS: 4,
    });
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 };
    const knobs = { MMA_FETCH_RUNS: 1, MMA_LEAN: 3 };
    await emulate('fre4', 'store kv e4m3 scale f16 per token', 'bf16', g8, 'mask causal', knobs);
  }, 600_000);
  it('lean (ATTNC_DEC_MMA_LEAN, decode-mma-lean.ts): one row half at GQA 4; both halves and one in GQA 8 x Nq 3, causal', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('l3', 'store kv int8 scale f16 per token', 'bf16', c, '', { MMA_LEAN: 3 });
    await emulate('l1', 'store kv int8 scale f16 per token', 'f32', c, '', { MMA_LEAN: 1, MMA_QKEYS: 16 });
    // 24 packed rows: row group 0 takes both halves, row group 1 one; empty causal rows.
    await emulate(
      'l3c',
      'store kv e4m3 scale f16 per token',
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 },
      'mask causal',
      { MMA_LEAN: 3 },
    );
  }, 600_000);
  it('key-major kernel (decode-mma-km.ts, -DATTNC_DEC_MMA_KM=1): int8 (f32 and bf16 q, odd scale windows), e4m3 GQA 8 x Nq 3 (three row groups), unscaled e5m2 K with int8 V, int8 K with unscaled e4m3 V, e3m4, 4 warps x 16 keys, causal, sliding window, softcap; a dropped K scale fails', async () => {
    const km = { MMA_KM: 1 };
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await emulate('k8f', 'store kv int8 scale f16 per token', 'f32', c, '', km);
    await emulate('k8b', 'store kv int8 scale f16 per token', 'bf16', c, '', km);
    await emulate(
      'k8o',
      'store kv int8 scale f16 per token',
      'bf16',
      { ...c, Nk: 190, oddScales: true },
      '',
      km,
    );
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await emulate('ke4', 'store kv e4m3 scale f16 per token', 'bf16', g8, '', km);
    const mixed = { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 150, splitKeys: 64 };
    await emulate('ke5', 'store k e5m2\n  store v int8 scale f16 per token', 'f32', mixed, '', km);
    await emulate('kie', 'store k int8 scale f16 per token\n  store v e4m3', 'bf16', mixed, '', km);
    await emulate('ke3', 'store k e3m4 scale f16 per token\n  store v e3m4', 'bf16', mixed, '', km);
    await emulate('kw4', 'store kv int8 scale f16 per token', 'bf16', { ...c, Nk: 400, splitKeys: 144 }, '', {
      ...km,
      MMA_QWARPS: 4,
      MMA_QKEYS: 16,
    });
    // Masks and a score modifier: causal (three row groups), a sliding window (skipped tiles), softcap.
    await emulate('kc', 'store kv e4m3 scale f16 per token', 'bf16', g8, 'mask causal', km);
    const sw = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 520, splitKeys: 128 };
    await emulate('ksw', 'store kv int8 scale f16 per token', 'bf16', sw, 'mask causal && q - k < 100', km);
    const sc = 'score 20.0 * tanh(score / 20.0)\n  mask causal';
    await emulate('ksc', 'store kv int8 scale f16 per token', 'f32', mixed, sc, km);
    const dropK = (d: string): string => {
      const from = 's[mt][e] *= sk[mt][e >> 1] * qinv[e & 1];';
      expect(d).toContain(from);
      return d.replace(from, 's[mt][e] *= qinv[e & 1];');
    };
    await expect(
      emulate('kmu', 'store kv int8 scale f16 per token', 'bf16', c, '', km, dropK),
    ).rejects.toThrow();
  }, 600_000);
  it('random eligible formats for k and v, GQA, Nq, ragged Nk, split lengths, q dtype', async () => {
    const seed = process.env.CI ? 11 : Date.now() % 100_000;
    const elem = fc.constantFrom(
      'int8 scale f16 per token',
      'e4m3 scale f16 per token',
      'e5m2 scale f16 per token',
      'e4m3',
      'e5m2',
    );
    const cases = fc.sample(
      fc.record({
        k: elem,
        v: elem,
        dtype: fc.constantFrom('f32' as const, 'bf16' as const),
        group: fc.integer({ min: 1, max: 8 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        Nq: fc.integer({ min: 1, max: 3 }),
        Nk: fc.integer({ min: 1, max: 300 }),
        splitKeys: fc.integer({ min: 1, max: 300 }),
        causal: fc.boolean(),
      }),
      { numRuns: 3, seed },
    );
    for (const [i, r] of cases.entries()) {
      const shape = { B: 1, H: r.Hkv * r.group, Hkv: r.Hkv, Nq: r.Nq, Nk: r.Nk, splitKeys: r.splitKeys };
      const store = `store k ${r.k}\n  store v ${r.v}`;
      // Both kernels whatever the default (key-major for fp8 caches, query-major with an int8 side).
      await emulate(`r${i}`, store, r.dtype, shape, r.causal ? 'mask causal' : '', { MMA_KM: 0 });
      await emulate(`rk${i}`, store, r.dtype, shape, r.causal ? 'mask causal' : '', { MMA_KM: 1 });
    }
  }, 900_000);
});
