// The tensor-core engines' K/V tile converter (dequant-tile.ts) over paged quantized caches, on
// the CPU emulator: a probe kernel beside a SIMT artifact calls the converter the mma / wgmma
// engines use (plain tiles and gathered rows), its handles reading codes and scales through the
// block table (kv-rows.ts kv_qrow) from shuffled pools poisoned elsewhere, bit for bit the
// oracle's dequantized values of the contiguous cache (f32 storage exactly, bf16 rounded).
// (The wgmma-ws producer's staged forms take no paged caches: test/quant/tc-dequant-emu.test.ts.)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { tcConverterCode } from '../../src/codegen/cuda/dequant-tile.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile } from '../../src/compile.js';
import type { StorageDType } from '../../src/ir/formats.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { bf16Bits } from '../../src/quant/floats.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import { packedStrideLine } from '../cuda/emu-call.js';
import { buildEmulation, runEmulation } from '../cuda/emu.js';
import { render, scratchDir } from '../cuda/support.js';

const D = 16;
const shape = { B: 2, Hkv: 2, Nk: 37 };

const stores: readonly string[] = [
  'store kv int8 scale f32 per token',
  'store k int4 scale f16 per channel group 4 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
  'store k int2 scale f16 per channel group 8 zero f16 recent 6 f16\n  store v int4 scale f32 per tensor',
  'store k e4m3\n  store v e5m2 scale f16 per channel',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
];

/** Block (kt, bh): key tile kt of head bh of K (mode 0) or V (1), plainly; reversed gathered (2, 3). */
function probe(which: readonly ('k' | 'v')[]): string[] {
  const handle = { k: 'DqRowsK', v: 'DqRowsV' };
  const branch = (w: 'k' | 'v', mode: number): string[] => [
    `  if (mode == ${mode}) {`,
    `    const ${handle[w]} hd{&a, bh, 0};`,
    `    probe_rows<D, BK>(tile, hd + (size_t)kt * BK * D, a.Nk - kt * BK, tid);`,
    '  }',
    `  if (mode == ${mode + 2}) {`,
    `    const ${handle[w]} hd{&a, bh, 0};`,
    '    probe_rows_gather<D, BK>(tile, hd, [&](const int r) { const int key = kt * BK + (BK - 1 - r); return key < a.Nk ? key : -1; }, tid);',
    '  }',
  ];
  return [
    'extern "C" __global__ void dq_probe(const Args a, const float qscale) {',
    '  T* tile = reinterpret_cast<T*>(emu::dyn_smem);',
    '  const int kt = blockIdx.x, tid = threadIdx.x, mode = (int)qscale;',
    '  const size_t bh = blockIdx.y;',
    ...which.flatMap((w) => branch(w, w === 'k' ? 0 : 1)),
    '  __syncthreads();',
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
  const end = `} // namespace attnc_${kernel.name}`;
  const at = a.code.indexOf(end);
  const extra = [
    ...tcConverterCode(kernel.formats, cudaLayout(kernel).field, {
      name: 'probe_rows',
      swizzle: 'r * W + c * 8',
    }),
    ...probe(which),
  ];
  return {
    ...a,
    code: a.code.slice(0, at) + extra.join('\n') + '\n' + a.code.slice(at),
    entryPoints: [{ ...a.entryPoints[0]!, name: 'dq_probe' }],
  };
}

const BK = 16;
const padded = Math.ceil(shape.Nk / BK) * BK;

describe.concurrent(
  'tensor-core tile converter over paged quantized caches (CPU emulation, bit for bit)',
  () => {
    const dir = scratchDir('tcquant-paged');
    const cases = [
      ...stores.map((store) => ({ store, dtype: 'f32' as StorageDType, P: 8 })),
      ...stores.map((store) => ({ store, dtype: 'bf16' as StorageDType, P: 16 })),
    ];
    cases.forEach(({ store, dtype, P }, p) =>
      it(`${dtype}, pages of ${P}: ${store.replace(/\n\s*/g, '; ')}`, async () => {
        const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
        const name = `tcp${p}`;
        const c = compile(`attention ${name}(${params}) {\n  cache paged ${P}\n  ${store}\n}`, {
          target: 'cuda',
          headDim: D,
          valueDim: D,
          dtype,
          schedule: { engine: 'simt', blockQ: 16, blockK: BK, threads: 16 },
        });
        const formats = c.kernel.formats;
        const which = (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant');
        const exe = await buildEmulation(dir, probeArtifact(c.kernel, which), c.kernel);
        const rand = rng(31 + p);
        const kv = checkedFormats(c.decl);
        const stored = randomStoredInputs(kv, { ...shape, D, Dv: D }, rand);
        const marks = stored.salient.sal;
        const maxPages = Math.ceil(shape.Nk / P) + 1;
        const count = shape.B * maxPages + 2;
        const ids = Array.from({ length: count }, (_, i) => i).sort(() => rand() - 0.5);
        const pages: QuantPages = {
          pageSize: P,
          maxPages,
          pages: count,
          blockTable: Int32Array.from({ length: shape.B * maxPages }, (_, i) => ids[i]!),
        };
        for (const w of which) {
          const pool = pageQuantCache(kv[w]!, stored.caches[w]!, { ...shape, D }, pages);
          const expected = referenceDequantize(kv[w]!, stored.caches[w]!, { ...shape, D }, marks);
          const tail = new Float32Array(shape.B * shape.Hkv * padded * D);
          for (let bh = 0; bh < shape.B * shape.Hkv; bh++)
            tail.set(expected.subarray(bh * shape.Nk * D, (bh + 1) * shape.Nk * D), bh * padded * D);
          const want = dtype === 'f32' ? new Uint32Array(tail.buffer) : Uint16Array.from(tail, bf16Bits);
          for (const variant of [0, 1]) {
            const mode = (w === 'k' ? 0 : 1) + 2 * variant;
            const got = await runProbe(
              exe,
              join(dir, name, `${w}${mode}`),
              c,
              pool,
              pages,
              marks?.data,
              mode,
              dtype,
            );
            const bad = want.findIndex((x, i) => got[i] !== x);
            expect(bad, `${w} mode ${mode}: element ${bad} is ${got[bad]}, the oracle's ${want[bad]}`).toBe(
              -1,
            );
          }
        }
      }, 240_000),
    );
  },
);

async function runProbe(
  exe: string,
  dir: string,
  c: ReturnType<typeof compile>,
  pool: QuantCache,
  pages: QuantPages,
  marks: Int32Array | undefined,
  mode: number,
  dtype: StorageDType,
): Promise<Uint32Array | Uint16Array> {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const bytes = dtype === 'f32' ? 4 : 2;
  const n = shape.B * shape.Hkv * padded * D;
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(dir, name);
    writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const part = (name: string): ArrayBufferView => {
    const held = pool[name as keyof QuantCache];
    if (held === undefined) throw new Error(`test: the pool has no ${name}`);
    return ArrayBuffer.isView(held) ? held : held.data;
  };
  const which = mode % 2 === 0 ? 'k' : 'v';
  const sizes: Record<string, number> = {
    ...shape,
    H: shape.Hkv,
    Nq: shape.Nk,
    q_offset: 0,
    k_offset: 0,
    max_pages: pages.maxPages,
  };
  for (const f of manifest.args.fields as { name: string; role: string; ctype: string; offset: number }[]) {
    if (f.role === which) input(f.role, f.offset, part('codes'));
    else if (f.role === 'cache' && f.name.startsWith(`${which}_`))
      input(f.name, f.offset, part(f.name.slice(2)));
    else if (f.role === 'tensor' && marks) input(f.name, f.offset, marks);
    else if (f.role === 'block_table') input('table', f.offset, pages.blockTable);
    else if (f.role === 'out') spec.push(`out ${f.offset} ${n * bytes} ${join(dir, 'out.bin')}`);
    else if (f.role === 'qo_stride')
      spec.push(packedStrideLine(f, c.kernel, { Hkv: shape.Hkv, Nk: shape.Nk, H: shape.Hkv, Nq: shape.Nk })!);
    else if (f.ctype === 'i32' || f.ctype === 'f32')
      spec.push(`${f.ctype} ${f.offset} ${sizes[f.name] ?? 0}`);
  }
  spec.push(`qscale ${mode}`);
  spec.push(`launch 0 ${Math.ceil(shape.Nk / BK)} ${shape.B * shape.Hkv} 1 16 ${BK * D * (bytes + 4)}`);
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(dir, 'spec.txt'));
  const u = new Uint8Array(readFileSync(join(dir, 'out.bin')));
  return dtype === 'f32'
    ? new Uint32Array(u.buffer, u.byteOffset, n)
    : new Uint16Array(u.buffer, u.byteOffset, n);
}
