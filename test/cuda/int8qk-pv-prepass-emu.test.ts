// The V pre-pass of `pv e4m3 [smooth v]` (src/codegen/cuda/int8qk-pv-prepass.ts), executed on the
// CPU emulator's block model (test/cuda/emu.ts) and compared with the definition
// (src/runtime/reference-int8qk-pv.ts): codes (at their transposed, permuted place), scales and
// pads exactly without smoothing; with `smooth v` (the kernel smooths in f32, the reference in
// float64) means and scales to f32 rounding and codes within one e4m3 step. A key tail (not a
// multiple of the chunk nor of the pad), GQA heads, a BNHD-strided V, several chunks and an
// all-zero channel are covered. The permutation is checked against the wgmma fragment layouts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PV8_CHUNK,
  PV8_KEY_PAD,
  pv8Position,
  pvE4m3PrepassDevice,
} from '../../src/codegen/cuda/int8qk-pv-prepass.js';
import { quantizeE4m3Channels } from '../../src/runtime/reference-int8qk-pv.js';
import { compileEmulation, shim } from './emu.js';
import { expectOk, run, scratchDir } from './support.js';

const DV = 128;
const shape = { B: 2, Hkv: 2, Nk: 2 * PV8_CHUNK + 45 };
const nkPad = Math.ceil(shape.Nk / PV8_KEY_PAD) * PV8_KEY_PAD;
const chunks = Math.ceil(shape.Nk / PV8_CHUNK);

/** The pre-pass kernels between a minimal Args (v BNHD) and a driver that runs them. */
function source(): string {
  const { B, Hkv, Nk } = shape;
  return [
    shim,
    'struct Args {',
    '  const void* v;',
    '  long long v_stride_b, v_stride_h, v_stride_n;',
    '  int B, Hkv, Nk;',
    '};',
    'typedef __nv_bfloat16 T;',
    `constexpr int DV = ${DV};`,
    'inline float to_f32(T x) { return __bfloat162float(x); }',
    ...pvE4m3PrepassDevice({ v: 'v' }),
    String.raw`
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
  a.B = ${B}; a.Hkv = ${Hkv}; a.Nk = ${Nk};
  const size_t n = (size_t)a.B * a.Nk * a.Hkv * DV;
  T* v = (T*)aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
  FILE* f = fopen((dir + "/v.bin").c_str(), "rb");
  if (fread(v, sizeof(T), n, f) != n) return 3;
  fclose(f);
  a.v = v;
  // V as [B, Nk, Hkv, DV] (BNHD): rows Hkv·DV apart.
  a.v_stride_n = (long long)a.Hkv * DV; a.v_stride_h = DV; a.v_stride_b = (long long)a.Nk * a.Hkv * DV;
  const int nch = (a.Nk + PV8_CHUNK - 1) / PV8_CHUNK, pad = (a.Nk + PV8_KEY_PAD - 1) / PV8_KEY_PAD * PV8_KEY_PAD;
  std::vector<unsigned char> vt((size_t)a.B * a.Hkv * DV * pad, 0x7f); // NaN codes: every byte must be written
  std::vector<float> sv((size_t)a.B * a.Hkv * DV, -1.f), mean(sv.size(), NAN);
  std::vector<float> stats((size_t)a.B * a.Hkv * nch * 3 * DV, NAN);
  Pv8Scratch w{vt.data(), sv.data(), mean.data(), stats.data()};
  gridDim = dim3{(unsigned)nch, (unsigned)(a.B * a.Hkv), 1};
  emu::launch(gridDim, PV8_THREADS, 0, [&] { pv8_value_stats(a, w.stats); });
  emu::launch(gridDim, PV8_THREADS, 0, [&] { pv8_quantize(a, w, smooth); });
  spill((dir + "/vt.bin").c_str(), vt.data(), vt.size());
  spill((dir + "/sv.bin").c_str(), sv.data(), sv.size());
  spill((dir + "/mean.bin").c_str(), mean.data(), mean.size());
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

/** Seeded V with a per-channel offset (what smoothing removes) and channel 5 all zero. */
function inputs(seed: number) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const { B, Hkv, Nk } = shape;
  const offset = Array.from({ length: DV }, () => 4 * rand());
  // v in the reference's [B, Hkv, Nk, DV]; the file in BNHD.
  const v = new Float64Array(B * Hkv * Nk * DV);
  const bits = new Uint16Array(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hkv; h++)
      for (let j = 0; j < Nk; j++)
        for (let d = 0; d < DV; d++) {
          const [x, value] = d === 5 ? [0, 0] : bf16((rand() + rand()) * (1 + (j % 7)) + offset[d]!);
          v[((b * Hkv + h) * Nk + j) * DV + d] = value;
          bits[((b * Nk + j) * Hkv + h) * DV + d] = x;
        }
  return { v, bits };
}

/** The value of an e4m3 code. */
function e4m3Value(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 15;
  const m = code & 7;
  return sign * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
}

const readF32 = (p: string) => new Float32Array(new Uint8Array(readFileSync(p)).buffer);

describe('pv e4m3 V pre-pass, executed on the CPU', () => {
  it('the key permutation turns S accumulators into the fp8 A fragment', () => {
    // wgmma m64nNk16 f32 D: thread (g, t) holds, of row g, keys 8j + 2t + {0, 1} as d[4j], d[4j+1].
    // wgmma m64nNk32 8-bit A: register r of thread (g, t) holds row g (r even) or g + 8, k-positions
    // 16·(r >> 1) + 4t + {0..3}. The A register built from d[16G + 8(r >> 1) + {0, 1, 4, 5}] (row g)
    // must hold the keys the code row keeps at those k-positions.
    for (let t = 0; t < 4; t++)
      for (let half = 0; half < 2; half++) {
        const keys = [0, 1, 4, 5].map((i) => {
          const j = 2 * half + (i >> 2); // accumulator column block (8 keys each)
          return 8 * j + 2 * t + (i & 1);
        });
        const positions = keys.map(pv8Position);
        expect(positions).toEqual([0, 1, 2, 3].map((i) => 16 * half + 4 * t + i));
      }
    const perm = Array.from({ length: 64 }, (_, k) => pv8Position(k));
    expect([...perm].sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, k) => k));
    expect(perm.slice(32, 36)).toEqual([32, 33, 36, 37]);
  });

  const dir = scratchDir('int8qk-pv-prepass');
  const exe = join(dir, 'pv-prepass.emu');
  const built = (async () => {
    writeFileSync(join(dir, 'pv-prepass.cpp'), source());
    await compileEmulation(join(dir, 'pv-prepass.cpp'), exe, 'g++ (pv pre-pass)');
  })();
  const { B, Hkv, Nk } = shape;
  const inp = inputs(29);
  writeFileSync(join(dir, 'v.bin'), inp.bits);

  for (const smooth of [false, true]) {
    it(smooth ? 'smooth v' : 'no smoothing', async () => {
      await built;
      expectOk(await run(exe, [dir, smooth ? '1' : '0']), 'emulated pv pre-pass');
      const ref = quantizeE4m3Channels(inp.v, B * Hkv, Nk, DV, smooth);
      const sv = readF32(join(dir, 'sv.bin'));
      const mean = readF32(join(dir, 'mean.bin'));
      const vt = new Uint8Array(readFileSync(join(dir, 'vt.bin')));
      expect(vt.length).toBe(B * Hkv * DV * nkPad);
      expect(chunks).toBe(3);
      let off = 0;
      for (let g = 0; g < B * Hkv; g++)
        for (let c = 0; c < DV; c++) {
          const i = g * DV + c;
          if (!smooth) {
            expect(sv[i]).toBe(ref.scales[i]);
            expect(mean[i]).toBe(0);
          } else {
            expect(Math.abs(sv[i]! - ref.scales[i]!)).toBeLessThanOrEqual(1e-5 * ref.scales[i]!);
            expect(Math.abs(mean[i]! - ref.means[i]!)).toBeLessThanOrEqual(
              1e-5 * (1 + Math.abs(ref.means[i]!)),
            );
          }
          const row = vt.subarray(i * nkPad, (i + 1) * nkPad);
          // Pad keys (their places are permuted too) code 0.
          for (let j = Nk; j < nkPad; j++) expect(row[pv8Position(j)]).toBe(0);
          for (let j = 0; j < Nk; j++) {
            const got = row[pv8Position(j)]!;
            const want = ref.codes[(g * Nk + j) * DV + c]!;
            if (got === want) continue;
            expect(smooth).toBe(true);
            // One e4m3 step apart (the f32 mean moves a quotient across a rounding boundary).
            const [x, y] = [e4m3Value(got), e4m3Value(want)];
            expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.max(Math.abs(y) / 8, 2 ** -9));
            off++;
          }
        }
      expect(off).toBeLessThan((B * Hkv * DV * Nk) / 1000);
      // The all-zero channel: scale 0, codes 0.
      expect(sv[5]).toBe(0);
      expect(Array.from(vt.subarray(5 * nkPad, 6 * nkPad)).every((x) => x === 0)).toBe(true);
      if (smooth)
        // The offset was removed: an unsmoothed channel's scale covers its offset too.
        expect(ref.scales[0]).toBeLessThan(quantizeE4m3Channels(inp.v, B * Hkv, Nk, DV, false).scales[0]!);
    });
  }
});
