// Salient tokens given as an index list (`salient E from t`, t: i32[batch, kv_heads, N]) on CUDA:
// the launcher's pre-pass scatters the list into the `<t>_flags` workspace (salient-list.ts) and
// every dequantizing load reads the flag. On the CPU emulator against the oracle, which reads
// the list itself (quant/marks.ts): SIMT prefill and split-KV decode, packed and paged caches,
// lists with padding (-1), repeats and out-of-range entries, in random order; the workspace
// starts poisoned (non-zero everywhere), so a missing or partial pre-pass shows.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaCacheParts } from '../../src/codegen/cuda/dequant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile, type Compiled } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { buildEmulation, compileEmulation, emulationSource, runEmulation } from './emu.js';
import { packedStrideLine } from './emu-call.js';
import { expectOk, run, scratchDir, quickCheckFlags } from './support.js';

const D = 16;
const dir = scratchDir('salient-list-emu');
const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const POISON = 0x5a5a5a5a;

interface Shape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

const source = (tag: string, store: string, P?: number): string =>
  `attention sl${tag}(nsal: int = 4, sal: i32[batch, kv_heads, nsal]) {\n${P ? `  cache paged ${P}\n` : ''}  ${store}\n  mask causal\n}`;

interface Case {
  readonly q: Float32Array;
  readonly list: Int32Array;
  readonly n: number;
  readonly caches: { k?: QuantCache; v?: QuantCache };
  readonly pages?: QuantPages;
  readonly ref: { out: ArrayLike<number>; lse: ArrayLike<number>; outScale: number };
}

function prepare(c: Compiled, s: Shape, P: number | undefined, seed: number): Case {
  const rand = rng(seed);
  const formats = checkedFormats(c.decl);
  const n = 1 + Math.floor(rand() * Math.max(1, Math.ceil(s.Nk / 3)));
  const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand, () => n);
  const marks = stored.salient.sal!;
  expect(marks.by).toBe('index');
  // Padding becomes padding, repeats and out-of-range entries: the same salient tokens.
  const list = Int32Array.from(marks.data, (x, i) => {
    if (x >= 0) return x;
    const pick = rand();
    const first = marks.data[i - (i % n)]!;
    return pick < 0.3 ? -1 - Math.floor(rand() * 5) : pick < 0.6 ? s.Nk + Math.floor(rand() * 4) : first;
  });
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  let caches = stored.caches;
  let pages: QuantPages | undefined;
  if (P !== undefined) {
    const maxPages = Math.ceil(s.Nk / P) + 1;
    const count = s.B * maxPages + 1;
    const ids = Array.from({ length: count }, (_, i) => i).sort(() => rand() - 0.5);
    pages = {
      pageSize: P,
      maxPages,
      pages: count,
      blockTable: Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!),
    };
    const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
    caches = {
      ...(formats.k && stored.caches.k
        ? { k: pageQuantCache(formats.k, stored.caches.k, sizes, pages) }
        : {}),
      ...(formats.v && stored.caches.v
        ? { v: pageQuantCache(formats.v, stored.caches.v, sizes, pages) }
        : {}),
    };
  }
  const empty = new Float32Array(0);
  const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
  const env = {
    params: { nsal: n },
    tensors: { sal: { data: list, shape: [s.B, s.Hkv, n] } },
    sizes: { ...s, D },
  };
  const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
  return { q, list, n, caches, ...(pages ? { pages } : {}), ref };
}

function part(cs: Case, which: 'k' | 'v', name: string): ArrayBufferView {
  const held = cs.caches[which]?.[name as keyof QuantCache];
  if (held === undefined) throw new Error(`test: cache ${which} has no ${name}`);
  return ArrayBuffer.isView(held) ? held : held.data;
}

function expectAgrees(out: Float32Array, lse: Float32Array, cs: Case, what: string): void {
  const o = compareArrays(out, cs.ref.out, cs.ref.outScale);
  expect(o.nanCount, what).toBe(0);
  expect(o.relError, what).toBeLessThan(2e-5);
  expect(compareArrays(lse, cs.ref.lse, 1).relError, what).toBeLessThan(2e-5);
}

async function prefill(exe: string, at: string, c: Compiled, s: Shape, cs: Case) {
  mkdirSync(at, { recursive: true });
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(at, name);
    writeFileSync(path, bytesOf(data));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const scale = Math.fround(1 / Math.sqrt(D));
  const sizes: Record<string, number> = { ...s, q_offset: s.Nk - s.Nq, k_offset: 0, scale, nsal: cs.n };
  for (const f of manifest.args.fields as { name: string; role: string; ctype: string; offset: number }[]) {
    if (f.role === 'q') input('q', f.offset, cs.q);
    else if (f.role === 'k' || f.role === 'v') input(f.role, f.offset, part(cs, f.role, 'codes'));
    else if (f.role === 'cache') {
      const [which, name] = f.name.split('_') as ['k' | 'v', string];
      input(f.name, f.offset, part(cs, which, name));
    } else if (f.role === 'tensor') input(f.name, f.offset, cs.list);
    else if (f.role === 'workspace') input(f.name, f.offset, new Int32Array(s.B * s.Hkv * s.Nk).fill(POISON));
    else if (f.role === 'block_table') input('table', f.offset, cs.pages!.blockTable);
    else if (f.role === 'max_pages') spec.push(`i32 ${f.offset} ${cs.pages!.maxPages}`);
    else if (f.role === 'stride') spec.push(`i64 ${f.offset} 0`);
    else if (f.role === 'out')
      spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * D * 4} ${join(at, 'out.bin')}`);
    else if (f.role === 'lse') spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * 4} ${join(at, 'lse.bin')}`);
    else if (f.role === 'qo_stride') spec.push(packedStrideLine(f as never, c.kernel, s)!);
    else if (f.name in sizes) spec.push(`${f.ctype} ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`salient list emulation: unknown args field ${f.name} (${f.role})`);
  }
  spec.push(`qscale ${scale * Math.LOG2E}`);
  const sched = c.kernel.schedule;
  c.artifact.entryPoints.forEach((e, i) => {
    if (e.name.includes('_salient_')) spec.push(`launch ${i} ${s.Hkv} ${s.B} 1 256 0`);
    else if (e.role === 'attention')
      spec.push(
        `launch ${i} ${Math.ceil(s.Nq / sched.blockQ)} ${s.H} ${s.B} ${sched.threads} ${manifest.sharedBytes}`,
      );
  });
  writeFileSync(join(at, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(at, 'spec.txt'));
  const read = (name: string): Float32Array => {
    const u = new Uint8Array(readFileSync(join(at, name)));
    return new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4);
  };
  return { out: read('out.bin'), lse: read('lse.bin') };
}

async function buildDecode(c: Compiled, at: string): Promise<{ exe: string; inputs: string[] }> {
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
    if (f) for (const { part: p } of cudaCacheParts(f)) inputs.push(`cache:${which}_${p}`);
  }
  inputs.push('tensor:sal', 'salient:sal', ...(kernel.formats.paged ? ['block_table'] : []));
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
  if (fscanf(spec, "%d %d %d %d %d %d %d %d %d %d", &a.B, &a.H, &a.Hkv, &a.Nq, &a.Nk, &split_keys, &n_splits, &row_tiles, &a.${fld('param:nsal')}, ${kernel.formats.paged ? `&a.max_pages` : '&split_keys'}) != 10) exit(5);
  a.q_offset = a.Nk - a.Nq; a.k_offset = 0; a.scale = 1.f / sqrtf((float)D);
  a.${fld('q_stride_n')} = D; a.${fld('q_stride_h')} = (long long)a.Nq * D; a.${fld('q_stride_b')} = (long long)a.H * a.Nq * D;
  a.${fld('out_stride_n')} = DV; a.${fld('out_stride_h')} = (long long)a.Nq * DV; a.${fld('out_stride_b')} = (long long)a.H * a.Nq * DV;
  std::vector<float> out((size_t)a.B * a.H * a.Nq * DV, NAN), lse((size_t)a.B * a.H * a.Nq, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  emu::launch(dim3{(unsigned)a.Hkv, (unsigned)a.B}, 256, 0, [&] { attnc_${kernel.name}_salient_sal(a); });
  std::vector<float> part((size_t)a.B * a.Hkv * row_tiles * n_splits * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{(unsigned)(n_splits * row_tiles), (unsigned)a.Hkv, (unsigned)a.B}, 128, dec::SPLIT_SMEM, [&] { dec::split_kernel(a, part.data(), split_keys, n_splits, row_tiles); });
  emu::launch(dim3{(unsigned)a.Nq, (unsigned)a.H, (unsigned)a.B}, 128, n_splits * 4, [&] { dec::merge_kernel(a, part.data(), n_splits, row_tiles); });
  char path[4096];
  if (fscanf(spec, "%4095s", path) != 1) exit(6);
  FILE* f = fopen(path, "wb"); fwrite(out.data(), 4, out.size(), f); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  mkdirSync(at, { recursive: true });
  const base = emulationSource(c.artifact, kernel);
  const src = join(at, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(at, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  return { exe, inputs };
}

async function decode(
  built: { exe: string; inputs: string[] },
  at: string,
  s: Shape,
  cs: Case,
  splitKeys: number,
) {
  mkdirSync(at, { recursive: true });
  const data = (key: string): ArrayBufferView => {
    if (key === 'q') return cs.q;
    if (key === 'tensor:sal') return cs.list;
    if (key === 'salient:sal') return new Int32Array(s.B * s.Hkv * s.Nk).fill(POISON);
    if (key === 'block_table') return cs.pages!.blockTable;
    if (key === 'k' || key === 'v') return part(cs, key, 'codes');
    const [which, name] = key.slice(6).split('_') as ['k' | 'v', string];
    return part(cs, which, name);
  };
  const spec = built.inputs.map((key, j) => {
    const path = join(at, `in${j}.bin`);
    writeFileSync(path, bytesOf(data(key)));
    return `${data(key).byteLength} ${path}`;
  });
  const rowTiles = Math.ceil(((s.H / s.Hkv) * s.Nq) / 4);
  const nSplits = Math.ceil(s.Nk / splitKeys);
  const outPath = join(at, 'out.bin');
  spec.push(
    `${s.B} ${s.H} ${s.Hkv} ${s.Nq} ${s.Nk} ${splitKeys} ${nSplits} ${rowTiles} ${cs.n} ${cs.pages?.maxPages ?? splitKeys}`,
    outPath,
  );
  writeFileSync(join(at, 'spec.txt'), spec.join('\n') + '\n');
  expectOk(await run(built.exe, [join(at, 'spec.txt')]), built.exe);
  const raw = new Uint8Array(readFileSync(outPath));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const nOut = s.B * s.H * s.Nq * D;
  return { out: all.subarray(0, nOut), lse: all.subarray(nOut) };
}

const stores: readonly string[] = [
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
  'store k int4 scale f32 per token group 8 salient int8 from sal recent 4 f16\n  store v int8 scale f16 per token',
];

const shapes: readonly Shape[] = [
  { B: 2, H: 4, Hkv: 2, Nq: 9, Nk: 41 },
  { B: 1, H: 3, Hkv: 1, Nq: 3, Nk: 66 },
];

describe('CUDA salient tokens from an index list (CPU emulation)', () => {
  for (const [p, store] of stores.entries())
    for (const P of [undefined, 8] as const)
      it(`${store.replace(/\n\s*/g, '; ')}${P ? ` (paged ${P})` : ''}: prefill and decode`, async () => {
        const tag = `${p}${P ?? 0}`;
        const simt = compile(source(`s${tag}`, store, P), {
          target: 'cuda',
          headDim: D,
          dtype: 'f32',
          schedule: { engine: 'simt', blockQ: 8, blockK: 16, threads: 16 },
        });
        expect(simt.artifact.entryPoints[0]!.name).toBe(`attnc_${simt.kernel.name}_salient_sal`);
        const kdir = join(dir, simt.kernel.name);
        mkdirSync(kdir, { recursive: true });
        const exe = await buildEmulation(kdir, simt.artifact, simt.kernel);
        for (const [i, s] of shapes.entries()) {
          const cs = prepare(simt, s, P, 100 * p + i + (P ?? 0));
          const got = await prefill(exe, join(kdir, `case${i}`), simt, s, cs);
          expectAgrees(got.out, got.lse, cs, `prefill ${store} ${JSON.stringify(s)}`);
        }
        const dc = compile(source(`d${tag}`, store, P), { target: 'cuda', headDim: D, dtype: 'f32' });
        const built = await buildDecode(dc, join(dir, dc.kernel.name));
        for (const [i, s] of shapes.entries()) {
          const cs = prepare(dc, { ...s, Nq: Math.min(s.Nq, 2) }, P, 200 * p + i + (P ?? 0));
          const got = await decode(
            built,
            join(dir, dc.kernel.name, `case${i}`),
            { ...s, Nq: Math.min(s.Nq, 2) },
            cs,
            16,
          );
          expectAgrees(got.out, got.lse, cs, `decode ${store} ${JSON.stringify(s)}`);
        }
      }, 600_000);

  it('builds with nvcc (sm_90a wgmma, sm_80 mma) with warnings as errors; the launcher names a missing workspace', async () => {
    const src = source('nv', stores[0]!, undefined);
    for (const arch of ['sm_90a', 'sm_80'] as const) {
      const a = compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16', arch }).artifact;
      expect(a.files!['slnv.h']).toContain('size_t attnc_slnv_salient_flags_bytes_sal(');
      expect(a.code).toContain(
        'sal_flags is NULL: the salient tokens of sal (an index list) need a workspace',
      );
      const tu = join(dir, `nv-${arch}.cu`);
      writeFileSync(tu, a.code);
      const flags = quickCheckFlags(arch);
      expectOk(await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', tu, '-o', `${tu}.o`]), `nvcc ${tu}`);
    }
  }, 600_000);
});
