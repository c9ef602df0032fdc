// Runs the tensor-core decode kernel (src/codegen/cuda/decode-mma.ts) on the CPU: emu.ts's
// fibers-per-thread shim, with its PTX wrappers (ldmatrix .x4 / .trans, mma.sync m16n8k16, the
// f32 → 16-bit pair packing) replaced by warp-collective C++ that follows the PTX ISA's fragment
// layouts (as backward-mma-emu.ts does for the backward), so the kernel's own fragment index math,
// padded shared-memory rows, online softmax and warp combine run unchanged.
import { mmaPtx } from '../../src/codegen/cuda/decode-mma.js';
import { mmaF16Ptx } from '../../src/codegen/cuda/decode-mma-quant.js';

/** Warp-level stand-ins for mmaPtx (inside namespace dec, after T, to_f32, from_f32). */
export const decodeMmaStandIns = String.raw`
inline float dm_half(unsigned r, int hi) { T x; uint16_t b = (uint16_t)(hi ? r >> 16 : r & 0xffffu); memcpy(&x, &b, 2); return to_f32(x); }
inline unsigned dm_pack(float lo, float hi) {
  T a = from_f32(lo), b = from_f32(hi);
  uint16_t x, y; memcpy(&x, &a, 2); memcpy(&y, &b, 2);
  return (unsigned)x | ((unsigned)y << 16);
}
// ldmatrix .x4: lane i addresses row i % 8 of matrix i / 8; lane l receives row l / 4, columns
// 2(l % 4) and 2(l % 4) + 1 of each matrix (.trans: of the transposed matrix).
inline void dm_ldsm_any(unsigned (&r)[4], const T* p, bool trans) {
  const unsigned me = threadIdx.x, l = me % 32;
  auto& w = emu::warps[me / 32];
  memcpy(w.slot[l], &p, sizeof p);
  w.bar.wait();
  for (int m = 0; m < 4; ++m) {
    const T* rows[8];
    for (int i = 0; i < 8; ++i) memcpy(&rows[i], w.slot[m * 8 + i], sizeof(const T*));
    T lo = trans ? rows[2 * (l % 4)][l / 4] : rows[l / 4][2 * (l % 4)];
    T hi = trans ? rows[2 * (l % 4) + 1][l / 4] : rows[l / 4][2 * (l % 4) + 1];
    uint16_t x, y; memcpy(&x, &lo, 2); memcpy(&y, &hi, 2);
    r[m] = (unsigned)x | ((unsigned)y << 16);
  }
  w.bar.wait();
}
inline void dm_ldsm(unsigned (&r)[4], const T* p) { dm_ldsm_any(r, p, false); }
inline void dm_ldsm_t(unsigned (&r)[4], const T* p) { dm_ldsm_any(r, p, true); }
// mma.m16n8k16.row.col: lane (g, t) holds A rows g, g+8 × k 2t.., 2t+8..; B k 2t.., 2t+8.. × n g;
// C rows g, g+8 × n 2t, 2t+1.
inline unsigned dm_regs[64][32][6];
inline void dm_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  const unsigned me = threadIdx.x, l = me % 32, wi = me / 32;
  auto& w = emu::warps[wi];
  for (int i = 0; i < 4; ++i) dm_regs[wi][l][i] = a[i];
  dm_regs[wi][l][4] = b0;
  dm_regs[wi][l][5] = b1;
  w.bar.wait();
  auto A = [&](int row, int k) { return dm_half(dm_regs[wi][(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k % 2); };
  auto B = [&](int k, int n) { return dm_half(dm_regs[wi][n * 4 + (k % 8) / 2][4 + (k >= 8)], k % 2); };
  const int g = l / 4, t = l % 4;
  float out[4];
  for (int e = 0; e < 4; ++e) {
    float acc = c[e];
    for (int k = 0; k < 16; ++k) acc += A(g + 8 * (e >> 1), k) * B(k, 2 * t + (e & 1));
    out[e] = acc;
  }
  w.bar.wait();
  for (int e = 0; e < 4; ++e) c[e] = out[e];
}
`;

/** The decode device code with the PTX wrappers swapped for the stand-ins (throws if they are not found). */
export function withStandIns(device: string, dtype: 'f16' | 'bf16'): string {
  const ptx = mmaPtx(dtype).join('\n');
  if (!device.includes(ptx))
    throw new Error('decode-mma-emu: the PTX wrappers of decode-mma.ts were not found');
  return device.replace(ptx, decodeMmaStandIns);
}

/** The f16 mma.sync of the quantized path (decode-mma-quant.ts), warp-level (any kernel dtype). */
export const decodeMmaF16StandIn = String.raw`
inline unsigned dmh_regs[64][32][6];
inline float dmh_half(unsigned r, int hi) { const unsigned short b = (unsigned short)(hi ? r >> 16 : r & 0xffffu); return dq_half(&b, 0); }
inline void dm_mma_h(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  const unsigned me = threadIdx.x, l = me % 32, wi = me / 32;
  auto& w = emu::warps[wi];
  for (int i = 0; i < 4; ++i) dmh_regs[wi][l][i] = a[i];
  dmh_regs[wi][l][4] = b0;
  dmh_regs[wi][l][5] = b1;
  w.bar.wait();
  auto A = [&](int row, int k) { return dmh_half(dmh_regs[wi][(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k % 2); };
  auto B = [&](int k, int n) { return dmh_half(dmh_regs[wi][n * 4 + (k % 8) / 2][4 + (k >= 8)], k % 2); };
  const int g = l / 4, t = l % 4;
  float out[4];
  for (int e = 0; e < 4; ++e) {
    float acc = c[e];
    for (int k = 0; k < 16; ++k) acc += A(g + 8 * (e >> 1), k) * B(k, 2 * t + (e & 1));
    out[e] = acc;
  }
  w.bar.wait();
  for (int e = 0; e < 4; ++e) c[e] = out[e];
}
`;

/** The quantized kernel's device code with its f16 mma swapped for the stand-in. */
export function withQuantStandIns(device: string): string {
  const ptx = mmaF16Ptx.join('\n');
  if (!device.includes(ptx))
    throw new Error('decode-mma-emu: the f16 mma of decode-mma-quant.ts was not found');
  return device.replace(ptx, decodeMmaF16StandIn);
}

/**
 * What the emulated block needs beside the kernels (C++ before the device code): atomicAdd, and
 * __syncthreads_or through the block barrier (fibers run one at a time: collect, read, reset).
 */
export const EMU_BLOCK_HELPERS = String.raw`inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
inline int emu_or_acc = 0;
inline int __syncthreads_or(int p) {
  if (p) emu_or_acc = 1;
  emu::block_bar.wait();
  const int r = emu_or_acc;
  emu::block_bar.wait();
  if (threadIdx.x == 0) emu_or_acc = 0;
  emu::block_bar.wait();
  return r;
}`;

/** main()'s `rd(path, bytes)`: a file's bytes in a 64-byte aligned, padded buffer (exit 3 when short). */
export const EMU_READ_FILE = String.raw`auto rd = [](const char* p, size_t n) { void* b = aligned_alloc(64, (n + 63) / 64 * 64 + 64); FILE* f = fopen(p, "rb"); if (n && fread(b, 1, n, f) != n) exit(3); fclose(f); return b; };`;
