// Round trip on the CUDA CPU emulator: the artifact's own quantize kernels fill both caches from
// random f32 rows, then the SIMT attention reads them; the output agrees with the float64
// reference over the values those caches hold (referenceStoredDecl).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { quantizeSpecs } from '../../src/codegen/cuda/quantize-host.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { cacheLayout, type CacheSizes, type QuantCache } from '../../src/quant/layout.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomNormal, randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { buildEmulation, runEmulation } from '../cuda/emu.js';
import { scratchDir } from '../cuda/support.js';
import { buildQuantizeEmulation, runQuantize, type QuantizeBuffers } from './quantize-emu.js';
import { packedStrideLine } from '../cuda/emu-call.js';

const stores: readonly string[] = [
  'store k int2 scale f16 per channel group 5 zero f16 recent 6 f16\n  store v int2 scale f16 per token group 16 zero f16 recent 6 f16',
  'store kv int4 scale f32 per token group 8 norm f16 recent 3 bf16',
  'store k e4m3 scale f16 per tensor\n  store v e5m2 scale f32 per channel',
  'store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal',
];

/** Struct field name of each cache tensor (codesHi is codes_hi in C). */
const field = (name: string): string => (name === 'codesHi' ? 'codes_hi' : name);

/** The emulator's output bytes as a cache of format `f`. */
function asCache(f: QuantFormat, s: CacheSizes, b: QuantizeBuffers): QuantCache {
  const out: Record<string, unknown> = {};
  for (const t of cacheLayout(f, s)) {
    const bytes = b[field(t.name)]!.slice();
    if (t.dtype === 'u32') out[t.name] = new Uint32Array(bytes.buffer);
    else if (t.dtype === 'f32') out[t.name] = { dtype: 'f32', data: new Float32Array(bytes.buffer) };
    else out[t.name] = { dtype: t.dtype, data: new Uint16Array(bytes.buffer) };
  }
  return out as unknown as QuantCache;
}

describe.concurrent('CUDA quantize → SIMT attention (CPU emulation) equals the reference', () => {
  const dir = scratchDir('quantize-roundtrip');
  stores.forEach((store, p) =>
    it(
      store.replace(/\n\s*/g, '; '),
      async () => {
        const D = 16;
        const s = { B: 2, H: 2, Hkv: 1, Nq: 7, Nk: 37 };
        const salient = store.includes('salient');
        const source = `attention rt${p}(${salient ? 'sal: i32[batch, kv_heads, kv]' : ''}) {\n  ${store}\n  mask causal\n}`;
        const c = compile(source, {
          target: 'cuda',
          headDim: D,
          valueDim: D,
          dtype: 'f32',
          schedule: { blockQ: 16, blockK: 16, threads: 16 },
        });
        const formats = checkedFormats(c.decl);
        const sizes: CacheSizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
        const rand = rng(p + 3);
        const marks = salient ? randomSalientMarks('flags', sizes, rand) : undefined;
        const caches: { k?: QuantCache; v?: QuantCache } = {};
        for (const spec of quantizeSpecs(c.kernel)) {
          const d = join(dir, `p${p}`, spec.cache);
          const exe = await buildQuantizeEmulation(d, spec);
          const x = randomNormal(s.B * s.Hkv * s.Nk * D, rand);
          const f = formats[spec.cache]!;
          const buffers: QuantizeBuffers = { x: new Uint8Array(x.buffer) };
          if (marks) buffers.salient = new Uint8Array(marks.data.buffer);
          for (const t of cacheLayout(f, sizes))
            buffers[field(t.name)] = new Uint8Array(
              (t.dtype === 'u32' || t.dtype === 'f32' ? 4 : 2) * t.shape.reduce((a, b) => a * b, 1),
            ).fill(0xa5);
          const after = await runQuantize(exe, join(d, 'run'), buffers, { ...sizes, start: 0, n: s.Nk });
          caches[spec.cache] = asCache(f, sizes, after);
        }
        // The attention, as cuda-dequant.test.ts runs it, over the caches just filled.
        const d = join(dir, `p${p}`, 'attn');
        mkdirSync(d, { recursive: true });
        const exe = await buildEmulation(d, c.artifact, c.kernel);
        const q = randomNormal(s.B * s.H * s.Nq * D, rand);
        const scale = Math.fround(1 / Math.sqrt(D));
        const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
        const spec: string[] = [];
        const input = (name: string, off: number, data: ArrayBufferView): void => {
          writeFileSync(join(d, name), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
          spec.push(`in ${off} ${data.byteLength} ${join(d, name)}`);
        };
        const part = (which: 'k' | 'v', name: string): ArrayBufferView => {
          const held = caches[which]![name as keyof QuantCache]!;
          return ArrayBuffer.isView(held) ? held : held.data;
        };
        const scalars: Record<string, number> = { ...s, q_offset: s.Nk - s.Nq, k_offset: 0, scale };
        for (const f of manifest.args.fields as {
          name: string;
          role: string;
          ctype: string;
          offset: number;
        }[]) {
          if (f.role === 'q') input('q', f.offset, q);
          else if (f.role === 'k' || f.role === 'v') input(f.role, f.offset, part(f.role, 'codes'));
          else if (f.role === 'cache') {
            const [which, name] = f.name.split('_') as ['k' | 'v', string];
            input(f.name, f.offset, part(which, name));
          } else if (f.role === 'tensor') input(f.name, f.offset, marks!.data);
          else if (f.role === 'out')
            spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * D * 4} ${join(d, 'out.bin')}`);
          else if (f.role === 'lse')
            spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * 4} ${join(d, 'lse.bin')}`);
          else if (f.role === 'qo_stride') spec.push(packedStrideLine(f, c.kernel, s)!);
          else spec.push(`${f.ctype} ${f.offset} ${scalars[f.name]}`);
        }
        spec.push(`qscale ${scale * Math.LOG2E}`);
        const sched = c.kernel.schedule;
        c.artifact.entryPoints.forEach((_, i) =>
          spec.push(
            `launch ${i} ${Math.ceil(s.Nq / sched.blockQ)} ${s.H} ${s.B} ${sched.threads} ${manifest.sharedBytes}`,
          ),
        );
        writeFileSync(join(d, 'spec.txt'), spec.join('\n') + '\n');
        await runEmulation(exe, join(d, 'spec.txt'));
        const empty = new Float32Array(0);
        const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
        const tensors: EvalEnv['tensors'] = marks
          ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } }
          : {};
        const ref = referenceStoredDecl(c.decl, inp, { params: {}, tensors, sizes: { ...s, D } }, caches);
        const u = new Uint8Array(readFileSync(join(d, 'out.bin')));
        const out = compareArrays(
          new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4),
          ref.out,
          ref.outScale,
        );
        expect(out.nanCount).toBe(0);
        expect(out.relError).toBeLessThan(2e-5);
      },
      300_000,
    ),
  );
});
