// KIVI caches (int4 / int2 codes, K per channel in groups of 32 tokens, V per token in groups of 32
// channels, f16 scale and zero point, recent f16 tokens) in the tensor-core decode kernel
// (decode-mma-kivi.ts, -DATTNC_DEC_MMA_KIVI=1), run on the CPU emulator (warp-level stand-in for
// the f16 mma.sync, decode-mma-emu.ts) and merged by decode.ts's merge kernel, against the float64
// reference of the dequantized caches: int4 and int2 (and mixed), GQA, Nq, ragged Nk, with and
// without recent tokens (a window inside one split, across splits, longer than Nk), splits not
// aligned to K's groups of 32, a causal mask, q in f32 and bf16; mutations (wrong zero points)
// must fail.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
  /** K scales times 2^-n (f16, rounded: subnormal ones too) and q times 2^n: tiny scales, S as large. */
  readonly kScaleShift?: number;
}

/** Relative errors of out and lse against the reference, and the NaN count of out. */
interface Errors {
  readonly out: number;
  readonly lse: number;
  readonly nans: number;
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

/** `knobs`: ATTNC_DEC_* overrides (decode-knobs.ts) defined before the kernel; `mutate`: a source edit. */
async function emulate(
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
  mutate: (device: string) => string = (d) => d,
): Promise<Errors> {
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
  const dir = scratchDir(`decode-mma-kivi-${tag}`);
  const decode = decodeSource(kernel, layout, ns).split(DEVICE_END)[0]!;
  expect(decode, 'the KIVI format has the tensor-core kernel').toContain('dk_kpair(');
  // The key-major kernel (decode-mma-km.ts) is emitted beside the query-major one, behind its switch.
  expect(decode, 'the key-major kernel').toContain('#if ATTNC_DEC_MMA_KM');
  const device = withQuantStandIns(mutate(decode))
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;')
    .replaceAll(MMA_SMEM_DECL, 'float4* dm_smem = emu::dyn_smem;'); // both KIVI kernels
  const formats = checkedFormats(comp.decl);
  const rand = rng(c.Nk * 13 + c.H);
  const stored = randomStoredInputs(formats, { ...c, D, Dv: D }, rand);
  const qShift = 2 ** (c.kScaleShift ?? 0);
  const q = new Float32Array(c.B * c.H * c.Nq * D).map(() => (rand() * 2 - 1) * qShift);
  const ks = stored.caches.k!.scale!;
  for (let i = 0; c.kScaleShift && i < ks.data.length; ++i) writeFloat(ks, i, readFloat(ks, i) / qShift);
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
  // Row groups of MMA_ROWS packed rows (16, or 8 in the key-major KIVI kernel): the host's count.
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
  const src = join(dir, 'decode-mma-kivi.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode-mma-kivi.emu');
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

/** The int8 tests' bounds (decode-mma-quant-emu.test.ts) for f32 q: q̂_g = f16(q · s_g) rounds as f32 q̂ does there. */
async function agrees(
  tag: string,
  store: string,
  dtype: 'f32' | 'bf16',
  c: Case,
  mask = '',
  knobs: Readonly<Record<string, number>> = {},
): Promise<void> {
  const e = await emulate(tag, store, dtype, c, mask, knobs);
  const what = `${store.replace(/\n\s*/g, '; ')} ${mask} ${dtype} ${JSON.stringify(c)} ${JSON.stringify(e)}`;
  expect(e.nans, what).toBe(0);
  // q̂_g and p·s round to f16 (2^-11 each), the output to bf16 where that is the dtype (2^-9).
  expect(e.out, what).toBeLessThanOrEqual(dtype === 'bf16' ? 4e-3 : 1e-3);
  expect(e.lse, what).toBeLessThanOrEqual(dtype === 'bf16' ? 3e-5 : 1e-3);
}

const kivi = (kb: number, vb: number, recent: number): string => {
  const r = recent > 0 ? ` recent ${recent} f16` : '';
  return (
    `store k int${kb} scale f16 per channel group 32 zero f16${r}\n` +
    `  store v int${vb} scale f16 per token group 32 zero f16${r}`
  );
};

describe('KIVI K/V in the tensor-core decode kernel (CPU emulation) agrees with the reference', () => {
  it('int4: GQA 4, ragged Nk, recent 40 inside the last split, splits not aligned to 32 (bf16 and f32 q); misaligned scale tensors; tiny K scales', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('i4b', kivi(4, 4, 40), 'bf16', c);
    await agrees('i4f', kivi(4, 4, 0), 'f32', { ...c, Nk: 203, splitKeys: 70 });
    // Scale tensors 2 bytes off a 4-byte boundary: the windows' plain-copy path.
    await agrees('i4o', kivi(4, 4, 16), 'bf16', { ...c, Nk: 190, oddScales: true });
    // K scales near 2^-19 (f16 subnormals; no recent rows, which q · 2^16 would make dominate):
    // s′ = s · 2^-(e+1) takes both f16 factors.
    await agrees('i4t', kivi(4, 4, 0), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 });
  }, 600_000);
  it('int2: GQA 8 x Nq 3, causal, no recent; recent 128 across splits', async () => {
    await agrees(
      'i2c',
      kivi(2, 2, 0),
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 260 },
      'mask causal',
    );
    await agrees(
      'i2r',
      kivi(2, 2, 128),
      'f32',
      { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 },
      'mask causal',
    );
  }, 600_000);
  it('mixed int4 K / int2 V; a window longer than Nk; host-like splits of whole tiles (8 and 4 warps)', async () => {
    await agrees(
      'm42',
      `store k int4 scale f16 per channel group 32 zero f16 recent 32 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 32 f16`,
      'bf16',
      { B: 1, H: 4, Hkv: 2, Nq: 1, Nk: 97, splitKeys: 48 },
    );
    await agrees('all', kivi(2, 4, 128), 'bf16', { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 77, splitKeys: 40 });
    await agrees('big', kivi(2, 2, 128), 'bf16', { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 512 });
    // kivi_mma_w4s4's tile (decode-knobs.ts): 4 warps x 32 keys x 4 stages, splits of 3 tiles.
    await agrees(
      'w4s4',
      kivi(4, 4, 128),
      'bf16',
      { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1000, splitKeys: 384 },
      '',
      {
        MMA_QWARPS: 4,
        MMA_QSTAGES: 4,
      },
    );
  }, 600_000);
  // The tests above run the default (the key-major kernel since round 34, 4-warp blocks); this one
  // and the mutations below keep the query-major kernel (-DATTNC_DEC_MMA_KM=0) checked.
  it('query-major kernel, lean (ATTNC_DEC_MMA_KM 0, ATTNC_DEC_MMA_LEAN 3): one row half with a recent window (GQA 4); GQA 8 x Nq 3 causal', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('l3', kivi(4, 4, 40), 'bf16', c, '', { MMA_LEAN: 3, MMA_KM: 0 });
    await agrees(
      'l3c',
      kivi(2, 2, 32),
      'bf16',
      { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 100 },
      'mask causal',
      { MMA_LEAN: 3, MMA_KM: 0 },
    );
  }, 600_000);
  it('mutations fail in both kernels (key-major, query-major): K zero points read as scales, V zero points not subtracted, tiny K scales mis-scaled', async () => {
    const c = { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 200, splitKeys: 100 };
    /** Every occurrence of `from` (the kernels share some lines) replaced; it must occur. */
    const swap =
      (from: string, to: string) =>
      (d: string): string => {
        expect(d).toContain(from);
        return d.replaceAll(from, to);
      };
    // Held in registers (uncapped) or read from shared memory at each use (capped: KM_HELD false,
    // the key-major default's three blocks an SM).
    const kz = (d: string): string =>
      swap(
        'dk_pair(swv + KGW, 2 * ks + h)',
        'dk_pair(swv, 2 * ks + h)',
      )(
        swap(
          'reinterpret_cast<const DmW4*>(gs + 2 * KGW + (lane & 3) * (D / 4))',
          'reinterpret_cast<const DmW4*>(gs + (lane & 3) * (D / 4))',
        )(d),
      );
    const vz = (d: string): string =>
      swap(
        'o[n][e] -= vz[n >> 1][e & 1];',
        '(void)0;',
      )(swap('o[4 * g + nq][2 * h8] -= x, o[4 * g + nq][2 * h8 + 1] -= x;', '(void)x;')(d));
    // Tiny K scales: the second f16 factor of s′ dropped.
    const fb = swap('f2b = dk_pow2h(fb) * 0x10001u', 'f2b = dk_pow2h(0) * 0x10001u');
    for (const km of [1, 0]) {
      const knobs = { MMA_KM: km };
      const ok = await emulate(`mok${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs);
      expect(ok.out).toBeLessThanOrEqual(4e-3);
      const k = await emulate(`mkz${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs, kz);
      const v = await emulate(`mvz${km}`, kivi(4, 4, 16), 'bf16', c, '', knobs, vz);
      expect(Math.max(k.out, k.lse * 100), `KM ${km}: wrong K zero points`).toBeGreaterThan(1e-2);
      expect(v.out, `KM ${km}: V zero points dropped`).toBeGreaterThan(1e-2);
      const t = await emulate(`mfb${km}`, kivi(4, 4, 0), 'bf16', { ...c, kScaleShift: 16 }, '', knobs, fb);
      expect(t.out, `KM ${km}: tiny scales mis-scaled`).toBeGreaterThan(1e-2);
    }
  }, 600_000);
  it('key-major kernel (decode-mma-km.ts, -DATTNC_DEC_MMA_KM=1): GQA 4 with recent rows inside the last split, splits not aligned to 32 (bf16 and f32 q), tiny K scales, packed rows 8 and 16 (two row groups), Nq 3, 16-key m-tiles, 4 warps, causal, sliding window, softcap, the two-block register cap', async () => {
    const km = { MMA_KM: 1 };
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 301, splitKeys: 100 };
    await agrees('k4b', kivi(4, 4, 40), 'bf16', c, '', km);
    await agrees('k4f', kivi(4, 4, 0), 'f32', { ...c, Nk: 203, splitKeys: 70 }, '', km);
    await agrees('k4t', kivi(4, 4, 0), 'bf16', { ...c, Nk: 150, splitKeys: 64, kScaleShift: 16 }, '', km);
    await agrees(
      'k8',
      kivi(4, 4, 40),
      'bf16',
      { B: 1, H: 16, Hkv: 2, Nq: 1, Nk: 333, splitKeys: 120 },
      '',
      km,
    );
    await agrees(
      'k16',
      kivi(2, 4, 24),
      'f32',
      { B: 1, H: 16, Hkv: 1, Nq: 1, Nk: 290, splitKeys: 100 },
      '',
      km,
    );
    await agrees('kq3', kivi(4, 2, 8), 'bf16', { B: 2, H: 4, Hkv: 2, Nq: 3, Nk: 150, splitKeys: 72 }, '', km);
    await agrees('kk16', kivi(4, 4, 32), 'bf16', { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 400, splitKeys: 144 }, '', {
      ...km,
      MMA_QKEYS: 16,
      MMA_QWARPS: 4,
    });
    // Masks and a score modifier: causal GQA 8 x Nq 3 (no recent rows; recent 128 with f32 q), a
    // sliding window (tiles no query sees are skipped), softcap.
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await agrees('kc', kivi(2, 2, 0), 'bf16', g8, 'mask causal', km);
    const g3 = { B: 1, H: 6, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 64 };
    await agrees('kcr', kivi(2, 2, 128), 'f32', g3, 'mask causal', km);
    const sw = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 520, splitKeys: 128 };
    await agrees('ksw', kivi(4, 4, 40), 'bf16', sw, 'mask causal && q - k < 100', km);
    await agrees('ksc', kivi(4, 4, 16), 'bf16', g3, 'score 20.0 * tanh(score / 20.0)\n  mask causal', km);
    // Scale and zero words read from shared memory at each use (KM_HELD false).
    await agrees(
      'kb2',
      kivi(2, 2, 128),
      'bf16',
      { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 1100, splitKeys: 512 },
      '',
      {
        ...km,
        MMA_QMIN_BLOCKS: 2,
      },
    );
  }, 600_000);
});
