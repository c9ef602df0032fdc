// Runs the tensor-core CUDA backward (codegen/cuda/backward-mma.ts) on the CPU: test/cuda/emu.ts's
// fibers-per-thread shim, with the PTX helpers (cp.async, ldmatrix, mma.sync m16n8k16) replaced by
// warp-collective C++ that follows the PTX ISA's fragment layouts, so the kernels' own index
// arithmetic, fragment reuse, tile classification and shared-memory swizzle run unchanged.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bwdBlockQ, BWD_BN, type CudaBackwardMmaArtifact } from '../../src/codegen/cuda/backward-mma.js';
import { mmaDeviceHelpers } from '../../src/codegen/cuda/mma-device.js';
import { cpAsyncLoader } from '../../src/codegen/cuda/kv-load-mma.js';
import { EMU_RUN_HEAVY_CXX_FLAGS, compileEmulation, shim } from './emu.js';
import { expectOk, run } from './support.js';

/** Warp-collective stand-ins for the PTX wrappers of mma-device.ts (inside the artifact's namespace). */
const emulatedHelpers = String.raw`
template <int W>
inline int swz(int row, int col) { return row * W + ((((col >> 3) ^ row) & 7) | ((col >> 3) & ~7)) * 8; }
inline void cp_async16(void* dst, const void* src, bool valid) { if (valid) memcpy(dst, src, 16); else memset(dst, 0, 16); }
inline void cp_commit() {}
template <int N> inline void cp_wait() {}
${cpAsyncLoader({ name: 'load_rows', swizzle: 'swz<W>(r, c * 8)', strided: false, comment: [] }).join('\n')}
inline float half_of(unsigned r, int hi) { T x; uint16_t b = (uint16_t)(hi ? r >> 16 : r & 0xffffu); memcpy(&x, &b, 2); return to_f32(x); }
inline unsigned pack2(float lo, float hi) {
  T a = from_f32(lo), b = from_f32(hi);
  uint16_t x, y; memcpy(&x, &a, 2); memcpy(&y, &b, 2);
  return (unsigned)x | ((unsigned)y << 16);
}
// ldmatrix .x4: lane i addresses row i % 8 of matrix i / 8; lane l receives row l / 4, columns
// 2(l % 4) and 2(l % 4) + 1 of each matrix (.trans: the transposed matrix's).
inline void ldsm_any(unsigned (&r)[4], const T* p, bool trans) {
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
inline void ldsm_x4(unsigned (&r)[4], const T* p) { ldsm_any(r, p, false); }
inline void ldsm_x4_t(unsigned (&r)[4], const T* p) { ldsm_any(r, p, true); }
// mma.m16n8k16.row.col: lane (g, t) holds A rows g, g+8 × k 2t.., 2t+8..; B k 2t.., 2t+8.. × n g;
// C rows g, g+8 × n 2t, 2t+1.
inline unsigned mma_regs[64][32][6];
inline void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  const unsigned me = threadIdx.x, l = me % 32, wi = me / 32;
  auto& w = emu::warps[wi];
  for (int i = 0; i < 4; ++i) mma_regs[wi][l][i] = a[i];
  mma_regs[wi][l][4] = b0;
  mma_regs[wi][l][5] = b1;
  w.bar.wait();
  auto A = [&](int row, int k) { return half_of(mma_regs[wi][(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k % 2); };
  auto B = [&](int k, int n) { return half_of(mma_regs[wi][n * 4 + (k % 8) / 2][4 + (k >= 8)], k % 2); };
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

/** Host-compilable stand-ins for the CUDA built-ins the tensor-core backward uses beyond the shim's. */
const builtins = String.raw`
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
inline float2 atomicAdd(float2* p, float2 v) { const float2 o = *p; p->x += v.x; p->y += v.y; return o; }
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline unsigned __ballot_sync(unsigned, bool p) {
  const unsigned me = threadIdx.x;
  auto& w = emu::warps[me / 32];
  w.slot[me % 32][0] = p;
  w.bar.wait();
  unsigned bits = 0;
  for (unsigned i = 0; i < w.bar.n; ++i) bits |= (unsigned)(w.slot[i][0] != 0) << i;
  w.bar.wait();
  return bits;
}
`;

export interface MmaBackwardCall {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset: number;
  readonly kOffset: number;
  readonly scale: number;
  /** q k v out dout as 16-bit storage bytes (the artifact's dtype); lse as f32. */
  readonly storage: Readonly<Record<'q' | 'k' | 'v' | 'out' | 'dout', Uint16Array>>;
  readonly lse: Float32Array;
  /** ∂L/∂lse [B·H·Nq]; absent: Args.dlse stays null. */
  readonly dlse?: Float32Array;
  readonly tensors: Readonly<Record<string, Int32Array | Float32Array>>;
  readonly params: Readonly<Record<string, number>>;
  readonly slots: number;
}

/** dq dk dv as 16-bit storage bytes, and the f32 gradient slots. */
export interface MmaBackwardResult {
  readonly dq: Uint16Array;
  readonly dk: Uint16Array;
  readonly dv: Uint16Array;
  readonly grads: Float32Array;
}

function devicePart(art: CudaBackwardMmaArtifact): string {
  const end = `} // namespace ${art.namespace}`;
  const helpers = mmaDeviceHelpers(art.dtype).join('\n');
  const code = art.code.slice(0, art.code.indexOf(end) + end.length);
  if (!code.includes(helpers))
    throw new Error('emulation: the artifact does not hold the mma helpers verbatim');
  return code
    .replace(helpers, emulatedHelpers)
    .replace('asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));', 'y = tanhf(x);')
    .replaceAll('extern __shared__ float4 smem4[];', 'float4* smem4 = emu::dyn_smem;')
    .split('\n')
    .filter((l) => !l.startsWith('#include'))
    .join('\n');
}

function driver(art: CudaBackwardMmaArtifact, c: MmaBackwardCall, dir: string): string {
  const ns = art.namespace;
  const rows = c.B * c.H * c.Nq;
  const keys = c.B * c.Hkv * c.Nk;
  const D = art.headDim;
  const threads = art.threads;
  const bytes: Record<string, number> = {
    dq: 2 * rows * D,
    dk: 2 * keys * D,
    dv: 2 * keys * art.valueDim,
    delta: 4 * rows,
    dq_acc: 4 * rows * D,
    grads: 4 * Math.max(1, c.slots),
    partials: 4 * Math.max(1, Math.ceil(c.Nq / (art.threads / 2)) * c.H * c.B * art.gradParams.length),
  };
  const ints: Record<string, number> = {
    B: c.B,
    H: c.H,
    Hkv: c.Hkv,
    Nq: c.Nq,
    Nk: c.Nk,
    q_offset: c.qOffset,
    k_offset: c.kOffset,
  };
  const lines: string[] = [];
  const summaries: string[] = [];
  const input = (name: string): ArrayBufferView | undefined =>
    name in c.storage
      ? c.storage[name as 'q']
      : name === 'lse'
        ? c.lse
        : name === 'dlse'
          ? c.dlse
          : c.tensors[name.replace(/^t_/, '')];
  for (const f of art.fields) {
    const data = input(f.name);
    if (f.name === 'dlse' && !data) continue; // null: no gradient flows into lse
    if (f.ctype.endsWith('*') && data) {
      const path = join(dir, `${f.name}.bin`);
      writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      lines.push(`  a.${f.name} = (decltype(a.${f.name}))load("${path}", ${data.byteLength});`);
    } else if (f.name.startsWith('s_')) {
      // At most one block per position, whatever the summary block: extra threads find no block.
      const blocks = c.tensors[f.name.slice(2)]!.length;
      lines.push(`  a.${f.name} = (decltype(a.${f.name}))poisoned(${8 * blocks + 8});`);
      if (blocks > 0)
        summaries.push(
          `  emu::launch(dim3{${Math.ceil(blocks / threads)}u, 1u, 1u}, ${threads}, 0, [&] { ${ns}::bwd_summary_${f.name.slice(2)}(a); });`,
        );
    } else if (f.ctype.endsWith('*')) {
      // The launcher zeroes grads and dq_acc (cudaMemsetAsync); everything else starts poisoned.
      const zero = f.name === 'grads' || f.name === 'dq_acc';
      lines.push(
        `  a.${f.name} = (decltype(a.${f.name}))${zero ? 'zeroed' : 'poisoned'}(${bytes[f.name]!});`,
      );
    } else if (f.name === 'scale') lines.push(`  a.scale = ${c.scale};`);
    else if (f.name in ints) lines.push(`  a.${f.name} = ${ints[f.name]!};`);
    else lines.push(`  a.${f.name} = (decltype(a.${f.name}))${c.params[f.name.replace(/^p_/, '')]!};`);
  }
  const save = (name: string): string =>
    `  save("${join(dir, `${name}.out`)}", (const void*)a.${name}, ${bytes[name]!});`;
  const BM = bwdBlockQ(D);
  return String.raw`
static void* poisoned(size_t bytes) { void* p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); memset(p, 0xff, bytes); return p; }
static void* zeroed(size_t bytes) { void* p = poisoned(bytes); memset(p, 0, bytes); return p; }
static void* load(const char* path, size_t bytes) {
  void* p = poisoned(bytes);
  FILE* f = fopen(path, "rb");
  if (bytes && fread(p, 1, bytes, f) != bytes) exit(3);
  fclose(f);
  return p;
}
static void save(const char* path, const void* p, size_t bytes) { FILE* f = fopen(path, "wb"); fwrite(p, 1, bytes, f); fclose(f); }
int main() {
  static_assert(${ns}::BM == ${BM} && ${ns}::BN == ${BWD_BN});
  ${ns}::Args a{};
${lines.join('\n')}
${summaries.join('\n')}
  emu::launch(dim3{${Math.ceil(rows / (threads / (art.valueDim / 8)))}u, 1u, 1u}, ${threads}, 0, [&] { ${ns}::bwd_pre(a); });
  emu::launch(dim3{${dkdvBlocks(art, c)}, ${c.Hkv}u, ${c.B}u}, ${threads}, ${art.smemBytes}, [&] { ${ns}::bwd_dkdv(a); });
${dqLaunch(art, c)}
${['dq', 'dk', 'dv', 'grads'].map(save).join('\n')}
  return 0;
}
`;
}

/** bwd_dkdv's blocks along x, as the launcher takes them: one per residue-class unit, or per key tile. */
const dkdvBlocks = (art: CudaBackwardMmaArtifact, c: MmaBackwardCall): string =>
  art.code.includes('dkdv_units(')
    ? `(unsigned)${art.namespace}::dkdv_units(a)`
    : `${Math.ceil(c.Nk / BWD_BN)}u`;

/** dq: the conversion of dq_acc, or (deterministic) bwd_dq and the ordered param reduction. */
function dqLaunch(art: CudaBackwardMmaArtifact, c: MmaBackwardCall): string {
  const ns = art.namespace;
  const t = art.threads;
  if (!art.deterministic)
    return `  emu::launch(dim3{${Math.ceil((c.B * c.H * c.Nq * art.headDim) / 8 / t)}u, 1u, 1u}, ${t}, 0, [&] { ${ns}::bwd_dq_out(a); });`;
  const tiles = Math.ceil(c.Nq / (t / 2)); // 16 rows a warp
  return [
    `  emu::launch(dim3{${tiles}u, ${c.H}u, ${c.B}u}, ${t}, ${art.dqSmemBytes}, [&] { ${ns}::bwd_dq(a); });`,
    art.gradParams.length
      ? `  emu::launch(dim3{1u, 1u, 1u}, ${t}, 0, [&] { ${ns}::bwd_reduce(a, ${tiles * c.H * c.B}); });`
      : '',
  ].join('\n');
}

export async function emulateMmaBackward(
  art: CudaBackwardMmaArtifact,
  c: MmaBackwardCall,
): Promise<MmaBackwardResult> {
  const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-mma-emu-'));
  const src = join(dir, 'bwd.emu.cpp');
  writeFileSync(src, [shim, builtins, devicePart(art), driver(art, c, dir)].join('\n'));
  const exe = join(dir, 'bwd.emu');
  await compileEmulation(src, exe, `g++ (CPU emulation of ${art.name})`, EMU_RUN_HEAVY_CXX_FLAGS);
  expectOk(await run(exe, []), `emulated ${art.name}`);
  const read = (name: string): Uint8Array => new Uint8Array(readFileSync(join(dir, `${name}.out`)));
  const u16 = (name: string): Uint16Array => {
    const u = read(name);
    return new Uint16Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
  };
  const g = read('grads');
  return {
    dq: u16('dq'),
    dk: u16('dk'),
    dv: u16('dv'),
    grads: new Float32Array(g.buffer.slice(g.byteOffset, g.byteOffset + 4 * c.slots)),
  };
}
