// The quantize pre-pass of `qk int8 [smooth k]` on the wgmma-ws engine
// (src/codegen/cuda/int8qk-wgmma-prepass.ts), executed on the CPU emulator's block model
// (test/cuda/emu.ts) and compared with the definition (src/runtime/reference-int8qk.ts): codes
// and scales of Q exactly, of K exactly without smoothing and, with `smooth k` (the kernel
// smooths in f32, the reference in float64), scales to f32 rounding and codes within one.
// Tails of Q and K blocks, GQA, a BNHD-strided K and several key-sum chunks are covered. The
// attention kernel itself (wgmma, TMA) runs only on the GPU: bench/cuda/int8qk.py.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { int8QkPrepassDevice, QK8_CHUNK } from '../../src/codegen/cuda/int8qk-wgmma-prepass.js';
import { quantizeInt8Blocks, smoothKeys } from '../../src/runtime/reference-int8qk.js';
import { compileEmulation, shim } from './emu.js';
import { expectOk, run, scratchDir } from './support.js';

const D = 128;
const shape = { B: 2, H: 2, Hkv: 1, Nq: 70, Nk: 2 * QK8_CHUNK + 45, BQ: 64, BK: 128 };

/** The pre-pass kernels between a minimal Args (q packed, k BNHD) and a driver that runs them. */
function source(): string {
  const { B, H, Hkv, Nq, Nk, BQ, BK } = shape;
  return [
    shim,
    'struct Args {',
    '  const void* q; const void* k;',
    '  long long q_stride_b, q_stride_h, q_stride_n, k_stride_b, k_stride_h, k_stride_n;',
    '  int B, H, Hkv, Nq, Nk;',
    '};',
    'typedef __nv_bfloat16 T;',
    `constexpr int D = ${D}, BQ = ${BQ}, BK = ${BK};`,
    'inline float to_f32(T x) { return __bfloat162float(x); }',
    ...int8QkPrepassDevice({ q: 'q', k: 'k' }),
    String.raw`
template <class X> X* slurp(const char* path, size_t n) {
  X* p = (X*)aligned_alloc(64, (n * sizeof(X) + 63) / 64 * 64);
  FILE* f = fopen(path, "rb");
  if (fread(p, sizeof(X), n, f) != n) exit(3);
  fclose(f);
  return p;
}
template <class X> void spill(const char* path, const X* p, size_t n) {
  FILE* f = fopen(path, "wb");
  fwrite(p, sizeof(X), n, f);
  fclose(f);
}
// argv: dir smooth(0|1)
int main(int argc, char** argv) {
  const std::string dir = argv[1];
  const bool smooth = argv[2][0] == '1';
  Args a{};
  a.B = ${B}; a.H = ${H}; a.Hkv = ${Hkv}; a.Nq = ${Nq}; a.Nk = ${Nk};
  a.q = slurp<T>((dir + "/q.bin").c_str(), (size_t)a.B * a.H * a.Nq * D);
  a.k = slurp<T>((dir + "/k.bin").c_str(), (size_t)a.B * a.Nk * a.Hkv * D);
  a.q_stride_n = D; a.q_stride_h = (long long)a.Nq * D; a.q_stride_b = (long long)a.H * a.Nq * D;
  // K as [B, Nk, Hkv, D] (BNHD): rows Hkv·D apart.
  a.k_stride_n = (long long)a.Hkv * D; a.k_stride_h = D; a.k_stride_b = (long long)a.Nk * a.Hkv * D;
  const int nqb = (a.Nq + BQ - 1) / BQ, nkb = (a.Nk + BK - 1) / BK, nch = (a.Nk + QK8_CHUNK - 1) / QK8_CHUNK;
  std::vector<signed char> q8((size_t)a.B * a.H * a.Nq * D, 99), k8((size_t)a.B * a.Hkv * a.Nk * D, 99);
  std::vector<float> sq((size_t)a.B * a.H * nqb, -1.f), sk((size_t)a.B * a.Hkv * nkb, -1.f);
  std::vector<float> part((size_t)a.B * a.Hkv * nch * D, NAN);
  Qk8Scratch w{q8.data(), k8.data(), sq.data(), sk.data(), smooth ? part.data() : nullptr};
  if (smooth) {
    gridDim = dim3{(unsigned)nch, (unsigned)(a.B * a.Hkv), 1};
    emu::launch(gridDim, QK8_THREADS, 0, [&] { qk8_key_sums(a, w.part); });
  }
  gridDim = dim3{(unsigned)(a.B * a.H * nqb + a.B * a.Hkv * nkb), 1, 1};
  emu::launch(gridDim, QK8_THREADS, 0, [&] { qk8_quantize(a, w); });
  spill((dir + "/q8.bin").c_str(), q8.data(), q8.size());
  spill((dir + "/k8.bin").c_str(), k8.data(), k8.size());
  spill((dir + "/sq.bin").c_str(), sq.data(), sq.size());
  spill((dir + "/sk.bin").c_str(), sk.data(), sk.size());
  return 0;
}
`,
  ].join('\n');
}

/** bf16 bits of x (round to nearest even) and the value they hold. */
function bf16(x: number): [number, number] {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  const bits = ((u[0]! + 0x7fff + ((u[0]! >> 16) & 1)) >>> 16) & 0xffff;
  u[0] = bits << 16;
  return [bits, f[0]!];
}

/** Seeded inputs: N(0, 1)-ish q, k with a shared per-channel offset (what smoothing removes). */
function inputs(seed: number) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const { B, H, Hkv, Nq, Nk } = shape;
  const offset = Array.from({ length: D }, () => 4 * rand());
  const q = new Float64Array(B * H * Nq * D);
  const qBits = new Uint16Array(q.length);
  for (let i = 0; i < q.length; i++) [qBits[i], q[i]] = bf16(rand() + rand());
  // A zero-filled head-0 block of Q checks the all-zero rule (scale 0, codes 0).
  q.fill(0, 0, shape.BQ * D);
  qBits.fill(0, 0, shape.BQ * D);
  // k in the reference's [B, Hkv, Nk, D]; the file in BNHD.
  const k = new Float64Array(B * Hkv * Nk * D);
  const kBits = new Uint16Array(k.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hkv; h++)
      for (let j = 0; j < Nk; j++)
        for (let d = 0; d < D; d++) {
          const [bits, v] = bf16(rand() + offset[d]!);
          k[((b * Hkv + h) * Nk + j) * D + d] = v;
          kBits[((b * Nk + j) * Hkv + h) * D + d] = bits;
        }
  return { q, qBits, k, kBits };
}

const readF32 = (p: string) => new Float32Array(new Uint8Array(readFileSync(p)).buffer);
const readI8 = (p: string) => new Int8Array(new Uint8Array(readFileSync(p)).buffer);

describe('qk int8 pre-pass of the wgmma-ws engine, executed on the CPU', () => {
  const dir = scratchDir('int8qk-prepass');
  const exe = join(dir, 'prepass.emu');
  const built = (async () => {
    writeFileSync(join(dir, 'prepass.cpp'), source());
    await compileEmulation(join(dir, 'prepass.cpp'), exe, 'g++ (pre-pass)');
  })();
  const { B, H, Hkv, Nq, Nk, BQ, BK } = shape;
  const inp = inputs(13);
  writeFileSync(join(dir, 'q.bin'), inp.qBits);
  writeFileSync(join(dir, 'k.bin'), inp.kBits);
  const qRef = quantizeInt8Blocks(inp.q, B * H, Nq, D, BQ);

  for (const smooth of [false, true]) {
    it(smooth ? 'smooth k' : 'no smoothing', async () => {
      await built;
      expectOk(await run(exe, [dir, smooth ? '1' : '0']), 'emulated pre-pass');
      expect(Array.from(readF32(join(dir, 'sq.bin')))).toEqual(Array.from(qRef.scales));
      expect(qRef.scales[0]).toBe(0);
      expect(Array.from(readI8(join(dir, 'q8.bin')))).toEqual(Array.from(qRef.codes));
      const keys = smooth ? smoothKeys(inp.k, B * Hkv, Nk, D) : inp.k;
      const kRef = quantizeInt8Blocks(keys, B * Hkv, Nk, D, BK);
      const sk = readF32(join(dir, 'sk.bin'));
      const k8 = readI8(join(dir, 'k8.bin'));
      if (!smooth) {
        expect(Array.from(sk)).toEqual(Array.from(kRef.scales));
        expect(Array.from(k8)).toEqual(Array.from(kRef.codes));
        return;
      }
      for (let i = 0; i < sk.length; i++)
        expect(Math.abs(sk[i]! - kRef.scales[i]!)).toBeLessThanOrEqual(1e-5 * kRef.scales[i]!);
      let off = 0;
      for (let i = 0; i < k8.length; i++) {
        expect(Math.abs(k8[i]! - kRef.codes[i]!)).toBeLessThanOrEqual(1);
        off += Number(k8[i] !== kRef.codes[i]);
      }
      expect(off).toBeLessThan(k8.length / 1000);
      // The offset was removed: unsmoothed, the codes of a channel would share its large sign.
      expect(kRef.scales[0]).toBeLessThan(quantizeInt8Blocks(inp.k, B * Hkv, Nk, D, BK).scales[0]! / 2);
    });
  }
});
