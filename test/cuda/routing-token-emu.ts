// Runs raw-query block routing in 16-bit storage (bf16) in the CPU emulator, with the tensor-core
// kernels it launches on a GPU: the tensor-core top-k (routing-topk-mma.ts) and the mma form of
// the token attention (token-attn.ts, token-mma.ts). Their inline PTX is replaced by C++ with the
// same per-lane register semantics: ldmatrix .x4 .trans, mma.sync m16n8k16 (a warp exchanges its fragments through a
// per-warp buffer, as a shuffle does, and each lane computes its four accumulators), and cp.async
// (a plain 16-byte copy; commit and wait are then no-ops). Everything else is the emitted code.
// The launcher's part (launch order, grids, shared memory) is restated from routing-host.ts,
// routing-topk-mma-host.ts and token-host.ts, as routing-emu.ts does for the f32 passes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact } from '../../src/codegen/artifact.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { isRankedBlocks, routingGroups } from '../../src/ir/routing.js';
import { compileEmulation, emulationSource } from './emu.js';
import { EmuSpec, warpIntrinsics, type ArgField, type EmuCall } from './emu-call.js';
import { INDICES_POISON } from './routing-emu.js';
import { TOKEN_END } from '../../src/codegen/cuda/token-attn.js';

/** The entry points the emulation has (the core attention is not compiled in). */
const emulated = (a: Artifact, k: AttentionKernel) =>
  a.entryPoints.filter((e) => e.name !== `attnc_${k.name}_attention`);

const shim = String.raw`
template <class T> T atomicOr(T* p, T v) { T o = *p; *p = o | v; return o; }
inline int atomicAdd(int* p, int v) { const int o = *p; *p = o + v; return o; }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warps[threadIdx.x / 32].bar.wait(); }
${warpIntrinsics}
#define __align__(n) alignas(n)
inline dim3 emu_grid;
#define gridDim emu_grid
inline bool __any_sync(unsigned m, bool p) { return __ballot_sync(m, p) != 0u; }
inline int emu_block_or;
inline int __syncthreads_or(int p) {
  emu::block_bar.wait();
  if (threadIdx.x == 0) emu_block_or = 0;
  emu::block_bar.wait();
  if (p) emu_block_or = 1;
  emu::block_bar.wait();
  const int r = emu_block_or;
  emu::block_bar.wait();
  return r;
}
// uint4 (the ranking's 128-bit query loads) and uint2 (its split keys' stores), as CUDA's vector types.
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
struct alignas(8) uint2 { unsigned x, y; };
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline unsigned emu_frag[32][32][6];
// mma.sync m16n8k16 (row.col, f32 accumulators) for storage type S: lane L holds A[r][k] at
// register (r >= 8) + 2 (k % 16 >= 8) of lane (r % 8) * 4 + (k % 8) / 2, half k % 2; B[k][n] at
// b(k % 16 >= 8) of lane n * 4 + (k % 8) / 2; C[r][n] at c[2 (r >= 8) + n % 2] of lane (r % 8) * 4 + (n % 8) / 2.
template <class S, class F>
void emu_mma(float (&c)[4], const unsigned (&x)[4], unsigned b0, unsigned b1, F to_float) {
  const unsigned me = threadIdx.x, lane = me % 32;
  unsigned* mine = emu_frag[me / 32][lane];
  for (int i = 0; i < 4; ++i) mine[i] = x[i];
  mine[4] = b0;
  mine[5] = b1;
  emu::warps[me / 32].bar.wait();
  auto half = [&](unsigned l, int reg, int hi) {
    const unsigned u = emu_frag[me / 32][l][reg];
    const uint16_t bits = (uint16_t)(hi ? u >> 16 : u & 0xffffu);
    S s;
    memcpy(&s, &bits, 2);
    return to_float(s);
  };
  auto A = [&](int r, int k) { return half((r % 8) * 4 + (k % 8) / 2, (r >= 8) + 2 * (k >= 8), k % 2); };
  auto B = [&](int k, int n) { return half(n * 4 + (k % 8) / 2, 4 + (k >= 8), k % 2); };
  const int gq = lane / 4, t4 = lane % 4;
  for (int e = 0; e < 4; ++e) {
    const int r = gq + 8 * (e >> 1), n = 2 * t4 + (e & 1);
    float acc = c[e];
    for (int k = 0; k < 16; ++k) acc += A(r, k) * B(k, n);
    c[e] = acc;
  }
  emu::warps[me / 32].bar.wait();
}
inline const void* emu_rows[32][32];
// ldmatrix .x4: lane l gives the address of row l % 8 of matrix l / 8; register m of lane t gets
// (row t / 4, columns 2 (t % 4) and 2 (t % 4) + 1) of matrix m.
template <class S> void emu_ldsm(unsigned (&r)[4], const S* p) {
  const unsigned me = threadIdx.x, lane = me % 32;
  emu_rows[me / 32][lane] = p;
  emu::warps[me / 32].bar.wait();
  for (int m = 0; m < 4; ++m) {
    const S* row = static_cast<const S*>(emu_rows[me / 32][8 * m + lane / 4]);
    const S two[2] = {row[2 * (lane % 4)], row[2 * (lane % 4) + 1]};
    memcpy(&r[m], two, 4);
  }
  emu::warps[me / 32].bar.wait();
}
// ldmatrix .x4 .trans: lane l gives the address of row l % 8 of matrix l / 8; register m of lane t
// gets (row 2 (t % 4), column t / 4) and (row 2 (t % 4) + 1, column t / 4) of matrix m.
template <class S> void emu_ldsm_t(unsigned (&r)[4], const S* p) {
  const unsigned me = threadIdx.x, lane = me % 32;
  emu_rows[me / 32][lane] = p;
  emu::warps[me / 32].bar.wait();
  for (int m = 0; m < 4; ++m) {
    const S* r0 = static_cast<const S*>(emu_rows[me / 32][8 * m + 2 * (lane % 4)]);
    const S* r1 = static_cast<const S*>(emu_rows[me / 32][8 * m + 2 * (lane % 4) + 1]);
    const S two[2] = {r0[lane / 4], r1[lane / 4]};
    memcpy(&r[m], two, 4);
  }
  emu::warps[me / 32].bar.wait();
}
`;

/** The PTX helpers, replaced by their emulation (names and parameters as emitted). */
const ptxHelpers: readonly (readonly [RegExp, string])[] = [
  [
    /__device__ __forceinline__ void (tok_mma|route_mma)\(float \(&c\)\[4\], const unsigned \(&x\)\[4\], const unsigned b0, const unsigned b1\) \{\n  asm[\s\S]*?\n\}/g,
    '__device__ __forceinline__ void $1(float (&c)[4], const unsigned (&x)[4], const unsigned b0, const unsigned b1) { emu_mma<T>(c, x, b0, b1, [](T s) { return to_f32(s); }); }',
  ],
  [
    /__device__ __forceinline__ void tok_cp16\(T\* dst, const T\* src\) \{[\s\S]*?\n\}/,
    '__device__ __forceinline__ void tok_cp16(T* dst, const T* src) { memcpy(dst, src, 16); }',
  ],
  [
    /__device__ __forceinline__ void route_ldsm\(unsigned \(&r\)\[4\], const T\* p\) \{[\s\S]*?\n\}/,
    '__device__ __forceinline__ void route_ldsm(unsigned (&r)[4], const T* p) { emu_ldsm<T>(r, p); }',
  ],
  [
    /__device__ __forceinline__ void route_cp16\(float\* dst, const float\* src\) \{[\s\S]*?\n\}/,
    '__device__ __forceinline__ void route_cp16(float* dst, const float* src) { memcpy(dst, src, 16); }',
  ],
  [
    /__device__ __forceinline__ void route_cp_commit\(\) \{[^\n]*\}/,
    '__device__ __forceinline__ void route_cp_commit() {}',
  ],
  [
    /__device__ __forceinline__ void route_cp_wait_all\(\) \{[^\n]*\}/,
    '__device__ __forceinline__ void route_cp_wait_all() {}',
  ],
  [
    /template <int N> __device__ __forceinline__ void tok_cp_wait\(\) \{[\s\S]*?\n\}/,
    'template <int N> __device__ __forceinline__ void tok_cp_wait() {}',
  ],
  [
    /__device__ __forceinline__ void tok_cp_commit\(\) \{[^\n]*\}/,
    '__device__ __forceinline__ void tok_cp_commit() {}',
  ],
  [
    /__device__ __forceinline__ void tok_ldsm_t\(unsigned \(&r\)\[4\], const T\* p\) \{[\s\S]*?\n\}/,
    '__device__ __forceinline__ void tok_ldsm_t(unsigned (&r)[4], const T* p) { emu_ldsm_t<T>(r, p); }',
  ],
];

const dynamicShared: readonly (readonly [string, string])[] = [
  [
    'extern __shared__ __align__(16) unsigned char route_tc_smem_raw[];',
    'unsigned char* route_tc_smem_raw = reinterpret_cast<unsigned char*>(emu::dyn_smem);',
  ],
  [
    'extern __shared__ __align__(16) unsigned char tok_smem[];',
    'unsigned char* tok_smem = reinterpret_cast<unsigned char*>(emu::dyn_smem);',
  ],
  // The SIMT top-k (for topk above ROUTE_KMAX).
  ['extern __shared__ float4 route_smem4[];', 'float4* route_smem4 = emu::dyn_smem;'],
];

/** Reads `constexpr int NAME = <int>;` from the emitted device code. */
function constant(code: string, name: string): number {
  const m = new RegExp(`constexpr (?:int|unsigned) ${name} = (\\d+);`).exec(code);
  if (!m) throw new Error(`token emulation: no constant ${name} in the emitted code`);
  return Number(m[1]);
}

/** Compiles the emulation of a raw-query routing artifact in bf16 storage; returns the executable. */
export async function buildTokenEmulation(dir: string, a: Artifact, k: AttentionKernel): Promise<string> {
  // The core attention (the fallback for unaligned pointers) is tensor-core PTX throughout: cut.
  const code = a.code.slice(0, a.code.indexOf(TOKEN_END)) + `} // namespace attnc_${k.name}\n`;
  let src = emulationSource({ ...a, code, entryPoints: emulated(a, k) }, k);
  const at = src.indexOf(`// attnc kernel "${k.name}"`);
  src = src.slice(0, at) + shim + src.slice(at);
  for (const [from, to] of ptxHelpers) {
    if (src.search(from) < 0) throw new Error(`token emulation: no match for ${from}`);
    src = src.replace(from, to);
  }
  // Every kernel declaring it (the key-major passes too) gets the launch's dynamic memory.
  for (const [from, to] of dynamicShared) {
    if (!src.includes(from)) throw new Error(`token emulation: no "${from}"`);
    src = src.replaceAll(from, to);
  }
  // gridDim: the grid of the launch.
  if (!src.includes('emu::launch(grid,'))
    throw new Error('token emulation: no emu::launch(grid, in the driver');
  src = src.replaceAll('emu::launch(grid,', 'emu_grid = grid, emu::launch(grid,');
  // indices is read (poison) and written back, so that an unwritten id shows up.
  src = src
    .replace('k == "in" || k == "out"', 'k == "in" || k == "out" || k == "io"')
    .replace('if (k == "in") {', 'if (k != "out") {')
    .replace('else outs.push_back(', 'if (k != "in") outs.push_back(');
  const path = join(dir, `${k.name}.emu.cpp`);
  writeFileSync(path, src);
  const exe = join(dir, `${k.name}.emu`);
  await compileEmulation(path, exe, `g++ (emulation of ${k.name})`);
  return exe;
}

/** f32 → bf16 bits, round to nearest even (NaN stays NaN). */
export function toBf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (w) =>
    (w & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (w + 0x7fff + ((w >>> 16) & 1)) >>> 16,
  );
}

/** bf16 bits → f32. */
export function fromBf16Bits(b: Uint16Array): Float32Array {
  return new Float32Array(Uint32Array.from(b, (h) => h << 16).buffer);
}

const cdiv = (x: number, y: number): number => Math.ceil(x / y);
const floorDiv = (x: number, y: number): number => Math.floor(x / y);

/** Whether the artifact runs the key-major token attention (Schedule.tokenOrder 'key'). */
export const keyMajor = (a: Artifact): boolean => a.entryPoints.some((e) => e.name.endsWith('_tkm_attn'));

/** Floats of route_scratch: the pooled keys, and with key-major tkm_layout's parts (an upper bound). */
function scratchFloats(a: Artifact, c: TokenCall, cap: number, RB: number, D: number, DV: number): number {
  const { B, H, Hkv, Nq, Nk } = c;
  const nkbs = cdiv(Nk, RB) + 1;
  const pooled = B * Hkv * nkbs * D;
  if (!keyMajor(a)) return pooled;
  const chunk = constant(a.code, 'TKM_CHUNK');
  return (
    pooled +
    B * Hkv * cdiv(Nq, chunk) * nkbs +
    2 * B * Hkv * (nkbs + 1) +
    B * H * Nq * cap * (2 + DV / 2) +
    24
  );
}

/** The key-major launches, restated from token-keymajor-host.ts. */
function keyMajorLaunches(
  a: Artifact,
  c: TokenCall,
  cap: number,
  sz: { RB: number; nkbs: number; D: number; DV: number },
  entry: (suffix: string) => number,
  launch: (i: number, grid: readonly number[], threads: number, smem?: number) => void,
): void {
  const { B, H, Hkv, Nq } = c;
  const chunks = [cdiv(Nq, constant(a.code, 'TKM_CHUNK')), Hkv, B];
  launch(entry('tkm_count'), chunks, 128, 4 * sz.nkbs);
  launch(entry('tkm_scan'), [1, Hkv, B], 1024);
  launch(entry('tkm_scatter'), chunks, 32, 4 * sz.nkbs);
  const warps = constant(a.code, 'TKM_WARPS');
  const rows = 16 * warps * constant(a.code, 'TKM_TILES');
  const units = Math.floor((Nq * (H / Hkv) * cap) / rows) + sz.nkbs + 1;
  const smem = 2 * constant(a.code, 'TKM_BK') * (sz.D + 8 + sz.DV + 8);
  launch(entry('tkm_attn'), [units, Hkv, B], 32 * warps, smem);
  launch(entry('tkm_merge'), [cdiv(B * H * Nq, 4), 1, 1], 128);
}

export interface TokenCall extends EmuCall {
  readonly counts: readonly [number, number, number];
}

/** Runs pool_k → top-k (tensor cores when topk ≤ ROUTE_KMAX) → token attention on bf16 q, k, v. */
export async function runTokenRouting(
  exe: string,
  dir: string,
  a: Artifact,
  kern: AttentionKernel,
  c: TokenCall,
): Promise<{ indices: Int32Array; out: Float32Array; lse: Float32Array }> {
  mkdirSync(dir, { recursive: true });
  const r = kern.routing!;
  if (!isRankedBlocks(r) || r.source.q !== 'raw')
    throw new Error('token emulation: not raw-query block routing');
  const D = kern.schedule.headDim;
  const DV = kern.schedule.valueDim;
  const { B, H, Hkv, Nq, Nk, qOffset, kOffset } = c;
  const RB = r.unit.size;
  const G = { H, Hkv, '1': 1 }[routingGroups(r)];
  const cap = c.counts[0] + c.counts[1] + c.counts[2];
  const nkb = Nk > 0 ? floorDiv(kOffset + Nk - 1, RB) - floorDiv(kOffset, RB) + 1 : 0;
  const manifest = JSON.parse(a.files![`${kern.name}.json`]!);
  const spec = new EmuSpec(dir);
  const sizes: Record<string, number> = { B, H, Hkv, Nq, Nk, q_offset: qOffset, k_offset: kOffset };
  for (const f of manifest.args.fields as ArgField[]) {
    if (f.role === 'q' || f.role === 'k' || f.role === 'v')
      spec.input(f.role, toBf16Bits(c[f.role]), f.offset);
    else if (f.role === 'out') spec.output(f.offset, B * H * Nq * DV * 2, 'out.bin');
    else if (f.role === 'indices')
      spec.input('idx.bin', new Int32Array(B * G * Nq * cap).fill(INDICES_POISON), f.offset, 'io');
    else if (f.role === 'scratch')
      spec.output(f.offset, 4 * scratchFloats(a, c, cap, RB, D, DV), 'scratch.bin');
    else if (spec.commonField(f, c, kern)) continue;
    else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`token emulation: unknown args field ${f.field} (${f.role})`);
  }
  spec.qscale(kern, c.scale);
  const entry = (suffix: string): number => {
    const i = emulated(a, kern).findIndex((e) => e.name === `attnc_${kern.name}_${suffix}`);
    if (i < 0) throw new Error(`token emulation: no entry point ${suffix}`);
    return i;
  };
  const launch = (i: number, grid: readonly number[], threads: number, smem = 0): void => {
    if (grid.every((x) => x > 0)) spec.line(`launch ${i} ${grid.join(' ')} ${threads} ${smem}`);
  };
  if (Nq > 0) {
    spec.summaries(a, kern, c);
    launch(entry('route_pool_k'), [nkb, Hkv, B], 128);
    const ktop = c.counts[0];
    // route_tc_smem: the f32 chunk, split keys, four lists per row and their lengths, vote statistics.
    const nv = r.source.vote === 'heads' ? H : r.source.vote === 'groups' ? H / Hkv : 1;
    const MQ = 16 * constant(a.code, 'ROUTE_WARPS');
    const KC = constant(a.code, 'ROUTE_KC');
    const tcSmem =
      4 * KC * D + 2 * 2 * KC * (D + 8) + 8 * MQ * 4 * ktop + 16 * MQ + (r.source.vote ? 8 * MQ * nv : 0);
    if (cap > 0 && ktop <= constant(a.code, 'ROUTE_KMAX') && tcSmem <= 227 * 1024) {
      launch(entry('route_topk_tc'), [cdiv(Nq, MQ), G, B], 2 * MQ, tcSmem);
    } else if (cap > 0) {
      const UT = constant(a.code, 'ROUTE_UT');
      const smem = 4 * (UT * D + UT * nkb * (r.source.vote ? 2 : 1) + 2 * UT);
      launch(entry('route_topk'), [cdiv(Nq, UT), G, B], 128, smem);
    }
    if (keyMajor(a)) keyMajorLaunches(a, c, cap, { RB, nkbs: cdiv(Nk, RB) + 1, D, DV }, entry, launch);
    else {
      const warps = constant(a.code, 'TOK_WARPS');
      const BK = constant(a.code, 'TOK_BK');
      const smem = warps * 2 * BK * (D + 8 + DV + 8);
      launch(entry('token_attn'), [cdiv(Nq * (H / Hkv), 16 * warps), Hkv, B], 32 * warps, smem);
    }
  }
  await spec.run(exe);
  return {
    indices: new Int32Array(spec.read('idx.bin')),
    out: fromBf16Bits(new Uint16Array(spec.read('out.bin'))),
    lse: new Float32Array(spec.read('lse.bin')),
  };
}
