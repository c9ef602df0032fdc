// The CUDA importance pass (src/codegen/cuda/importance.ts) executed on the CPU emulator
// (test/cuda/emu.ts) after the SIMT attention, against the dense float64 reference: random
// mask/score programs and shapes (GQA, Nq ≠ Nk, ragged tails, offsets, decode-sized Nq, Nq = 0),
// both modes, f32 storage, relative error ≤ 1e-5. The launcher's part is restated here: summaries,
// the attention, then the importance pass (also when Nq = 0: it writes zeros).
import fc from 'fast-check';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IMP_KEYS } from '../../src/codegen/cuda/importance.js';
import { compile, type Compiled } from '../../src/compile.js';
import { printDecl } from '../../src/dsl/print.js';
import type { ImportanceMode } from '../../src/ir/kernel.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { referenceImportance } from '../../src/runtime/importance-ref.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { arbProgram, arbShape, makeInputs, type Shape } from '../support/arbitraries.js';
import { buildEmulation } from '../cuda/emu.js';
import { EmuSpec, type ArgField, type EmuCall } from '../cuda/emu-call.js';
import { scratchDir } from '../cuda/support.js';

const runs = Number(process.env.ATTNC_IMPORTANCE_EMU_RUNS ?? 10);
const dir = scratchDir('importance-emu');
let caseId = 0;

function compileFor(source: string, mode: ImportanceMode, tile: number): Compiled {
  return compile(source, {
    target: 'cuda',
    file: 'importance.attn',
    headDim: 16,
    dtype: 'f32',
    schedule: { engine: 'simt', blockQ: tile, blockK: tile, threads: 2 * tile },
    importance: mode,
  });
}

/** Runs the summaries, the attention and the importance pass; returns the importance output. */
async function emulate(c: Compiled, exe: string, call: EmuCall, at: string): Promise<Float32Array> {
  const { artifact: a, kernel: k } = c;
  mkdirSync(at, { recursive: true });
  const spec = new EmuSpec(at);
  const manifest = JSON.parse(a.files![`${k.name}.json`]!) as {
    args: { fields: ArgField[] };
    sharedBytes: number;
  };
  const sizes: Record<string, number> = {
    B: call.B,
    H: call.H,
    Hkv: call.Hkv,
    Nq: call.Nq,
    Nk: call.Nk,
    q_offset: call.qOffset,
    k_offset: call.kOffset,
  };
  for (const f of manifest.args.fields) {
    if (spec.commonField(f, call, k)) continue;
    if (f.role === 'importance') spec.output(f.offset, 4 * call.B * call.H * call.Nk, 'importance.bin');
    else if (f.role === 'size' || f.role === 'offset') spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`importance emulation: unexpected args field ${f.field} (${f.role})`);
  }
  spec.summaries(a, k, call);
  spec.qscale(k, call.scale);
  const attention = a.entryPoints.findIndex((e) => e.role === 'attention');
  const importance = a.entryPoints.findIndex((e) => e.role === 'importance');
  const s = k.schedule;
  if (call.Nq > 0)
    spec.line(
      `launch ${attention} ${Math.ceil(call.Nq / s.blockQ)} ${call.H} ${call.B} ${s.threads} ${manifest.sharedBytes}`,
    );
  if (call.Nk > 0)
    spec.line(`launch ${importance} ${Math.ceil(call.Nk / IMP_KEYS)} ${call.Hkv} ${call.B} ${IMP_KEYS} 0`);
  await spec.run(exe);
  return call.Nk > 0 ? new Float32Array(spec.read('importance.bin')) : new Float32Array(0);
}

async function check(
  source: string,
  shapes: readonly Shape[],
  mode: ImportanceMode,
  tile: number,
  seed: number,
  poison?: (k: Float32Array) => void,
) {
  const c = compileFor(source, mode, tile);
  const at = join(dir, `p${caseId++}`);
  mkdirSync(at, { recursive: true });
  const exe = await buildEmulation(at, c.artifact, c.kernel);
  for (const [n, shape] of shapes.entries()) {
    const inputs = makeInputs(shape, seed + n);
    poison?.(inputs.k);
    const params = Object.fromEntries(c.decl.defaults) as Record<string, number>;
    const used = Object.fromEntries(c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc']]));
    const call: EmuCall = {
      B: shape.B,
      H: shape.Hq,
      Hkv: shape.Hkv,
      Nq: shape.Nq,
      Nk: shape.Nk,
      qOffset: shape.qOffset ?? shape.Nk - shape.Nq,
      kOffset: shape.kOffset ?? 0,
      scale: Math.fround(1 / Math.sqrt(shape.D)),
      q: inputs.q,
      k: inputs.k,
      v: inputs.v,
      params,
      tensors: Object.fromEntries(
        Object.entries(used).map(([name, t]) => [name, t.data]),
      ) as EmuCall['tensors'],
    };
    const got = await emulate(c, exe, call, join(at, `case${n}`));
    const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
    const pred = declPredicates(c.decl.decl, { params, tensors: used, sizes: { ...sizes, D: shape.D } });
    const ref = referenceAttention(
      {
        ...inputs,
        ...sizes,
        Hq: shape.Hq,
        D: shape.D,
        Dv: shape.Dv,
        qOffset: shape.qOffset,
        kOffset: shape.kOffset,
      },
      pred,
    );
    const expected = referenceImportance(ref, shape, mode);
    const where = `\n${source}\nshape ${JSON.stringify(shape)} mode ${mode} tile ${tile} seed ${seed + n}`;
    const cmp = compareArrays(got, expected);
    expect(cmp.nanCount, `NaN importance${where}`).toBe(0);
    expect(cmp.relError, `importance relative error${where}`).toBeLessThanOrEqual(1e-5);
  }
}

const withD16 = (s: Shape): Shape => ({ ...s, D: 16, Dv: 16 });
/** Three shapes per program: prefill-sized, decode-sized (1–3 rows over ≤ 300 keys), and another. */
const arbShapes = fc.tuple(
  arbShape({ maxN: 90 }).map(withD16),
  arbShape({ maxN: 300 }).map((s) => withD16({ ...s, Nq: 1 + (s.Nq % 3) })),
  arbShape({ maxN: 150 }).map(withD16),
);

describe('CUDA importance on the CPU emulator agrees with the reference', () => {
  it('random programs × shapes, both modes', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbProgram(),
        arbShapes,
        fc.constantFrom('sum', 'normalized') as fc.Arbitrary<ImportanceMode>,
        fc.constantFrom(16, 32),
        fc.integer({ min: 0, max: 1 << 20 }),
        (decl, shapes, mode, tile, seed) => check(printDecl(decl), shapes, mode, tile, seed),
      ),
      { numRuns: runs },
    );
  }, 1_200_000);

  it('Nq = 0 writes zeros; a causal decode row sees every key', async () => {
    const source = 'attention causal() {\n  mask q >= k\n}';
    const base: Shape = { B: 1, Hq: 4, Hkv: 2, Nq: 0, Nk: 131, D: 16, Dv: 16 };
    await check(source, [base, { ...base, Nq: 1 }, { ...base, Nq: 40, Nk: 40 }], 'normalized', 16, 3);
  }, 600_000);

  it('a NaN key poisons the rows that see it: they add nothing (as in the reference)', async () => {
    const shape: Shape = { B: 1, Hq: 2, Hkv: 1, Nq: 40, Nk: 40, D: 16, Dv: 16 };
    // Key 20's row: rows 20.. see it under the causal mask and turn NaN; rows before it do not.
    const nanKey = (k: Float32Array): void => void k.fill(NaN, 20 * 16, 21 * 16);
    for (const mode of ['sum', 'normalized'] as const)
      await check('attention causal() {\n  mask q >= k\n}', [shape], mode, 16, 9, nanKey);
  }, 600_000);

  it('a mask that allows nothing writes zeros (every tile statically empty)', async () => {
    const shape: Shape = { B: 2, Hq: 4, Hkv: 2, Nq: 5, Nk: 140, D: 16, Dv: 16 };
    await check('attention never() {\n  mask false\n}', [shape], 'sum', 16, 5);
  }, 600_000);
});
