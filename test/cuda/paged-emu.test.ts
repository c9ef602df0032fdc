// Strided and paged K/V caches (src/codegen/cuda/kv-rows.ts) on the CUDA CPU emulator against the
// reference over the logical K/V (src/runtime/kv-cache.ts gatherKv): the SIMT prefill engine and
// the split-KV decode kernels, with random shapes (GQA, Nq ≠ Nk, partly filled last pages), a
// preallocated cache of capacity > Nk, BNHD views, and paged pools in HND and NHD page layouts
// with the pages in a random order. Every element the layout does not address is NaN, so a read
// outside the addressed rows poisons the output.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile, type Compiled } from '../../src/compile.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { rng } from '../../src/runtime/inputs.js';
import { gatherKv, scatterKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { buildEmulation, compileEmulation, emulationSource } from './emu.js';
import { EmuSpec, packedStridesCpp, type ArgField } from './emu-call.js';
import { expectOk, run, scratchDir } from './support.js';

const D = 16;
const dir = scratchDir('paged-emu');
const seed0 = process.env.CI ? 20261203 : Math.floor(Math.random() * 2 ** 31);

type LayoutKind = 'capacity' | 'bnhd' | 'hnd-pages' | 'nhd-pages';

interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly kind: LayoutKind;
  readonly seed: number;
}

/** A physical cache (NaN where nothing is addressed) and its layout, for logical K or V. */
function physical(logical: Float32Array, n: KvSizes, c: Case, P: number, r: () => number) {
  let layout: KvCacheLayout;
  let length: number;
  if (c.kind === 'capacity' || c.kind === 'bnhd') {
    const C = n.Nk + 1 + Math.floor(r() * 9);
    length = n.B * C * n.Hkv * n.W;
    const strides =
      c.kind === 'capacity'
        ? { batch: n.Hkv * C * n.W, head: C * n.W, row: n.W }
        : { batch: C * n.Hkv * n.W, head: n.W, row: n.Hkv * n.W };
    layout = { kind: 'strided', strides };
  } else {
    const maxPages = Math.ceil(n.Nk / P) + (r() < 0.5 ? 1 : 0);
    const pool = n.B * maxPages + 2;
    const ids = Array.from({ length: pool }, (_, i) => i).sort(() => r() - 0.5);
    const blockTable = Int32Array.from({ length: n.B * maxPages }, (_, i) => ids[i]!);
    const page = n.Hkv * P * n.W;
    const strides =
      c.kind === 'hnd-pages'
        ? { batch: page, head: P * n.W, row: n.W }
        : { batch: page, head: n.W, row: n.Hkv * n.W };
    layout = { kind: 'paged', pageSize: P, strides, blockTable, maxPages };
    length = pool * page;
  }
  const cache = new Float32Array(length).fill(Number.NaN);
  scatterKv(logical, cache, layout, n);
  return { cache, layout };
}

interface Prepared {
  readonly q: Float32Array;
  readonly k: { cache: Float32Array; layout: KvCacheLayout };
  readonly v: { cache: Float32Array; layout: KvCacheLayout };
  readonly ref: { out: Float32Array | Float64Array; lse: Float32Array | Float64Array; outScale: number };
}

function prepare(c: Compiled, cs: Case, P: number): Prepared {
  const r = rng(cs.seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => (Math.floor(r() * 257) - 128) / 128);
  const q = fill(cs.B * cs.H * cs.Nq * D);
  const kl = fill(cs.B * cs.Hkv * cs.Nk * D);
  const vl = fill(cs.B * cs.Hkv * cs.Nk * D);
  const n: KvSizes = { B: cs.B, Hkv: cs.Hkv, Nk: cs.Nk, W: D };
  const k = physical(kl, n, cs, P, r);
  // V shares K's block table, as the kernel's one table requires.
  const v =
    k.layout.kind === 'paged'
      ? (() => {
          const cache = new Float32Array(k.cache.length).fill(Number.NaN);
          scatterKv(vl, cache, k.layout, n);
          return { cache, layout: k.layout };
        })()
      : physical(vl, n, cs, P, r);
  // The reference reads what gatherKv takes back out of the caches.
  const sizes = { B: cs.B, H: cs.H, Hkv: cs.Hkv, Nq: cs.Nq, Nk: cs.Nk };
  const pred = declPredicates(c.decl.decl, { params: {}, tensors: {}, sizes: { ...sizes, D } });
  const ref = referenceAttention(
    {
      q,
      k: gatherKv(k.cache, k.layout, n),
      v: gatherKv(v.cache, v.layout, n),
      ...sizes,
      Hq: cs.H,
      D,
      Dv: D,
    },
    pred,
  );
  return { q, k, v, ref };
}

function expectAgrees(out: Float32Array, lse: Float32Array, p: Prepared, where: string): void {
  const o = compareArrays(out, p.ref.out, p.ref.outScale);
  expect(o.nanCount, where).toBe(0);
  expect(o.relError, where).toBeLessThanOrEqual(1e-5);
  expect(compareArrays(lse, p.ref.lse, 1).relError, where).toBeLessThanOrEqual(1e-5);
}

const strideValue = (l: KvCacheLayout, name: string): number =>
  ({ b: l.strides.batch, h: l.strides.head, n: l.strides.row })[name.at(-1)!]!;

/** The SIMT attention entry point, the launcher's one launch, with the case's caches. */
async function prefill(c: Compiled, exe: string, caseDir: string, cs: Case, p: Prepared) {
  const k = c.kernel;
  const manifest = JSON.parse(c.artifact.files![`${k.name}.json`]!);
  const spec = new EmuSpec(caseDir);
  const { B, H, Hkv, Nq, Nk } = cs;
  const sizes: Record<string, number> = { B, H, Hkv, Nq, Nk, q_offset: Nk - Nq, k_offset: 0 };
  const call = {
    ...cs,
    qOffset: cs.Nk - cs.Nq,
    kOffset: 0,
    scale: Math.fround(1 / Math.sqrt(D)),
    q: p.q,
    k: p.k.cache,
    v: p.v.cache,
    params: {},
    tensors: {},
  };
  for (const f of manifest.args.fields as ArgField[]) {
    const which = f.name.startsWith('k_') ? p.k : p.v;
    if (f.role === 'stride') spec.line(`i64 ${f.offset} ${strideValue(which.layout, f.name)}`);
    else if (f.role === 'block_table' && p.k.layout.kind === 'paged')
      spec.input('table.bin', p.k.layout.blockTable, f.offset);
    else if (f.role === 'max_pages' && p.k.layout.kind === 'paged')
      spec.line(`i32 ${f.offset} ${p.k.layout.maxPages}`);
    else if (spec.commonField(f, call, k)) continue;
    else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`paged emulation: unknown args field ${f.field} (${f.role})`);
  }
  spec.qscale(k, call.scale);
  const entry = c.artifact.entryPoints.findIndex((e) => e.role === 'attention');
  spec.line(
    `launch ${entry} ${Math.ceil(cs.Nq / k.schedule.blockQ)} ${cs.H} ${cs.B} ${k.schedule.threads} ${manifest.sharedBytes}`,
  );
  await spec.run(exe);
  return { out: new Float32Array(spec.read('out.bin')), lse: new Float32Array(spec.read('lse.bin')) };
}

/** The decode split and merge kernels in one executable; each run reads `cfg.txt` and the caches. */
async function buildDecode(c: Compiled, name: string): Promise<string> {
  const k = c.kernel;
  const ns = `attnc_${k.name}`;
  const layout = cudaLayout(k);
  const kdir = join(dir, name);
  mkdirSync(kdir, { recursive: true });
  const device = decodeSource(k, layout, ns)
    .split(DEVICE_END)[0]!
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;');
  const paged = k.formats.paged !== undefined;
  const main = `
inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
${device}
int main(int, char** argv) {
  using namespace ${ns};
  const std::string d = argv[1];
  AttncArgs_${k.name} a{};
  int split_keys = 0;
  long long lens[3];
  FILE* cfg = fopen((d + "/cfg.txt").c_str(), "r");
  if (fscanf(cfg, "%d %d %d %d %d %d %d %d", &a.B, &a.H, &a.Hkv, &a.Nq, &a.Nk, &a.q_offset, &a.k_offset, &split_keys) != 8) return 4;
  ${packedStridesCpp(k, 'a')} // q/out packed (and K/V, read next)
  if (fscanf(cfg, "%lld %lld %lld %lld %lld %lld", &a.k_stride_b, &a.k_stride_h, &a.k_stride_n, &a.v_stride_b, &a.v_stride_h, &a.v_stride_n) != 6) return 4;
  if (fscanf(cfg, "%lld %lld %lld", &lens[0], &lens[1], &lens[2]) != 3) return 4;
  ${paged ? 'if (fscanf(cfg, "%d", &a.max_pages) != 1) return 4;' : ''}
  fclose(cfg);
  a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  auto rd = [&](const char* n, size_t bytes) { void* b = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); FILE* f = fopen((d + n).c_str(), "rb"); if (bytes && fread(b, 1, bytes, f) != bytes) exit(3); fclose(f); return b; };
  a.q = rd("/q.bin", (size_t)a.B * a.H * a.Nq * D * 4);
  a.k = rd("/k.bin", lens[0] * 4);
  a.v = rd("/v.bin", lens[1] * 4);
  ${paged ? 'a.block_table = (const int*)rd("/table.bin", lens[2] * 4);' : ''}
  std::vector<float> out((size_t)a.B * a.H * a.Nq * DV, NAN), lse((size_t)a.B * a.H * a.Nq, NAN);
  a.out = out.data();
  a.lse = lse.data();
  const int packed = (a.H / a.Hkv) * a.Nq, row_tiles = (packed + dec::MT - 1) / dec::MT;
  const int n_splits = (a.Nk + split_keys - 1) / split_keys;
  std::vector<float> part((size_t)a.B * a.Hkv * row_tiles * n_splits * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{(unsigned)(n_splits * row_tiles), (unsigned)a.Hkv, (unsigned)a.B}, 128, dec::SPLIT_SMEM, [&] { dec::split_kernel(a, part.data(), split_keys, n_splits, row_tiles); });
  emu::launch(dim3{(unsigned)a.Nq, (unsigned)a.H, (unsigned)a.B}, 128, n_splits * 4, [&] { dec::merge_kernel(a, part.data(), n_splits, row_tiles); });
  FILE* f = fopen((d + "/out.bin").c_str(), "wb"); fwrite(out.data(), 4, out.size(), f); fclose(f);
  f = fopen((d + "/lse.bin").c_str(), "wb"); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  const base = emulationSource(c.artifact, k);
  const src = join(kdir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(kdir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  return exe;
}

async function decode(exe: string, caseDir: string, cs: Case, p: Prepared, splitKeys: number) {
  mkdirSync(caseDir, { recursive: true });
  const bytes = (x: Float32Array | Int32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  writeFileSync(join(caseDir, 'q.bin'), bytes(p.q));
  writeFileSync(join(caseDir, 'k.bin'), bytes(p.k.cache));
  writeFileSync(join(caseDir, 'v.bin'), bytes(p.v.cache));
  const table = p.k.layout.kind === 'paged' ? p.k.layout.blockTable : new Int32Array(0);
  writeFileSync(join(caseDir, 'table.bin'), bytes(table));
  const s = (l: KvCacheLayout) => `${l.strides.batch} ${l.strides.head} ${l.strides.row}`;
  const maxPages = p.k.layout.kind === 'paged' ? String(p.k.layout.maxPages) : '';
  const cfg = [cs.B, cs.H, cs.Hkv, cs.Nq, cs.Nk, cs.Nk - cs.Nq, 0, splitKeys].join(' ');
  const lens = `${p.k.cache.length} ${p.v.cache.length} ${table.length}`;
  writeFileSync(
    join(caseDir, 'cfg.txt'),
    `${cfg}\n${s(p.k.layout)} ${s(p.v.layout)}\n${lens}\n${maxPages}\n`,
  );
  expectOk(await run(exe, [caseDir]), exe);
  const read = (n: string) => {
    const raw = readFileSync(join(caseDir, n));
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };
  return { out: read('out.bin'), lse: read('lse.bin') };
}

const compileCuda = (source: string): Compiled =>
  compile(source, {
    target: 'cuda',
    headDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt', blockQ: 8, blockK: 16, threads: 16 },
  });

/** Random cases of one layout kind: GQA or not, Nq ≠ Nk, Nk not a multiple of the page size. */
function cases(kind: LayoutKind, count: number, salt: number, nqMax: number): Case[] {
  const r = rng(seed0 + salt);
  return Array.from({ length: count }, (_, i) => {
    const Hkv = 1 + Math.floor(r() * 2);
    const H = Hkv * (1 + Math.floor(r() * 2));
    const Nk = 1 + Math.floor(r() * 70);
    const Nq = 1 + Math.floor(r() * Math.min(nqMax, Nk));
    return { B: 1 + Math.floor(r() * 2), H, Hkv, Nq, Nk, kind, seed: seed0 + 97 * i + salt };
  });
}

describe.concurrent(`strided and paged K/V caches on the CUDA emulator (seed ${seed0})`, () => {
  const strided = `attention strided_kv() {\n  mask causal\n}`;
  const paged = (P: number) => `attention paged_kv${P}() {\n  cache paged ${P}\n  mask causal\n}`;
  const runs: [string, string, LayoutKind[], number][] = [
    ['strided', strided, ['capacity', 'bnhd'], 0],
    ['paged 4 (pages smaller than a key tile)', paged(4), ['hnd-pages', 'nhd-pages'], 4],
    ['paged 32 (pages larger than a key tile)', paged(32), ['hnd-pages', 'nhd-pages'], 32],
  ];
  for (const [label, source, kinds, P] of runs) {
    it(`SIMT prefill, ${label}`, async () => {
      const c = compileCuda(source);
      expect(c.kernel.formats.paged?.pageSize).toBe(P === 0 ? undefined : P);
      const kdir = join(dir, c.kernel.name);
      mkdirSync(kdir, { recursive: true });
      const exe = await buildEmulation(kdir, c.artifact, c.kernel);
      for (const [i, kind] of kinds.entries())
        for (const [j, cs] of cases(kind, 3, 11 * i + P, 40).entries()) {
          const p = prepare(c, cs, P);
          const caseDir = join(kdir, `${kind}-${j}`);
          mkdirSync(caseDir, { recursive: true });
          const got = await prefill(c, exe, caseDir, cs, p);
          expectAgrees(got.out, got.lse, p, `${label} ${JSON.stringify(cs)}`);
        }
    }, 600_000);

    it(`decode split-KV, ${label}`, async () => {
      const c = compileCuda(source);
      const exe = await buildDecode(c, `decode-${c.kernel.name}`);
      for (const [i, kind] of kinds.entries())
        for (const [j, cs] of cases(kind, 3, 7 * i + P + 1, 3).entries()) {
          const p = prepare(c, cs, P);
          const got = await decode(exe, join(dir, `decode-${c.kernel.name}`, `${kind}-${j}`), cs, p, 16);
          expectAgrees(got.out, got.lse, p, `decode ${label} ${JSON.stringify(cs)}`);
        }
    }, 600_000);
  }
});
