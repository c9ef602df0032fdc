// The tensor-core engines' K/V tile converter (src/codegen/cuda/dequant-tile.ts), executed on the
// CPU emulator (test/cuda/emu.ts runs SIMT code only, so a probe kernel beside a SIMT artifact
// calls the same converter the mma / wgmma / wgmma-ws engines do) and compared bit for bit with
// the oracle's dequantized values (referenceDequantize): f32 storage exactly, bf16 storage as
// those values rounded to nearest even. Both the plain (strided) form and the gathered form.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { fastConverterCode, fastScale, fastScaleRead } from '../../src/codegen/cuda/dequant-fast.js';
import { tcConverterCode } from '../../src/codegen/cuda/dequant-tile.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { compile } from '../../src/compile.js';
import type { StorageDType, TensorFormats } from '../../src/ir/formats.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { bf16Bits } from '../../src/quant/floats.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import { buildEmulation, runEmulation } from '../cuda/emu.js';
import { render, scratchDir } from '../cuda/support.js';
import { packedStrideLine } from '../cuda/emu-call.js';
import { floatLayout } from '../../src/quant/elem.js';

interface Field {
  field: string;
  name: string;
  role: string;
  ctype: string;
  offset: number;
}

const stores: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 3 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  'store k int2 scale f16 per channel group 5 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  'store kv int4 scale f32 per token group 8 norm f16 recent 3 bf16',
  'store k e4m3\n  store v e5m2 scale f16 per channel',
  'store kv e4m3 scale f32 per token group 4 norm f32 recent 2 bf16',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
  'store k int8 scale f16 per token zero f16',
  // The wgmma-ws producer's fast converter (dequant-fast.ts) takes these (modes 6, 7 below).
  'store k int4 scale f16 per token\n  store v int2 scale f16 per tensor',
  'store k e4m3 scale f32 per token\n  store v e5m2',
  'store kv int8 scale f32 per tensor',
  'store k e3m4 scale f32 per token\n  store v e3m4 scale f16 per tensor',
];

const D = 16;
const shape = { B: 2, Hkv: 2, Nk: 37 };

/**
 * A probe kernel: block (kt, bh) converts key tile kt of head bh of K (even modes) or V (odd)
 * into shared memory, plainly (0, 1), gathered in reverse key order (2, 3) or from code words
 * staged in shared memory (4, 5: the wgmma-ws producer's way; 6, 7: its fast converter, for the
 * formats dequant-fast.ts takes), and copies it to
 * out as [B·Hkv, Nk padded to whole tiles, D] (rows past Nk must be 0). The mode comes in as qscale.
 */
function probe(
  which: readonly ('k' | 'v')[],
  formats: TensorFormats,
  field: (key: string) => string,
): string[] {
  const handle = { k: 'DqRowsK', v: 'DqRowsV' };
  // Modes 6, 7: the fast converter from staged code words and staged per-token scales.
  const fast = (w: 'k' | 'v', mode: number): string[] => {
    const scale = fastScale(formats[w]);
    if (scale === undefined) return [];
    const read = (i: string): string => fastScaleRead(w, formats[w], field, i) ?? '0.f';
    return [
      `  if (mode == ${mode + 6}) {`,
      `    const ${handle[w]} hd{&a, bh, 0};`,
      '    unsigned* cs = reinterpret_cast<unsigned*>(tile + BK * D);',
      `    float* ss = reinterpret_cast<float*>(cs + BK * ${handle[w]}::WPR);`,
      '    const int rows = min(BK, a.Nk - kt * BK);',
      `    for (int i = tid; i < rows * ${handle[w]}::WPR; i += THREADS) cs[i] = hd.codes_row(kt * BK)[i];`,
      `    for (int r = tid; r < rows; r += THREADS) ss[r] = ${scale === 'token' ? read('bh * (size_t)a.Nk + kt * BK + r') : '0.f'};`,
      '    __syncthreads();',
      `    ${w}_tile_fast<D, BK, THREADS>(tile, hd, cs, ss, ${scale === 'tensor' ? read('0') : '0.f'}, kt, rows, tid);`,
      '  }',
    ];
  };
  const branch = (w: 'k' | 'v', mode: number): string[] => [
    `  if (mode == ${mode}) {`,
    `    const ${handle[w]} hd{&a, bh, 0};`,
    `    probe_rows<D, BK>(tile, hd + (size_t)kt * BK * D, a.Nk - kt * BK, tid);`,
    '  }',
    `  if (mode == ${mode + 2}) {`,
    `    const ${handle[w]} hd{&a, bh, 0};`,
    '    probe_rows_gather<D, BK>(tile, hd, [&](const int r) { const int key = kt * BK + (BK - 1 - r); return key < a.Nk ? key : -1; }, tid);',
    '  }',
    `  if (mode == ${mode + 4}) { // staged: the tile's code words copied to shared memory first`,
    `    const ${handle[w]} hd{&a, bh, 0};`,
    `    unsigned* cs = reinterpret_cast<unsigned*>(tile + BK * D);`,
    `    const int rows = min(BK, a.Nk - kt * BK);`,
    `    for (int i = tid; i < rows * ${handle[w]}::WPR; i += THREADS) cs[i] = hd.codes_row(kt * BK)[i];`,
    '    __syncthreads();',
    '    probe_rows_dq<D, BK, THREADS>(tile, hd + (size_t)kt * BK * D, D, a.Nk - kt * BK, tid, cs);',
    '  }',
  ];
  return [
    'extern "C" __global__ void dq_probe(const Args a, const float qscale) {',
    '  T* tile = reinterpret_cast<T*>(emu::dyn_smem);',
    '  const int kt = blockIdx.x, tid = threadIdx.x, mode = (int)qscale;',
    '  const size_t bh = blockIdx.y;',
    ...which.flatMap((w) => [...branch(w, w === 'k' ? 0 : 1), ...fast(w, w === 'k' ? 0 : 1)]),
    '  __syncthreads();',
    '  // Every row of the tile, those past Nk (zeros) included: keys padded to whole tiles.',
    '  const bool reversed = mode / 2 == 1;',
    '  const size_t padded = (size_t)((a.Nk + BK - 1) / BK) * BK;',
    '  for (int idx = tid; idx < BK * D; idx += THREADS) {',
    '    const int r = idx / D, c = idx % D, key = kt * BK + (reversed ? BK - 1 - r : r);',
    '    static_cast<T*>(a.out)[(bh * padded + key) * D + c] = tile[idx];',
    '  }',
    '}',
  ];
}

function probeArtifact(kernel: AttentionKernel, which: readonly ('k' | 'v')[]): Artifact {
  const a = render(kernel);
  const name = kernel.name;
  const formats = kernel.formats;
  const field = cudaLayout(kernel).field;
  const end = `} // namespace attnc_${name}`;
  const at = a.code.indexOf(end);
  const extra = [
    ...tcConverterCode(formats, field, { name: 'probe_rows', swizzle: 'r * W + c * 8' }),
    ...fastConverterCode(formats, 'r * W + c * 8'),
    ...probe(which, formats, field),
  ];
  return {
    ...a,
    code: a.code.slice(0, at) + extra.join('\n') + '\n' + a.code.slice(at),
    entryPoints: [{ ...a.entryPoints[0]!, name: 'dq_probe' }],
  };
}

describe.concurrent('tensor-core K/V tile converter (CPU emulation, bit for bit)', () => {
  const dir = scratchDir('tcquant');
  const cases: { store: string; dtype: StorageDType }[] = [
    ...stores.map((store) => ({ store, dtype: 'f32' as const })),
    ...[0, 4, 6, 8, 9, 10, 11].map((i) => ({ store: stores[i]!, dtype: 'bf16' as const })),
  ];
  cases.forEach(({ store, dtype }, p) =>
    it(`${dtype}: ${store.replace(/\n\s*/g, '; ')}`, async () => {
      const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
      const name = `tcq${p}`;
      const c = compile(`attention ${name}(${params}) {\n  ${store}\n}`, {
        target: 'cuda',
        headDim: D,
        valueDim: D,
        dtype,
        schedule: { blockQ: 16, blockK: 16, threads: 16 },
      });
      const formats = c.kernel.formats;
      const which = (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant');
      const a = probeArtifact(c.kernel, which);
      const exe = await buildEmulation(dir, a, c.kernel);
      const rand = rng(97 + p);
      const kv = checkedFormats(c.decl);
      const stored = randomStoredInputs(kv, { ...shape, D, Dv: D }, rand);
      const marks = stored.salient.sal;
      for (const w of which) {
        const cache = stored.caches[w]!;
        const special = withSpecialCodes(kv[w]!, cache);
        const expected = referenceDequantize(kv[w]!, cache, { ...shape, D }, marks);
        const variants = fastScale(formats[w]) === undefined ? [0, 1, 2] : [0, 1, 2, 3];
        for (const variant of variants) {
          const mode = (w === 'k' ? 0 : 1) + 2 * variant;
          const got = await runProbe(exe, join(dir, name, `${w}${mode}`), c, cache, marks?.data, mode, dtype);
          const padded = withZeroTail(expected, c.kernel.schedule.blockK);
          const want = dtype === 'f32' ? new Uint32Array(padded.buffer) : Uint16Array.from(padded, bf16Bits);
          // NaN codes: any NaN (the oracle's is canonical, a kernel's keeps the code's sign).
          const nan = dtype === 'f32' ? isNanF32 : isNanBf16;
          const bad = want.findIndex((x, i) => got[i] !== x && !(special && nan(x) && nan(got[i]!)));
          expect(bad, `${w} mode ${mode}: element ${bad} is ${got[bad]}, the oracle's ${want[bad]}`).toBe(-1);
        }
      }
    }, 240_000),
  );
});

const paddedKeys = (BK: number): number => Math.ceil(shape.Nk / BK) * BK;

/** [B·Hkv, Nk, D] values as [B·Hkv, Nk padded to whole BK tiles, D], the padding 0. */
function withZeroTail(x: Float32Array, BK: number): Float32Array {
  const heads = shape.B * shape.Hkv;
  const out = new Float32Array(heads * paddedKeys(BK) * D);
  for (let bh = 0; bh < heads; bh++)
    out.set(x.subarray(bh * shape.Nk * D, (bh + 1) * shape.Nk * D), bh * paddedKeys(BK) * D);
  return out;
}

async function runProbe(
  exe: string,
  dir: string,
  c: ReturnType<typeof compile>,
  cache: QuantCache,
  marks: Int32Array | undefined,
  mode: number,
  dtype: StorageDType,
): Promise<Uint32Array | Uint16Array> {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const bytes = dtype === 'f32' ? 4 : 2;
  const n = shape.B * shape.Hkv * paddedKeys(c.kernel.schedule.blockK) * D;
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(dir, name);
    writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const part = (name: string): ArrayBufferView => {
    const held = cache[name as keyof QuantCache];
    if (held === undefined) throw new Error(`test: the cache has no ${name}`);
    return ArrayBuffer.isView(held) ? held : held.data;
  };
  // Both caches get this one's tensors: the probe reads only the one its mode names.
  const which = mode % 2 === 0 ? 'k' : 'v';
  const sizes: Record<string, number> = { ...shape, H: shape.Hkv, Nq: shape.Nk, q_offset: 0, k_offset: 0 };
  for (const f of manifest.args.fields as Field[]) {
    if (f.role === which) input(f.role, f.offset, part('codes'));
    else if (f.role === 'cache' && f.name.startsWith(`${which}_`))
      input(f.name, f.offset, part(f.name.slice(2)));
    else if (f.role === 'tensor' && marks) input(f.name, f.offset, marks);
    else if (f.role === 'out') spec.push(`out ${f.offset} ${n * bytes} ${join(dir, 'out.bin')}`);
    else if (f.role === 'qo_stride')
      spec.push(packedStrideLine(f, c.kernel, { Hkv: shape.Hkv, Nk: shape.Nk, H: shape.Hkv, Nq: shape.Nk })!);
    else if (f.ctype === 'i32' || f.ctype === 'f32')
      spec.push(`${f.ctype} ${f.offset} ${sizes[f.name] ?? 0}`);
  }
  spec.push(`qscale ${mode}`);
  const sched = c.kernel.schedule;
  const tiles = Math.ceil(shape.Nk / sched.blockK);
  spec.push(`launch 0 ${tiles} ${shape.B * shape.Hkv} 1 ${sched.threads} ${sched.blockK * D * (bytes + 4)}`);
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(dir, 'spec.txt'));
  const u = new Uint8Array(readFileSync(join(dir, 'out.bin')));
  return dtype === 'f32'
    ? new Uint32Array(u.buffer, u.byteOffset, n)
    : new Uint16Array(u.buffer, u.byteOffset, n);
}

const isNanF32 = (x: number): boolean => (x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0;
const isNanBf16 = (x: number): boolean => (x & 0x7f80) === 0x7f80 && (x & 0x7f) !== 0;

/**
 * fp8 caches: NaN and ±Inf codes written over a few codes (quantize never writes them, so random
 * caches lack them), for the converters' special-value paths (dequant-fast.ts falls back per
 * chunk). Whether any were written.
 */
function withSpecialCodes(f: QuantFormat, cache: QuantCache): boolean {
  if (f.kind !== 'fp8') return false;
  // nan-only formats (e4m3, e3m4): the two NaNs; ieee (e5m2): ±Inf and two NaNs.
  const specials = floatLayout(f.elem).spec.specials === 'nan-only' ? [0x7f, 0xff] : [0x7c, 0xfc, 0x7f, 0xfe];
  const codes = cache.codes;
  for (let i = 0, n = 0; i < codes.length; i += 13, n++) {
    const byte = 8 * (n % 4);
    codes[i] = ((codes[i]! & ~(0xff << byte)) | (specials[n % specials.length]! << byte)) >>> 0;
  }
  return true;
}
