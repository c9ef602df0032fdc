// Runs a CUDA `quantize` kernel (src/codegen/cuda/quantize.ts) on the CPU through the emulator's
// shim (test/cuda/emu.ts): the device code, the args struct from the header lines, and a driver
// that loads each tensor from a file, runs the passes in the launcher's order and writes them back.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeHeaderLines } from '../../src/codegen/cuda/quantize-host.js';
import {
  quantizeDevice,
  quantizeNamespace,
  quantizeStruct,
  type QuantizeSpec,
} from '../../src/codegen/cuda/quantize.js';
import type { QuantCache, StoredFloats } from '../../src/quant/layout.js';
import { compileEmulation, shim } from '../cuda/emu.js';
import { expectOk, run } from '../cuda/support.js';

/** CUDA intrinsics the quantize kernels use beyond the shim (the CPU's f32 ops round correctly). */
const intrinsics = String.raw`
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
inline unsigned short __half_as_ushort(__half h) { unsigned short u; memcpy(&u, &h, 2); return u; }
inline __half __ushort_as_half(unsigned short u) { __half h; memcpy(&h, &u, 2); return h; }
using std::signbit;
using std::isinf;
`;

/** The tensors of one call, by struct field (x and salient are inputs; the others in and out). */
export type QuantizeBuffers = Record<string, Uint8Array>;

const passes = ['norm_pass', 'scale_pass', 'code_pass', 'recent_pass'] as const;

function driver(s: QuantizeSpec): string {
  const device = quantizeDevice(s);
  const present = passes.filter((p) => device.includes(`void __launch_bounds__(256) ${p}(`));
  const fields = [
    'x',
    'block_table',
    'salient',
    'codes',
    'codes_hi',
    'scale',
    'zero',
    'norm',
    'recent',
  ].filter((f) => quantizeHeaderLines([s]).some((l) => new RegExp(`\\b${f};`).test(l)));
  const S = quantizeStruct(s);
  const ns = quantizeNamespace(s);
  return String.raw`
static std::vector<std::pair<std::string, std::vector<unsigned char>>> bufs;
static void* load(const std::string& dir, const char* name) {
  FILE* f = fopen((dir + "/" + name + ".bin").c_str(), "rb");
  std::vector<unsigned char> v;
  if (f) { int c; while ((c = fgetc(f)) != EOF) v.push_back((unsigned char)c); fclose(f); }
  v.resize(v.size() + 64);
  bufs.push_back({name, std::move(v)});
  return bufs.back().second.data();
}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  bufs.reserve(16);
  ${S} a{};
  a.B = atoi(argv[2]); a.Hkv = atoi(argv[3]); a.Nk = atoi(argv[4]); a.start = atoi(argv[5]); a.n = atoi(argv[6]);
  ${s.format.kind === 'int' && s.format.salient?.by === 'index' ? 'a.salient_n = atoi(argv[7]);' : ''}
  ${s.paged ? 'a.max_pages = atoi(argv[8]); a.pages = atoi(argv[9]);' : ''}
${fields.map((f) => `  a.${f} = (decltype(a.${f}))load(dir, "${f}");`).join('\n')}
  gridDim.x = 1;
${present.map((p) => `  emu::launch(gridDim, 256, 0, [&] { ${ns}::${p}(a); });`).join('\n')}
  for (auto& [name, v] : bufs) {
    FILE* f = fopen((dir + "/" + name + ".out").c_str(), "wb");
    fwrite(v.data(), 1, v.size() - 64, f);
    fclose(f);
  }
  return 0;
}
`;
}

/** Builds the emulation of spec `s` in `dir`; returns the executable. */
export async function buildQuantizeEmulation(dir: string, s: QuantizeSpec): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'quantize.emu.cpp');
  const header = quantizeHeaderLines([s]).join('\n');
  writeFileSync(src, [shim, intrinsics, header, quantizeDevice(s), driver(s)].join('\n'));
  const exe = join(dir, 'quantize.emu');
  await compileEmulation(src, exe, 'g++ (CPU emulation of quantize)');
  return exe;
}

const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const floatsBytes = (t: StoredFloats | undefined): Uint8Array | undefined => t && bytes(t.data);

/** The buffers of a call: the source rows, salient marks, and the cache's tensors before it. */
export function callBuffers(
  x: Float32Array | Uint16Array,
  before: QuantCache,
  salient?: Int32Array,
): QuantizeBuffers {
  const out: QuantizeBuffers = { x: bytes(x), codes: bytes(before.codes) };
  if (salient) out.salient = bytes(salient);
  if (before.codesHi) out.codes_hi = bytes(before.codesHi);
  for (const [field, t] of [
    ['scale', before.scale],
    ['zero', before.zero],
    ['norm', before.norm],
    ['recent', before.recent],
  ] as const) {
    const b = floatsBytes(t);
    if (b) out[field] = b;
  }
  return out;
}

/** Runs one call: writes the buffers, runs, returns every buffer after it. */
export async function runQuantize(
  exe: string,
  dir: string,
  buffers: QuantizeBuffers,
  sizes: {
    B: number;
    Hkv: number;
    Nk: number;
    start: number;
    n: number;
    salientN?: number;
    /** A paged cache's block table columns and pool pages (buffers.block_table holds the table). */
    maxPages?: number;
    pages?: number;
  },
): Promise<QuantizeBuffers> {
  mkdirSync(dir, { recursive: true });
  for (const [name, b] of Object.entries(buffers)) writeFileSync(join(dir, `${name}.bin`), b);
  const args = [
    dir,
    sizes.B,
    sizes.Hkv,
    sizes.Nk,
    sizes.start,
    sizes.n,
    sizes.salientN ?? 0,
    sizes.maxPages ?? 0,
    sizes.pages ?? 0,
  ].map(String);
  expectOk(await run(exe, args), `emulated quantize ${exe}`);
  return Object.fromEntries(
    Object.keys(buffers).map((name) => [name, new Uint8Array(readFileSync(join(dir, `${name}.out`)))]),
  );
}
