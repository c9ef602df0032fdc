// CUDA decode mode executed on the CPU emulator (emu.ts: fibers per thread, warp shuffles,
// __shared__ as statics): the split and merge kernels of src/codegen/cuda/decode.ts against the
// dense reference, for bf16 and f32 storage, GQA, several splits and row tiles, long splits
// through the cp.async pipeline, offsets, empty rows,
// a score modifier and a tile classifier.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { makeInputs } from '../support/arbitraries.js';
import { compileEmulation, emulationSource } from './emu.js';
import { packedStridesCpp } from './emu-call.js';
import { expectOk, run, scratchDir } from './support.js';
import { EMU_READ_FILE } from './decode-mma-emu.js';

interface EmuCase {
  B: number;
  H: number;
  Hkv: number;
  Nq: number;
  Nk: number;
  qOffset?: number;
  kOffset?: number;
}

const toBf16 = (x: Float32Array): Uint16Array =>
  new Uint16Array(new Uint32Array(x.buffer).map((u) => u >>> 16));
const bytesOf = (x: Float32Array | Uint16Array): Uint8Array =>
  new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

async function emulate(file: string, dtype: 'bf16' | 'f32', c: EmuCase, splitKeys: number): Promise<void> {
  const D = 16;
  const source = readFileSync(join('stdlib', file), 'utf8');
  const { artifact, kernel, decl } = compile(source, {
    target: 'cuda',
    file,
    headDim: D,
    dtype,
    schedule: { engine: 'simt' },
  });
  const ns = `attnc_${kernel.name}`;
  const layout = cudaLayout(kernel);
  const dir = scratchDir(`decode-emu-${kernel.name}`);
  const base = emulationSource(artifact, kernel);
  const device = decodeSource(kernel, layout, ns)
    .split(DEVICE_END)[0]!
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;');
  const shape = {
    B: c.B,
    Hq: c.H,
    Hkv: c.Hkv,
    Nq: c.Nq,
    Nk: c.Nk,
    D,
    Dv: D,
    qOffset: c.qOffset,
    kOffset: c.kOffset,
  };
  const inputs = makeInputs(shape, c.Nk + c.Nq);
  const store = (x: Float32Array) => (dtype === 'bf16' ? toBf16(x) : x);
  for (const n of ['q', 'k', 'v'] as const) writeFileSync(join(dir, `${n}.bin`), bytesOf(store(inputs[n])));
  const rowTiles = Math.ceil(((c.H / c.Hkv) * c.Nq) / 4);
  const nSplits = Math.ceil(c.Nk / splitKeys);
  const params = Object.fromEntries(decl.defaults);
  const fld = (key: string) => layout.field(key);
  const outElems = c.B * c.H * c.Nq * D;
  const esz = dtype === 'bf16' ? 2 : 4;
  const main = `
atomic_float_shim
int main() {
  using namespace ${ns};
  AttncArgs_${kernel.name} a{};
  ${EMU_READ_FILE}
  a.${fld('q')} = rd("${join(dir, 'q.bin')}", ${inputs.q.length * esz});
  a.${fld('k')} = rd("${join(dir, 'k.bin')}", ${inputs.k.length * esz});
  a.${fld('v')} = rd("${join(dir, 'v.bin')}", ${inputs.v.length * esz});
  std::vector<unsigned char> out(${outElems * esz}, 0xff);
  std::vector<float> lse(${c.B * c.H * c.Nq}, NAN);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  a.B = ${c.B}; a.H = ${c.H}; a.Hkv = ${c.Hkv}; a.Nq = ${c.Nq}; a.Nk = ${c.Nk};
  a.q_offset = ${c.qOffset ?? c.Nk - c.Nq}; a.k_offset = ${c.kOffset ?? 0}; a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(kernel, 'a')}
  ${kernel.params.map((p) => `a.${fld(`param:${p.name}`)} = ${Number(params[p.name])};`).join('\n  ')}
  std::vector<float> part((size_t)${c.B * c.Hkv * rowTiles * nSplits} * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{${nSplits * rowTiles}, ${c.Hkv}, ${c.B}}, 128, dec::SPLIT_SMEM, [&] { dec::split_kernel(a, part.data(), ${splitKeys}, ${nSplits}, ${rowTiles}); });
  emu::launch(dim3{${c.Nq}, ${c.H}, ${c.B}}, 128, ${nSplits * 4}, [&] { dec::merge_kernel(a, part.data(), ${nSplits}, ${rowTiles}); });
  FILE* f = fopen("${join(dir, 'out.bin')}", "wb"); fwrite(out.data(), 1, out.size(), f); fclose(f);
  f = fopen("${join(dir, 'lse.bin')}", "wb"); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`.replace(
    'atomic_float_shim',
    // Fibers run one at a time: a plain read-modify-write is atomic here.
    'inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }\n' + device,
  );
  const src = join(dir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(dir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  expectOk(await run(exe, []), exe);
  const raw = readFileSync(join(dir, 'out.bin'));
  const outBuf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const out =
    dtype === 'bf16'
      ? new Float32Array(new Uint32Array(Array.from(new Uint16Array(outBuf), (b) => b << 16)).buffer)
      : new Float32Array(outBuf);
  const lseRaw = readFileSync(join(dir, 'lse.bin'));
  const lse = new Float32Array(lseRaw.buffer.slice(lseRaw.byteOffset, lseRaw.byteOffset + lseRaw.byteLength));
  const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
  const pred = declPredicates(decl.decl, { params, tensors: {}, sizes: { ...sizes, D } });
  const ref = referenceAttention(
    { ...inputs, ...sizes, Hq: c.H, D, Dv: D, qOffset: c.qOffset, kOffset: c.kOffset },
    pred,
  );
  const tol = dtype === 'bf16' ? 1e-2 : 1e-5;
  const o = compareArrays(out, ref.out, ref.outScale);
  const l = compareArrays(lse, ref.lse, 1);
  const where = `${file} ${dtype} ${JSON.stringify(c)} splitKeys ${splitKeys}`;
  expect(o.nanCount, where).toBe(0);
  expect(o.relError, where).toBeLessThanOrEqual(tol);
  expect(l.relError, where).toBeLessThanOrEqual(1e-5);
}

describe('CUDA decode kernels on the CPU emulator agree with the reference', () => {
  for (const dtype of ['bf16', 'f32'] as const) {
    it(`sliding window, softcap, alibi (${dtype})`, async () => {
      await emulate('sliding_window.attn', dtype, { B: 1, H: 4, Hkv: 2, Nq: 3, Nk: 300 }, 64);
      await emulate(
        'softcap.attn',
        dtype,
        { B: 2, H: 6, Hkv: 2, Nq: 2, Nk: 97, qOffset: 40, kOffset: 5 },
        32,
      );
      await emulate('alibi.attn', dtype, { B: 1, H: 2, Hkv: 1, Nq: 5, Nk: 130 }, 96);
      // Every row before every key: out 0, lse -inf.
      await emulate('causal.attn', dtype, { B: 1, H: 2, Hkv: 2, Nq: 2, Nk: 70, qOffset: -5 }, 32);
      // Splits longer than the pipeline (decode-pipe.ts: STAGES buffers reused), and tiles past
      // every row's last key, which are neither fetched nor computed.
      await emulate('alibi.attn', dtype, { B: 1, H: 4, Hkv: 2, Nq: 2, Nk: 400 }, 320);
      await emulate('causal.attn', dtype, { B: 1, H: 3, Hkv: 1, Nq: 3, Nk: 700, qOffset: 100 }, 704);
    }, 600_000);
  }
});
