// Runs the device code of a CUDA artifact on the CPU, so that CI (which has no GPU) executes the
// kernels it compile-checks. A small shim maps CUDA's block model onto fibers (ucontext): one
// per CUDA thread, barriers per block for __syncthreads and per warp for shuffles, __shared__ as
// function statics (blocks run one after another). Host code (the launcher) is cut off; the
// driver below plays its part from a spec file the test writes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact } from '../../src/codegen/artifact.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { expectOk, run } from './support.js';
import { EMU_SHIM_INCLUDES } from '../support/emu-pch.js';

/**
 * g++ flags of an emulation build. -O0: the builds outnumber the runs (one build, a few short
 * runs), and -O1 cost about 60% more compile time for a few percent less run time (measured on
 * a routing emulation: 1.52 s vs 0.93 s user to build, 0.09 s vs 0.11 s to run a case, outputs
 * bit-identical: x86-64 SSE arithmetic rounds the same at any -O, and the shim has no
 * _Float16 arithmetic, only conversions).
 */
export const EMU_CXX_FLAGS: readonly string[] = ['-std=c++20', '-O0', '-w'];

/**
 * For emulations whose runs outweigh their build (the backward's: many cases of several kernels
 * each): -O1. backward-mma-emu + backward-residue-emu: 84 s of test time at -O1, 110 s at -O0.
 */
export const EMU_RUN_HEAVY_CXX_FLAGS: readonly string[] = ['-std=c++20', '-O1', '-w'];

// The block of standard headers first: test/support/emu-pch.ts precompiles it.
export const shim =
  EMU_SHIM_INCLUDES +
  String.raw`using std::max;
using std::min;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
typedef void* cudaStream_t;
struct dim3 { unsigned x = 1, y = 1, z = 1; };
dim3 threadIdx, blockIdx, gridDim;
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
template <class T> inline T __ldg(const T* p) { return *p; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline int __float2int_rz(float x) {
  if (x != x) return 0;
  if (x >= 2147483648.f) return INT_MAX;
  if (x <= -2147483648.f) return INT_MIN;
  return (int)x;
}
struct __nv_bfloat16 { uint16_t bits; };
inline float __bfloat162float(__nv_bfloat16 x) { uint32_t u = (uint32_t)x.bits << 16; float f; memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u; memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {0x7fc0};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {(uint16_t)(u >> 16)};
}
struct __half { _Float16 h; };
inline float __half2float(__half x) { return (float)x.h; }
inline __half __float2half_rn(float f) { return {(_Float16)f}; }
namespace emu {
// Cooperative fibers: one per CUDA thread, all on one OS thread. A barrier yields until its
// generation moves on, so warps and blocks synchronise without OS context switches. A fiber
// starts with setcontext on its own stack; afterwards _setjmp/_longjmp switch, which (unlike
// swapcontext) save no signal mask: no system call per switch, where swapcontext's
// rt_sigprocmask took two thirds of an emulation's run time. Each launch maps its stacks fresh:
// zero pages, as the zero-filled vectors were, but only the pages a fiber touches.
struct Fiber { ucontext_t ctx; jmp_buf jb; bool started = false, done = false; };
inline jmp_buf sched;
inline std::vector<Fiber>* fibers;
inline unsigned current;
inline std::function<void()>* body;
inline void yield() { if (!_setjmp((*fibers)[current].jb)) _longjmp(sched, 1); }
struct Barrier {
  unsigned n = 0, count = 0, gen = 0;
  void wait() {
    if (++count == n) { count = 0; ++gen; return; }
    const unsigned g = gen;
    while (gen == g) yield();
  }
};
struct Warp { Barrier bar; alignas(8) unsigned char slot[32][8]; };
inline Barrier block_bar;
inline std::vector<Warp> warps;
inline float4* dyn_smem;
inline void entry() { (*body)(); (*fibers)[current].done = true; _longjmp(sched, 1); }
// Runs fiber t until it yields or ends.
inline void resume(unsigned t) {
  Fiber& fb = (*fibers)[t];
  if (_setjmp(sched)) return;
  if (!fb.started) { fb.started = true; setcontext(&fb.ctx); }
  _longjmp(fb.jb, 1);
}
template <class F> void launch(dim3 grid, unsigned threads, size_t smem, F fn) {
  std::vector<float4> dyn(smem / 16 + 1);
  memset(dyn.data(), 0xff, dyn.size() * sizeof(float4)); // garbage, as on a GPU
  dyn_smem = dyn.data();
  std::function<void()> f = fn;
  body = &f;
  std::vector<Fiber> fs(threads);
  fibers = &fs;
  constexpr size_t STACK = 256 * 1024;
  const size_t stack_bytes = STACK * threads;
  void* const stacks = mmap(nullptr, stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (stacks == MAP_FAILED) { perror("mmap (fiber stacks)"); exit(4); }
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        block_bar = Barrier{threads};
        warps.assign((threads + 31) / 32, Warp{});
        for (unsigned w = 0; w < warps.size(); ++w) warps[w].bar.n = std::min(32u, threads - 32 * w);
        for (unsigned t = 0; t < threads; ++t) {
          Fiber& fb = fs[t];
          fb.started = fb.done = false;
          getcontext(&fb.ctx);
          fb.ctx.uc_stack.ss_sp = static_cast<char*>(stacks) + STACK * t;
          fb.ctx.uc_stack.ss_size = STACK;
          fb.ctx.uc_link = nullptr; // entry() never returns: it jumps back to the scheduler
          makecontext(&fb.ctx, entry, 0);
        }
        blockIdx = {x, y, z};
        gridDim = grid;
        for (bool alive = true; alive;) {
          alive = false;
          for (unsigned t = 0; t < threads; ++t) {
            if (fs[t].done) continue;
            current = t;
            threadIdx = {t, 0, 0};
            resume(t);
            alive = alive || !fs[t].done;
          }
        }
      }
  munmap(stacks, stack_bytes);
}
}  // namespace emu
inline void __syncthreads() { emu::block_bar.wait(); }
template <class V> V __shfl_xor_sync(unsigned, V v, int off) {
  const unsigned me = threadIdx.x;
  auto& w = emu::warps[me / 32];
  memcpy(w.slot[me % 32], &v, sizeof v);
  w.bar.wait();
  V r;
  memcpy(&r, w.slot[(me % 32) ^ off], sizeof r);
  w.bar.wait();
  return r;
}
`;

const driver = (struct: string, calls: readonly string[]) => String.raw`
// Spec lines: "i32|f32|i64 OFFSET VALUE", "in|out OFFSET BYTES PATH", "qscale VALUE",
// "launch ENTRY GX GY GZ THREADS SMEM".
int main(int argc, char** argv) {
  alignas(16) static unsigned char args[sizeof(${struct})];
  float qscale = 1.f;
  std::vector<std::pair<std::string, std::pair<void*, size_t>>> outs;
  FILE* f = fopen(argv[1], "r");
  char kind[16], path[4096];
  while (fscanf(f, "%15s", kind) == 1) {
    std::string k = kind;
    if (k == "i64") {
      size_t off; long long x; fscanf(f, "%zu %lld", &off, &x);
      memcpy(args + off, &x, 8);
    } else if (k == "i32" || k == "f32") {
      size_t off; double v; fscanf(f, "%zu %lf", &off, &v);
      if (k == "i32") { int x = (int)v; memcpy(args + off, &x, 4); } else { float x = (float)v; memcpy(args + off, &x, 4); }
    } else if (k == "in" || k == "out" || k == "io") { // io: read, then written back after the launches
      size_t off, bytes; fscanf(f, "%zu %zu %4095s", &off, &bytes, path);
      void* p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
      memset(p, 0xff, bytes); // poison: NaN in every float format
      if (k != "out") { FILE* g = fopen(path, "rb"); if (bytes && fread(p, 1, bytes, g) != bytes) return 3; fclose(g); }
      if (k != "in") outs.push_back({path, {p, bytes}});
      memcpy(args + off, &p, sizeof p);
    } else if (k == "qscale") {
      fscanf(f, "%f", &qscale);
    } else if (k == "launch") {
      int entry; dim3 grid; unsigned threads; size_t smem;
      fscanf(f, "%d %u %u %u %u %zu", &entry, &grid.x, &grid.y, &grid.z, &threads, &smem);
      const ${struct}& a = *reinterpret_cast<const ${struct}*>(args);
      switch (entry) {
${calls.map((c, i) => `        case ${i}: emu::launch(grid, threads, smem, [&] { ${c}; }); break;`).join('\n')}
      }
    }
  }
  for (auto& [path, buf] : outs) { FILE* g = fopen(path.c_str(), "wb"); fwrite(buf.first, 1, buf.second, g); fclose(g); }
  return 0;
}
`;

/** The .cu's device part (up to the end of its namespace) made host-compilable, plus a driver. */
export function emulationSource(a: Artifact, k: AttentionKernel): string {
  const ns = `attnc_${k.name}`;
  const end = a.code.indexOf(`} // namespace ${ns}`);
  const device = a.code
    .slice(0, end + `} // namespace ${ns}`.length)
    .split('\n')
    .filter((l) => !l.startsWith('#include'))
    .join('\n')
    .replace('extern __shared__ float4 smem4[];', 'float4* smem4 = emu::dyn_smem;');
  const calls = a.entryPoints.map((e) =>
    e.role === 'attention' ? `${ns}::${e.name}(a, qscale)` : `${ns}::${e.name}(a)`,
  );
  return [shim, device, driver(`AttncArgs_${k.name}`, calls)].join('\n');
}

/**
 * g++ of an emulation source into `exe` (EMU_CXX_FLAGS unless `flags`), a failure reported as
 * `label`: every emulation builds here, so the flag choice lives in one place.
 */
export async function compileEmulation(
  src: string,
  exe: string,
  label = `g++ ${src}`,
  flags: readonly string[] = EMU_CXX_FLAGS,
): Promise<void> {
  expectOk(await run('g++', [...flags, src, '-o', exe]), label);
}

/** Compiles the emulation of `a` in `dir`; returns the executable's path. */
export async function buildEmulation(dir: string, a: Artifact, k: AttentionKernel): Promise<string> {
  const src = join(dir, `${k.name}.emu.cpp`);
  writeFileSync(src, emulationSource(a, k));
  const exe = join(dir, `${k.name}.emu`);
  await compileEmulation(src, exe, `g++ (CPU emulation of ${k.name})`);
  return exe;
}

/** Runs the emulation on a spec file (see the driver above). */
export async function runEmulation(exe: string, specPath: string): Promise<void> {
  expectOk(await run(exe, [specPath]), `emulated kernel ${exe}`);
}
