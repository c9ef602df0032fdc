// Quantized K/V caches on the CUDA SIMT engine, executed on the CPU (test/cuda/emu.ts) against the
// oracle (referenceStoredDecl): every element type, symmetric and asymmetric, each granularity
// with ragged groups, normalizers, recent windows and flagged salient tokens, GQA and Nq ≠ Nk.
// The engine choice: the SIMT engine at f32, a tensor-core engine at 16 bits (test/quant/tc-*),
// and decode mode (test/cuda/decode-quant-emu.test.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { QuantCache } from '../../src/quant/layout.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { buildEmulation, runEmulation } from '../cuda/emu.js';
import { expectOk, render, run, scratchDir, writeArtifact, quickCheckFlags } from '../cuda/support.js';
import { packedStrideLine } from '../cuda/emu-call.js';

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
  'store k e3m4 scale f16 per token\n  store v e3m4',
];

const shapes = [
  { B: 2, H: 2, Hkv: 1, Nq: 7, Nk: 37 },
  { B: 1, H: 4, Hkv: 2, Nq: 19, Nk: 19 },
];

describe.concurrent('CUDA SIMT dequantizing K/V loads (CPU emulation)', () => {
  const dir = scratchDir('quant');
  stores.forEach((store, p) =>
    it(
      store.replace(/\n\s*/g, '; '),
      async () => {
        const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
        const source = `attention quant${p}(${params}) {\n  ${store}\n  mask causal\n}`;
        const c = compile(source, {
          target: 'cuda',
          headDim: 16,
          valueDim: 16,
          dtype: 'f32',
          schedule: { blockQ: 16, blockK: 16, threads: 16 },
        });
        expect(c.kernel.schedule.engine ?? 'simt').toBe('simt');
        const a = render(c.kernel);
        const exe = await buildEmulation(dir, a, c.kernel);
        for (const [i, s] of shapes.entries())
          await runQuantCase(exe, join(dir, c.kernel.name, `case${i}`), c, s, 17 * i + p);
      },
      240_000,
    ),
  );

  it('every format compiles with nvcc -arch=sm_90a, warnings as errors', async () => {
    const kivi = readFileSync('examples/quant/kivi.attn', 'utf8');
    const sources = [
      kivi,
      ...stores.map((st, p) => `attention nv${p}(sal: i32[batch, kv_heads, kv]) {\n  ${st}\n}`),
    ];
    for (const [i, src] of sources.entries()) {
      const { artifact } = compile(src, { target: 'cuda', headDim: 128 });
      const cu = writeArtifact(dir, artifact);
      const flags = quickCheckFlags('sm_90a');
      expectOk(
        await run(process.env.NVCC ?? 'nvcc', [...flags, '-c', cu, '-o', join(dir, `nv${i}.o`)]),
        `nvcc ${cu}`,
      );
    }
  }, 600_000);

  it('takes a tensor-core engine at 16 bits (SIMT at f32), with decode mode', () => {
    const src = 'attention t() {\n  store kv int8 scale f16 per token\n}';
    const c = compile(src, { target: 'cuda', headDim: 128 });
    expect(c.kernel.schedule.engine).toBe('wgmma-ws');
    expect(compile(src, { target: 'cuda', headDim: 128, dtype: 'f32' }).kernel.schedule.engine).toBe('simt');
    expect(c.artifact.code).toContain('namespace dec {');
    // The header says what k holds; the launcher refuses a missing cache tensor.
    expect(c.artifact.files!['t.h']).toContain('[B, Hkv, Nk, 32] u32: int8 codes of a quantized cache');
    expect(c.artifact.code).toContain('if (a.Nk > 0 && a.k_scale == NULL) return fail(ATTNC_ERR_ARGS');
    expect(
      compile(src, { target: 'cuda', headDim: 128, schedule: { engine: 'mma' } }).kernel.schedule.engine,
    ).toBe('mma');
    // The importance pass dequantizes its key rows too (test/quant/cuda-importance-emu.test.ts).
    const imp = compile('attention t() {\n  store kv int8 scale f16 per token\n  importance sum\n}', {
      target: 'cuda',
    });
    expect(imp.artifact.entryPoints.at(-1)?.role).toBe('importance');
  });
});

type Compiled = ReturnType<typeof compile>;

async function runQuantCase(
  exe: string,
  dir: string,
  c: Compiled,
  s: { B: number; H: number; Hkv: number; Nq: number; Nk: number },
  seed: number,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const D = 16;
  const rand = rng(seed + 1);
  const stored = randomStoredInputs(checkedFormats(c.decl), { ...s, D, Dv: D }, rand);
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  const marks = stored.salient.sal;
  const scale = Math.fround(1 / Math.sqrt(D));
  const manifest = JSON.parse(c.artifact.files![`${c.kernel.name}.json`]!);
  const spec: string[] = [];
  const input = (name: string, off: number, data: ArrayBufferView): void => {
    const path = join(dir, name);
    writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    spec.push(`in ${off} ${data.byteLength} ${path}`);
  };
  const part = (which: 'k' | 'v', name: string): ArrayBufferView => {
    const cache = stored.caches[which]!;
    const held = cache[name as keyof QuantCache];
    if (held === undefined) throw new Error(`test: cache ${which} has no ${name}`);
    return ArrayBuffer.isView(held) ? held : held.data;
  };
  const sizes: Record<string, number> = { ...s, q_offset: s.Nk - s.Nq, k_offset: 0, scale };
  for (const f of manifest.args.fields as Field[]) {
    if (f.role === 'q') input('q', f.offset, q);
    else if (f.role === 'k' || f.role === 'v') input(f.role, f.offset, part(f.role, 'codes'));
    else if (f.role === 'cache') {
      const [which, name] = f.name.split('_') as ['k' | 'v', string];
      input(f.name, f.offset, part(which, name));
    } else if (f.role === 'tensor') input(f.name, f.offset, marks!.data);
    else if (f.role === 'out')
      spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * D * 4} ${join(dir, 'out.bin')}`);
    else if (f.role === 'lse') spec.push(`out ${f.offset} ${s.B * s.H * s.Nq * 4} ${join(dir, 'lse.bin')}`);
    else if (f.role === 'qo_stride') spec.push(packedStrideLine(f, c.kernel, s)!);
    else spec.push(`${f.ctype} ${f.offset} ${sizes[f.name]}`);
  }
  spec.push(`qscale ${scale * Math.LOG2E}`);
  const sched = c.kernel.schedule;
  c.artifact.entryPoints.forEach((_, i) =>
    spec.push(
      `launch ${i} ${Math.ceil(s.Nq / sched.blockQ)} ${s.H} ${s.B} ${sched.threads} ${manifest.sharedBytes}`,
    ),
  );
  writeFileSync(join(dir, 'spec.txt'), spec.join('\n') + '\n');
  await runEmulation(exe, join(dir, 'spec.txt'));

  const empty = new Float32Array(0);
  const inp = { q, k: empty, v: empty, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
  const tensors: EvalEnv['tensors'] = marks ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } } : {};
  const env = { params: {}, tensors, sizes: { ...s, D } };
  const ref = referenceStoredDecl(c.decl, inp, env, stored.caches);
  const read = (name: string): Float32Array => {
    const u = new Uint8Array(readFileSync(join(dir, name)));
    return new Float32Array(u.buffer, u.byteOffset, u.byteLength / 4);
  };
  const what = `${c.kernel.name} ${JSON.stringify(s)}`;
  const out = compareArrays(read('out.bin'), ref.out, ref.outScale);
  expect(out.nanCount, what).toBe(0);
  expect(out.relError, what).toBeLessThan(2e-5);
  expect(compareArrays(read('lse.bin'), ref.lse, 1).relError, what).toBeLessThan(2e-5);
}
