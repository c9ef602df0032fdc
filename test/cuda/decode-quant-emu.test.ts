// Quantized K/V caches in CUDA decode mode (decode-quant.ts), executed on the CPU emulator
// (emu.ts) against the oracle (referenceStoredDecl): every element type, symmetric and
// asymmetric, each granularity with ragged groups, normalizers, recent windows and flagged
// salient tokens, GQA, ragged Nk over several splits, Nq of 1 to 5, and head dims whose lane
// chunks lie inside a code word (D 16), span one word or several (D 64, 128).
import fc from 'fast-check';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaCacheParts } from '../../src/codegen/cuda/dequant.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { formatArb } from '../quant/arbitrary.js';
import { storeStatement, withFlaggedSalient } from '../quant/format-source.js';
import { compileEmulation, emulationSource } from './emu.js';
import { expectOk, run, scratchDir } from './support.js';

interface Shape {
  B: number;
  H: number;
  Hkv: number;
  Nq: number;
  Nk: number;
}

const fixedStores: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 3 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  'store k int2 scale f16 per channel group 5 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  'store kv int4 scale f32 per token group 8 norm f16 recent 3 bf16',
  'store k e4m3\n  store v e5m2 scale f16 per channel',
  'store kv e4m3 scale f32 per token group 4 norm f32 recent 2 bf16',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
  'store k int8 scale f16 per channel group 32 zero f16\n  store v int8 scale f16 per token zero f16',
  'store k e3m4 scale f16 per token\n  store v e3m4 scale f32 per channel',
];

const bytesOf = (x: ArrayBufferView): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** Compiles `store` (+ a causal mask) at head dim D and runs decode on the emulator for each shape. */
async function decodeCase(
  tag: string,
  store: string,
  D: number,
  shapes: readonly Shape[],
  splitKeys: number,
  seed: number,
): Promise<void> {
  const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  const source = `attention dq${tag}(${params}) {\n  ${store}\n  mask causal\n}`;
  const c = compile(source, { target: 'cuda', headDim: D, valueDim: D, dtype: 'f32' });
  const kernel = c.kernel;
  const ns = `attnc_${kernel.name}`;
  const layout = cudaLayout(kernel);
  const fld = (key: string) => layout.field(key);
  const dir = scratchDir(`decode-quant-${kernel.name}`);
  const base = emulationSource(c.artifact, kernel);
  const device = decodeSource(kernel, layout, ns)
    .split(DEVICE_END)[0]!
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;');
  const formats = checkedFormats(c.decl);
  // One executable per format: sizes and buffers come from a spec file per shape.
  const inputs: string[] = ['q', 'k', 'v'];
  for (const which of ['k', 'v'] as const) {
    const f = formats[which];
    if (f) for (const { part } of cudaCacheParts(f)) inputs.push(`cache:${which}_${part}`);
  }
  if (params) inputs.push('tensor:sal');
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
  if (fscanf(spec, "%d %d %d %d %d %d %d %d", &a.B, &a.H, &a.Hkv, &a.Nq, &a.Nk, &split_keys, &n_splits, &row_tiles) != 8) exit(5);
  a.q_offset = a.Nk - a.Nq; a.k_offset = 0; a.scale = 1.f / sqrtf((float)D);
  // q and out packed [B, H, Nq, W], as args_init sets their strides (qo-rows.ts).
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
  const src = join(dir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);

  for (const [i, s] of shapes.entries()) {
    const rand = rng(seed * 31 + i);
    const caseDir = join(dir, `case${i}`);
    mkdirSync(caseDir, { recursive: true });
    const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand);
    const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
    const marks = stored.salient.sal;
    const data = (key: string): ArrayBufferView => {
      if (key === 'q') return q;
      if (key === 'tensor:sal') return marks!.data;
      const [which, name] = key === 'k' || key === 'v' ? [key, 'codes'] : key.slice(6).split('_');
      const held = stored.caches[which as 'k' | 'v']![name as keyof QuantCache]!;
      return ArrayBuffer.isView(held) ? held : held.data;
    };
    const spec = inputs.map((key, j) => {
      const path = join(caseDir, `in${j}.bin`);
      writeFileSync(path, bytesOf(data(key)));
      return `${data(key).byteLength} ${path}`;
    });
    const rowTiles = Math.ceil(((s.H / s.Hkv) * s.Nq) / 4);
    const nSplits = Math.ceil(s.Nk / splitKeys);
    const outPath = join(caseDir, 'out.bin');
    spec.push(`${s.B} ${s.H} ${s.Hkv} ${s.Nq} ${s.Nk} ${splitKeys} ${nSplits} ${rowTiles}`, outPath);
    writeFileSync(join(caseDir, 'spec.txt'), spec.join('\n') + '\n');
    expectOk(await run(exe, [join(caseDir, 'spec.txt')]), `${exe} case ${i}`);

    const raw = new Uint8Array(readFileSync(outPath));
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const nOut = s.B * s.H * s.Nq * D;
    const empty = new Float32Array(0);
    const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
    const tensors: EvalEnv['tensors'] = marks ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } } : {};
    const ref = referenceStoredDecl(c.decl, inp, { params: {}, tensors, sizes: { ...s, D } }, stored.caches);
    const what = `${store.replace(/\n\s*/g, '; ')} D ${D} ${JSON.stringify(s)} splitKeys ${splitKeys}`;
    const out = compareArrays(all.subarray(0, nOut), ref.out, ref.outScale);
    expect(out.nanCount, what).toBe(0);
    expect(out.relError, what).toBeLessThan(2e-5);
    expect(compareArrays(all.subarray(nOut), ref.lse, 1).relError, what).toBeLessThan(2e-5);
  }
}

const shapes: readonly Shape[] = [
  { B: 2, H: 4, Hkv: 2, Nq: 1, Nk: 70 },
  { B: 1, H: 6, Hkv: 2, Nq: 3, Nk: 37 },
];

describe.concurrent('CUDA decode mode over quantized K/V caches (CPU emulation)', () => {
  fixedStores.forEach((store, p) =>
    it(
      store.replace(/\n\s*/g, '; '),
      async () => {
        // Lane chunks of 2, 8 and 16 channels: inside a word, one word, several words.
        for (const D of [16, 64, 128]) await decodeCase(`${p}_${D}`, store, D, shapes, 32 * (1 + (p % 2)), p);
      },
      600_000,
    ),
  );

  it('random formats for k and v, GQA, ragged Nk, decode Nq', async () => {
    const seed = process.env.CI ? 7 : Date.now() % 100_000;
    const cases = fc.sample(
      fc.record({
        k: formatArb.map(withFlaggedSalient),
        v: formatArb.map(withFlaggedSalient),
        D: fc.constantFrom(16, 32, 64, 128),
        group: fc.integer({ min: 1, max: 5 }),
        Hkv: fc.integer({ min: 1, max: 2 }),
        Nq: fc.integer({ min: 1, max: 4 }),
        Nk: fc.integer({ min: 1, max: 140 }),
        splits: fc.integer({ min: 1, max: 3 }),
      }),
      { numRuns: 4, seed },
    );
    for (const [i, r] of cases.entries()) {
      const store = `${storeStatement('k', r.k as QuantFormat)}\n  ${storeStatement('v', r.v as QuantFormat)}`;
      const shape = { B: 1, H: r.Hkv * r.group, Hkv: r.Hkv, Nq: r.Nq, Nk: r.Nk };
      await decodeCase(`r${i}`, store, r.D, [shape], 32 * r.splits, seed + i);
    }
  }, 900_000);
});
