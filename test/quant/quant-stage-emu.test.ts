// The staged prefill's dequant pass (src/codegen/cuda/quant-stage.ts), executed on the CPU
// emulator: for random formats × granularities (zero points, norms, KIVI recent windows, zipcache
// salient rows, fp8 with NaN/Inf codes) and ragged Nk, the workspace it writes is the oracle's
// dequantized K then V (referenceDequantize) bit for bit: exactly for f32 storage, rounded to
// nearest even for bf16 — the values the fused tile converter gives (tc-dequant-emu.test.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { stageEntry, stagePassCode } from '../../src/codegen/cuda/quant-stage.js';
import { compile } from '../../src/compile.js';
import type { StorageDType } from '../../src/ir/formats.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { bf16Bits } from '../../src/quant/floats.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import { buildEmulation, runEmulation } from '../cuda/emu.js';
import { scratchDir } from '../cuda/support.js';
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
  'store v int8 scale f32 per token',
];

const D = 16;
const THREADS = 256;

/** The SIMT kernel of `store` with the pass and a probe entry writing the workspace to `out`. */
function stageProbe(store: string, name: string, dtype: StorageDType) {
  const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  const c = compile(`attention ${name}(${params}) {\n  ${store}\n}`, {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype,
    schedule: { blockQ: 16, blockK: 16, threads: 16 },
  });
  const a = c.artifact;
  const end = `} // namespace attnc_${name}`;
  const at = a.code.indexOf(end);
  const kq = c.kernel.formats.k.kind === 'quant';
  const probe = [
    ...stagePassCode(c.kernel, a.code),
    'extern "C" __global__ void stage_probe(const Args a, const float) {',
    '  T* kw = static_cast<T*>(a.out);',
    `  ${stageEntry(c.kernel)}(a, kw, kw + (size_t)a.B * a.Hkv * a.Nk * ${kq ? 'D' : '0'});`,
    '}',
  ];
  const artifact: Artifact = {
    ...a,
    code: a.code.slice(0, at) + probe.join('\n') + '\n' + a.code.slice(at),
    entryPoints: [{ ...a.entryPoints[0]!, name: 'stage_probe' }],
  };
  return { c, artifact };
}

describe.concurrent('staged prefill: the dequant pass (CPU emulation, bit for bit)', () => {
  const dir = scratchDir('qstage');
  const cases = stores.flatMap((store) => (['f32', 'bf16'] as const).map((dtype) => ({ store, dtype })));
  cases.forEach(({ store, dtype }, p) =>
    it(`${dtype}: ${store.replace(/\n\s*/g, '; ')}`, async () => {
      const name = `qst${p}`;
      const { c, artifact } = stageProbe(store, name, dtype);
      const exe = await buildEmulation(dir, artifact, c.kernel);
      const rand = rng(4242 + p);
      // Ragged key counts: a partial last block of the pass, and one key.
      for (const Nk of [1 + Math.floor(rand() * 90), 1]) {
        const shape = { B: 2, Hkv: 1 + Math.floor(rand() * 2), Nk };
        const kv = checkedFormats(c.decl);
        const stored = randomStoredInputs(kv, { ...shape, D, Dv: D }, rand);
        const marks = stored.salient.sal;
        const which = (['k', 'v'] as const).filter((w) => kv[w] !== undefined);
        const special = which.map((w) => withSpecialCodes(kv[w]!, stored.caches[w]!)).some(Boolean);
        const expected = which.map((w) =>
          referenceDequantize(kv[w]!, stored.caches[w]!, { ...shape, D }, marks),
        );
        const all = new Float32Array(expected.reduce((n, x) => n + x.length, 0));
        expected.reduce((off, x) => (all.set(x, off), off + x.length), 0);
        const got = await runPass(
          exe,
          join(dir, name, `n${Nk}`),
          c,
          stored.caches,
          marks?.data,
          shape,
          dtype,
        );
        const want = dtype === 'f32' ? new Uint32Array(all.buffer) : Uint16Array.from(all, bf16Bits);
        expect(got.length).toBe(want.length);
        const nan = dtype === 'f32' ? isNanF32 : isNanBf16;
        const bad = want.findIndex((x, i) => got[i] !== x && !(special && nan(x) && nan(got[i]!)));
        expect(bad, `Nk ${Nk}: element ${bad} is ${got[bad]}, the oracle's ${want[bad]}`).toBe(-1);
      }
    }, 240_000),
  );
});

async function runPass(
  exe: string,
  dir: string,
  c: ReturnType<typeof compile>,
  caches: Partial<Record<'k' | 'v', QuantCache>>,
  marks: Int32Array | undefined,
  shape: { B: number; Hkv: number; Nk: number },
  dtype: StorageDType,
): Promise<Uint32Array | Uint16Array> {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const bytes = dtype === 'f32' ? 4 : 2;
  const quantized = (['k', 'v'] as const).filter((w) => caches[w] !== undefined);
  const n = shape.B * shape.Hkv * shape.Nk * D * quantized.length;
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(dir, name);
    writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const part = (w: 'k' | 'v', name: string): ArrayBufferView => {
    const held = caches[w]?.[name as keyof QuantCache];
    if (held === undefined) throw new Error(`test: the ${w} cache has no ${name}`);
    return ArrayBuffer.isView(held) ? held : held.data;
  };
  const sizes: Record<string, number> = { ...shape, H: shape.Hkv, Nq: shape.Nk, q_offset: 0, k_offset: 0 };
  for (const f of manifest.args.fields as Field[]) {
    if ((f.role === 'k' || f.role === 'v') && caches[f.role]) input(f.role, f.offset, part(f.role, 'codes'));
    else if (f.role === 'cache') input(f.name, f.offset, part(f.name[0] as 'k' | 'v', f.name.slice(2)));
    else if (f.role === 'tensor' && marks) input(f.name, f.offset, marks);
    else if (f.role === 'out') spec.push(`out ${f.offset} ${n * bytes} ${join(dir, 'out.bin')}`);
    else if (f.ctype === 'i32' || f.ctype === 'f32')
      spec.push(`${f.ctype} ${f.offset} ${sizes[f.name] ?? 0}`);
  }
  const chunks = (quantized.length * D) / 8;
  const rowsPerBlock = Math.max(1, Math.floor(THREADS / chunks));
  const blocks = Math.ceil(shape.Nk / rowsPerBlock);
  spec.push(`launch 0 ${blocks} ${shape.Hkv} ${shape.B} ${rowsPerBlock * chunks} 0`);
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(dir, 'spec.txt'));
  const u = new Uint8Array(readFileSync(join(dir, 'out.bin')));
  return dtype === 'f32'
    ? new Uint32Array(u.buffer, u.byteOffset, n)
    : new Uint16Array(u.buffer, u.byteOffset, n);
}

const isNanF32 = (x: number): boolean => (x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0;
const isNanBf16 = (x: number): boolean => (x & 0x7f80) === 0x7f80 && (x & 0x7f) !== 0;

/** fp8 caches: NaN and ±Inf codes over a few codes (random caches lack them). Whether any were. */
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
