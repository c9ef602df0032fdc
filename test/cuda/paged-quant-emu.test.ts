// Paged quantized K/V caches (`cache paged P` + `store`, docs/LANGUAGE.md "Paged quantized caches")
// on the CUDA CPU emulator against the oracle over the contiguous cache: the SIMT prefill engine
// and the split-KV decode kernels read codes, wide salient codes, per-token scales and per-channel
// group scales from pools of pages in a random order through the block table (kv-rows.ts's
// kv_qrow); every pool element no token addresses is poisoned (NaN scales, all-ones codes).
// Random formats × page sizes × partly filled last pages × GQA × Nq ≠ Nk × decode Nq.
import fc from 'fast-check';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaCacheParts } from '../../src/codegen/cuda/dequant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile, type Compiled } from '../../src/compile.js';
import { checkedFormats, type Granularity, type QuantFormat } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng, type StoredInputs } from '../../src/runtime/inputs.js';
import { gatherQuantPages, pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { formatArb } from '../quant/arbitrary.js';
import { quantizeSpecs } from '../../src/codegen/cuda/quantize-host.js';
import { emptyPool } from '../quant/paged-quantize-support.js';
import { buildQuantizeEmulation, callBuffers, runQuantize } from '../quant/quantize-emu.js';
import { storeStatement, withFlaggedSalient } from '../quant/format-source.js';
import { buildEmulation, compileEmulation, emulationSource, runEmulation } from './emu.js';
import { packedStrideLine } from './emu-call.js';
import { expectOk, run, scratchDir } from './support.js';

interface Shape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

const seed0 = process.env.CI ? 20261204 : Math.floor(Math.random() * 2 ** 31);
const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** `f` with a per-channel token group that divides a page of P rows (a power of two ≤ P). */
function pageable(f: QuantFormat, P: number): QuantFormat {
  const per = f.scale?.per;
  if (!f.scale || per?.kind !== 'channel' || !per.group) return f;
  const group = Math.min(P, 2 ** Math.floor(Math.log2(per.group)));
  return { ...f, scale: { ...f.scale, per: { kind: 'channel', group } as Granularity } } as QuantFormat;
}

/** A block table over a shuffled pool, one spare page per batch at random and two unused pages. */
function randomPages(s: Shape, P: number, r: () => number): QuantPages {
  const maxPages = Math.ceil(s.Nk / P) + (r() < 0.5 ? 1 : 0);
  const pages = s.B * maxPages + 2;
  const ids = Array.from({ length: pages }, (_, i) => i).sort(() => r() - 0.5);
  return {
    pageSize: P,
    maxPages,
    pages,
    blockTable: Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!),
  };
}

interface Case {
  readonly q: Float32Array;
  readonly stored: StoredInputs;
  /** The caches as pools of pages. */
  readonly pools: { k?: QuantCache; v?: QuantCache };
  readonly pages: QuantPages;
  readonly ref: { out: ArrayLike<number>; lse: ArrayLike<number>; outScale: number };
}

function prepare(c: Compiled, s: Shape, D: number, P: number, seed: number): Case {
  const rand = rng(seed);
  const formats = checkedFormats(c.decl);
  const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand);
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  const pages = randomPages(s, P, rand);
  const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
  const pools: { k?: QuantCache; v?: QuantCache } = {};
  for (const w of ['k', 'v'] as const) {
    const f = formats[w];
    const cache = stored.caches[w];
    if (!f || !cache) continue;
    pools[w] = pageQuantCache(f, cache, sizes, pages);
    // The pool holds exactly the cache: gathering it back gives every tensor unchanged.
    const back = gatherQuantPages(f, pools[w]!, sizes, pages);
    for (const [name, held] of Object.entries(cache))
      expect(bytesOf(ArrayBuffer.isView(held) ? held : held.data), `${w}.${name} round trip`).toEqual(
        bytesOf(((x) => (ArrayBuffer.isView(x) ? x : x.data))(back[name as keyof QuantCache]!)),
      );
  }
  const marks = stored.salient.sal;
  const empty = new Float32Array(0);
  const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
  const tensors: EvalEnv['tensors'] = marks ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } } : {};
  const ref = referenceStoredDecl(c.decl, inp, { params: {}, tensors, sizes: { ...s, D } }, stored.caches);
  return { q, stored, pools, pages, ref };
}

/** A pool tensor (`codes` for the k / v pointers) of cache `which`. */
function poolPart(cs: Case, which: 'k' | 'v', name: string): ArrayBufferView {
  const held = cs.pools[which]?.[name as keyof QuantCache];
  if (held === undefined) throw new Error(`test: pool ${which} has no ${name}`);
  return ArrayBuffer.isView(held) ? held : held.data;
}

function expectAgrees(out: Float32Array, lse: Float32Array, cs: Case, what: string): void {
  const o = compareArrays(out, cs.ref.out, cs.ref.outScale);
  expect(o.nanCount, what).toBe(0);
  expect(o.relError, what).toBeLessThan(2e-5);
  expect(compareArrays(lse, cs.ref.lse, 1).relError, what).toBeLessThan(2e-5);
}

const kernelSource = (tag: string, store: string, P: number): string => {
  const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  return `attention pq${tag}(${params}) {\n  cache paged ${P}\n  ${store}\n  mask causal\n}`;
};

/** The SIMT engine's prefill over one case, its args from the manifest. */
async function prefill(exe: string, dir: string, c: Compiled, s: Shape, D: number, cs: Case) {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(dir, name);
    writeFileSync(path, bytesOf(data));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const scale = Math.fround(1 / Math.sqrt(D));
  const sizes: Record<string, number> = { ...s, q_offset: s.Nk - s.Nq, k_offset: 0, scale };
  for (const f of manifest.args.fields as { name: string; role: string; ctype: string; offset: number }[]) {
    if (f.role === 'q') input('q', f.offset, cs.q);
    else if (f.role === 'k' || f.role === 'v') input(f.role, f.offset, poolPart(cs, f.role, 'codes'));
    else if (f.role === 'cache') {
      const [which, name] = f.name.split('_') as ['k' | 'v', string];
      input(f.name, f.offset, poolPart(cs, which, name));
    } else if (f.role === 'tensor') input(f.name, f.offset, cs.stored.salient.sal!.data);
    else if (f.role === 'block_table') input('table', f.offset, cs.pages.blockTable);
    else if (f.role === 'max_pages') spec.push(`i32 ${f.offset} ${cs.pages.maxPages}`);
    else if (f.role === 'stride')
      spec.push(`i64 ${f.offset} 0`); // a quantized cache takes none
    else if (f.role === 'out')
      spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * D * 4} ${join(dir, 'out.bin')}`);
    else if (f.role === 'lse') spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * 4} ${join(dir, 'lse.bin')}`);
    else if (f.role === 'qo_stride') spec.push(packedStrideLine(f as never, c.kernel, s)!);
    else if (f.name in sizes) spec.push(`${f.ctype} ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`paged quant emulation: unknown args field ${f.name} (${f.role})`);
  }
  spec.push(`qscale ${scale * Math.LOG2E}`);
  const sched = c.kernel.schedule;
  const entry = c.artifact.entryPoints.findIndex((e) => e.role === 'attention');
  spec.push(
    `launch ${entry} ${Math.ceil(s.Nq / sched.blockQ)} ${s.H} ${s.B} ${sched.threads} ${manifest.sharedBytes}`,
  );
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(dir, 'spec.txt'));
  const read = (name: string): Float32Array => {
    const u = new Uint8Array(readFileSync(join(dir, name)));
    return new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4);
  };
  return { out: read('out.bin'), lse: read('lse.bin') };
}

/** The decode split and merge kernels in one executable reading a spec of buffers and sizes. */
async function buildDecode(c: Compiled, dir: string): Promise<{ exe: string; inputs: string[] }> {
  const kernel = c.kernel;
  const ns = `attnc_${kernel.name}`;
  const layout = cudaLayout(kernel);
  const fld = (key: string) => layout.field(key);
  const device = decodeSource(kernel, layout, ns)
    .split(DEVICE_END)[0]!
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;');
  const formats = checkedFormats(c.decl);
  const inputs: string[] = ['q', 'k', 'v'];
  for (const which of ['k', 'v'] as const) {
    const f = formats[which];
    if (f) for (const { part } of cudaCacheParts(f)) inputs.push(`cache:${which}_${part}`);
  }
  if (c.decl.decl.params.some((p) => p.name === 'sal')) inputs.push('tensor:sal');
  inputs.push('block_table');
  const main = `
inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
${device}
int main(int argc, char** argv) {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  FILE* spec = fopen(argv[1], "r");
  auto rd = [&]() { size_t n; char path[4096]; if (fscanf(spec, "%zu %4095s", &n, path) != 2) exit(4); void* b = aligned_alloc(64, (n + 63) / 64 * 64 + 64); FILE* f = fopen(path, "rb"); if (n && fread(b, 1, n, f) != n) exit(3); fclose(f); return b; };
  ${inputs.map((k) => `a.${fld(k)} = static_cast<decltype(a.${fld(k)})>(rd());`).join('\n  ')}
  int split_keys, n_splits, row_tiles;
  if (fscanf(spec, "%d %d %d %d %d %d %d %d %d", &a.B, &a.H, &a.Hkv, &a.Nq, &a.Nk, &split_keys, &n_splits, &row_tiles, &a.max_pages) != 9) exit(5);
  a.q_offset = a.Nk - a.Nq; a.k_offset = 0; a.scale = 1.f / sqrtf((float)D);
  a.${fld('q_stride_n')} = D; a.${fld('q_stride_h')} = (long long)a.Nq * D; a.${fld('q_stride_b')} = (long long)a.H * a.Nq * D;
  a.${fld('out_stride_n')} = DV; a.${fld('out_stride_h')} = (long long)a.Nq * DV; a.${fld('out_stride_b')} = (long long)a.H * a.Nq * DV;
  std::vector<float> out((size_t)a.B * a.H * a.Nq * DV, NAN), lse((size_t)a.B * a.H * a.Nq, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  std::vector<float> part((size_t)a.B * a.Hkv * row_tiles * n_splits * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{(unsigned)(n_splits * row_tiles), (unsigned)a.Hkv, (unsigned)a.B}, 128, dec::SPLIT_SMEM, [&] { dec::split_kernel(a, part.data(), split_keys, n_splits, row_tiles); });
  emu::launch(dim3{(unsigned)a.Nq, (unsigned)a.H, (unsigned)a.B}, 128, n_splits * 4, [&] { dec::merge_kernel(a, part.data(), n_splits, row_tiles); });
  char path[4096];
  if (fscanf(spec, "%4095s", path) != 1) exit(6);
  FILE* f = fopen(path, "wb"); fwrite(out.data(), 4, out.size(), f); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  mkdirSync(dir, { recursive: true });
  const base = emulationSource(c.artifact, kernel);
  const src = join(dir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  return { exe, inputs };
}

async function decode(
  built: { exe: string; inputs: string[] },
  dir: string,
  s: Shape,
  D: number,
  cs: Case,
  splitKeys: number,
) {
  mkdirSync(dir, { recursive: true });
  const data = (key: string): ArrayBufferView => {
    if (key === 'q') return cs.q;
    if (key === 'tensor:sal') return cs.stored.salient.sal!.data;
    if (key === 'block_table') return cs.pages.blockTable;
    if (key === 'k' || key === 'v') return poolPart(cs, key, 'codes');
    const [which, name] = key.slice(6).split('_') as ['k' | 'v', string];
    return poolPart(cs, which, name);
  };
  const spec = built.inputs.map((key, j) => {
    const path = join(dir, `in${j}.bin`);
    writeFileSync(path, bytesOf(data(key)));
    return `${data(key).byteLength} ${path}`;
  });
  const rowTiles = Math.ceil(((s.H / s.Hkv) * s.Nq) / 4);
  const nSplits = Math.ceil(s.Nk / splitKeys);
  const outPath = join(dir, 'out.bin');
  spec.push(
    `${s.B} ${s.H} ${s.Hkv} ${s.Nq} ${s.Nk} ${splitKeys} ${nSplits} ${rowTiles} ${cs.pages.maxPages}`,
    outPath,
  );
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  expectOk(await run(built.exe, [join(dir, 'spec.txt')]), `${built.exe}`);
  const raw = new Uint8Array(readFileSync(outPath));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const nOut = s.B * s.H * s.Nq * D;
  return { out: all.subarray(0, nOut), lse: all.subarray(nOut) };
}

const fixedStores: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 4 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  'store k int2 scale f16 per channel group 8 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  'store k e4m3\n  store v e5m2 scale f16 per channel',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
];

/** Random shapes: GQA or not, Nq ≠ Nk, Nk mostly not a multiple of the page size. */
function shapes(count: number, salt: number, nqMax: number): Shape[] {
  const r = rng(seed0 + salt);
  return Array.from({ length: count }, () => {
    const Hkv = 1 + Math.floor(r() * 2);
    const H = Hkv * (1 + Math.floor(r() * 2));
    const Nk = 1 + Math.floor(r() * 60);
    return { B: 1 + Math.floor(r() * 2), H, Hkv, Nq: 1 + Math.floor(r() * Math.min(nqMax, Nk)), Nk };
  });
}

const D = 16;
const dir = scratchDir('paged-quant-emu');

async function runBoth(tag: string, store: string, P: number, salt: number): Promise<void> {
  const simt = compile(kernelSource(`s${tag}`, store, P), {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt', blockQ: 8, blockK: 16, threads: 16 },
  });
  expect(simt.kernel.formats.paged?.pageSize).toBe(P);
  const kdir = join(dir, simt.kernel.name);
  mkdirSync(kdir, { recursive: true });
  const exe = await buildEmulation(kdir, simt.artifact, simt.kernel);
  for (const [i, s] of shapes(2, salt, 20).entries()) {
    const cs = prepare(simt, s, D, P, seed0 + salt * 31 + i);
    const got = await prefill(exe, join(kdir, `case${i}`), simt, s, D, cs);
    expectAgrees(got.out, got.lse, cs, `prefill P ${P} ${store} ${JSON.stringify(s)}`);
  }
  const dc = compile(kernelSource(`d${tag}`, store, P), {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype: 'f32',
  });
  const built = await buildDecode(dc, join(dir, dc.kernel.name));
  for (const [i, s] of shapes(2, salt + 1, 4).entries()) {
    const cs = prepare(dc, s, D, P, seed0 + salt * 37 + i);
    const got = await decode(built, join(dir, dc.kernel.name, `case${i}`), s, D, cs, 16 * (1 + (i % 2)));
    expectAgrees(got.out, got.lse, cs, `decode P ${P} ${store} ${JSON.stringify(s)}`);
  }
}

/**
 * The case's pools as the kernel's own paged quantize kernels (emulated) write them from the raw
 * f32 rows into empty pools; they must be byte-equal to the scattered contiguous caches.
 */
async function poolsByQuantize(c: Compiled, cs: Case, s: Shape, where: string): Promise<Case> {
  const pools: { k?: QuantCache; v?: QuantCache } = {};
  for (const spec of quantizeSpecs(c.kernel)) {
    const w = spec.cache;
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
    const marks = cs.stored.salient.sal;
    const before = emptyPool(spec.format, sizes, cs.pages, marks);
    const exe = await buildQuantizeEmulation(join(where, `q${w}`), spec);
    const got = await runQuantize(
      exe,
      join(where, `q${w}`, 'run'),
      {
        ...callBuffers(cs.stored.raw[w]!, before, marks?.data),
        block_table: bytesOf(cs.pages.blockTable),
      },
      {
        ...sizes,
        start: 0,
        n: s.Nk,
        salientN: marks?.n ?? 0,
        maxPages: cs.pages.maxPages,
        pages: cs.pages.pages,
      },
    );
    const want = callBuffers(new Float32Array(0), cs.pools[w]!);
    for (const [name, bytes] of Object.entries(want))
      if (name !== 'x') expect(got[name], `${w}.${name}`).toEqual(bytes);
    const pool: Record<string, unknown> = {};
    for (const [name, held] of Object.entries(cs.pools[w]!)) {
      const b = got[name === 'codesHi' ? 'codes_hi' : name]!;
      const data = ArrayBuffer.isView(held) ? held : held.data;
      const copy = new (data.constructor as new (buf: ArrayBuffer) => ArrayBufferView)(b.slice().buffer);
      pool[name] = ArrayBuffer.isView(held) ? copy : { dtype: held.dtype, data: copy };
    }
    pools[w] = pool as unknown as QuantCache;
  }
  return { ...cs, pools };
}

describe('pools written by the paged quantize kernels decode as the contiguous quantize', () => {
  it.each([fixedStores[1]!, fixedStores[2]!, fixedStores[4]!])(
    '%s',
    async (store) => {
      const dc = compile(kernelSource(`w${fixedStores.indexOf(store)}`, store, 8), {
        target: 'cuda',
        headDim: D,
        valueDim: D,
        dtype: 'f32',
      });
      const kdir = join(dir, dc.kernel.name);
      const built = await buildDecode(dc, kdir);
      const s: Shape = { B: 2, H: 4, Hkv: 2, Nq: 2, Nk: 45 };
      const cs = await poolsByQuantize(dc, prepare(dc, s, D, 8, seed0 + 7), s, kdir);
      const got = await decode(built, join(kdir, 'case'), s, D, cs, 16);
      expectAgrees(got.out, got.lse, cs, `decode over quantize-kernel pools, ${store}`);
    },
    600_000,
  );
});

describe.concurrent(`paged quantized K/V caches on the CUDA emulator (seed ${seed0})`, () => {
  fixedStores.forEach((store, p) =>
    it(`${store.replace(/\n\s*/g, '; ')} (pages of 8 and 32)`, async () => {
      await runBoth(`${p}_8`, store, 8, 10 * p);
      await runBoth(`${p}_32`, store, 32, 10 * p + 5);
    }, 600_000),
  );

  it('random formats for k and v over random page sizes', async () => {
    const seed = process.env.CI ? 11 : seed0 % 100_000;
    const cases = fc.sample(
      fc.record({
        k: formatArb.map(withFlaggedSalient),
        v: formatArb.map(withFlaggedSalient),
        P: fc.constantFrom(1, 2, 4, 8, 16, 64),
      }),
      { numRuns: 3, seed },
    );
    for (const [i, r] of cases.entries()) {
      const store = `${storeStatement('k', pageable(r.k, r.P))}\n  ${storeStatement('v', pageable(r.v, r.P))}`;
      await runBoth(`r${i}`, store, r.P, 100 + 7 * i);
    }
  }, 900_000);
});
