// The whole staged prefill (Schedule.quantPrefill 'staged', src/codegen/cuda/quant-stage.ts) on the
// CPU emulator, SIMT form: the dequant pass into a workspace, then the float twin's attention over
// it with the args the staged launcher builds (twinArgsCopies, args_init's packed strides), against
// the oracle over the quantized caches (referenceStoredDecl): formats with zero points, norms,
// recent windows and salient tokens, GQA, Nq ≠ Nk, causal and windowed masks.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { renderCuda } from '../../src/codegen/cuda/kernel.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { strideDefaults } from '../../src/codegen/cuda/launcher-checks.js';
import { floatTwin, stageEntry, stagePassCode, twinArgsCopies } from '../../src/codegen/cuda/quant-stage.js';
import { compile, type Compiled } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import type { EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import { referenceStoredDecl } from '../../src/runtime/reference-quant.js';
import { buildEmulation } from '../cuda/emu.js';
import { EmuSpec, type ArgField, type EmuCall } from '../cuda/emu-call.js';
import { meta, scratchDir } from '../cuda/support.js';

const D = 16;
const dir = scratchDir('qstage-full');

const programs: readonly (readonly [string, string])[] = [
  ['store kv int8 scale f32 per token', 'mask causal'],
  [
    'store k int4 scale f16 per channel group 3 zero f16\n  store v int2 scale f16 per token group 16 zero f16',
    '',
  ],
  ['store kv e4m3 scale f32 per token group 4 norm f32 recent 2 bf16', 'mask k > q - 9'],
  ['store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal', 'mask causal'],
  ['store v int8 scale f32 per token', 'mask causal'],
];

const shapes = [
  { B: 2, H: 2, Hkv: 1, Nq: 37, Nk: 37 },
  { B: 1, H: 4, Hkv: 2, Nq: 19, Nk: 50 },
];
const MAX_WS = 2 * 2 * 50 * 2 * D; // elements: the largest shape's K and V rows

function compileCase(name: string, store: string, body: string): Compiled {
  const params = store.includes('salient') ? 'sal: i32[batch, kv_heads, kv]' : '';
  return compile(`attention ${name}(${params}) {\n  ${store}\n  ${body}\n}`, {
    target: 'cuda',
    headDim: D,
    valueDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt', blockQ: 16, blockK: 16, threads: 16, quantPrefill: 'staged' },
  });
}

/** The staged artifact's device code with two probe entries: the pass (0) and the twin (1). */
function emulated(c: Compiled): { artifact: Artifact; twinThreads: number; twinSmem: number } {
  const k = c.kernel;
  const code = c.artifact.code;
  const fusedEnd = code.indexOf(`} // namespace attnc_${k.name}`);
  const twinStart = code.indexOf('// ---- staged prefill: the float twin');
  const twinClose = `} // namespace attnc_${k.name}__staged`;
  const twinEnd = code.indexOf(twinClose, twinStart) + twinClose.length;
  // The twin first (its Args and namespace), renamed at its end so that the emulator cuts after the probes.
  const twinPart = code.slice(twinStart, twinEnd).replace(twinClose, '} // the twin');
  const twin = floatTwin(k);
  const twinLayout = cudaLayout(twin);
  const twinManifest = JSON.parse(renderCuda(twin, meta).files![`${twin.name}.json`]!);
  const kq = k.formats.k.kind === 'quant';
  const probes = [
    ...stagePassCode(k, code.slice(0, fusedEnd)),
    `static T stage_ws[${MAX_WS}];`,
    'static T* const kw = stage_ws;',
    'extern "C" __global__ void stage_pass_probe(const Args a, const float) {',
    `  ${stageEntry(k)}(a, kw, kw + (size_t)a.B * a.Hkv * a.Nk * ${kq ? 'D' : '0'});`,
    '}',
    'extern "C" __global__ void stage_attn_probe(const Args a, const float qscale) {',
    `  T* vw = kw + (size_t)a.B * a.Hkv * a.Nk * ${kq ? 'D' : '0'};`,
    '  (void)vw;',
    `  ${twinLayout.struct} t;`,
    '  memset(&t, 0, sizeof t);',
    '  const int Nk = a.Nk, Hkv = a.Hkv;',
    ...strideDefaults(twin, '(&t)'),
    ...twinArgsCopies(k, cudaLayout(k), twinLayout),
    `  attnc_${twin.name}::attnc_${twin.name}_attention(t, qscale);`,
    '}',
  ];
  const device = [twinPart, code.slice(0, fusedEnd), ...probes, code.slice(fusedEnd)]
    .join('\n')
    .replaceAll('extern __shared__ float4 smem4[];', 'float4* smem4 = emu::dyn_smem;');
  const entry = c.artifact.entryPoints.find((e) => e.role === 'attention')!;
  return {
    artifact: {
      ...c.artifact,
      code: device,
      entryPoints: [
        { ...entry, name: 'stage_pass_probe' },
        { ...entry, name: 'stage_attn_probe' },
      ],
    },
    twinThreads: twin.schedule.threads,
    twinSmem: twinManifest.sharedBytes,
  };
}

async function runCase(c: Compiled, exe: string, at: string, s: (typeof shapes)[number], seed: number) {
  mkdirSync(at, { recursive: true });
  const rand = rng(seed);
  const stored = randomStoredInputs(checkedFormats(c.decl), { ...s, D, Dv: D }, rand);
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  const k = new Float32Array(s.B * s.Hkv * s.Nk * D).map(() => rand() * 2 - 1);
  const marks = stored.salient.sal;
  const call: EmuCall = {
    ...s,
    qOffset: s.Nk - s.Nq,
    kOffset: 0,
    scale: Math.fround(1 / Math.sqrt(D)),
    q,
    k: stored.caches.k ? new Float32Array(0) : k,
    v: new Float32Array(0),
    params: {},
    tensors: marks ? { sal: Int32Array.from(marks.data) } : {},
  };
  const kern = c.kernel;
  const manifest = JSON.parse(c.artifact.files![`${kern.name}.json`]!) as { args: { fields: ArgField[] } };
  const spec = new EmuSpec(at);
  const sizes: Record<string, number> = { ...s, q_offset: call.qOffset, k_offset: 0 };
  for (const f of manifest.args.fields) {
    if (spec.cacheField(f, stored.caches) || spec.commonField(f, call, kern)) continue;
    if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`staged emulation: unexpected args field ${f.field} (${f.role})`);
  }
  spec.qscale(kern, call.scale);
  const { twinThreads, twinSmem } = emulated(c);
  const chunks = ((stored.caches.k ? D : 0) + D) / 8;
  const rows = Math.floor(256 / chunks);
  spec.line(`launch 0 ${Math.ceil(s.Nk / rows)} ${s.Hkv} ${s.B} ${rows * chunks} 0`);
  spec.line(`launch 1 ${Math.ceil(s.Nq / kern.schedule.blockQ)} ${s.H} ${s.B} ${twinThreads} ${twinSmem}`);
  await spec.run(exe);

  const inp = { q, k: call.k, v: call.v, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
  const tensors: EvalEnv['tensors'] = marks ? { sal: { data: marks.data, shape: [s.B, s.Hkv, s.Nk] } } : {};
  const ref = referenceStoredDecl(c.decl, inp, { params: {}, tensors, sizes: { ...s, D } }, stored.caches);
  const what = `${kern.name} ${JSON.stringify(s)} seed ${seed}`;
  const out = compareArrays(new Float32Array(spec.read('out.bin')), ref.out, ref.outScale);
  expect(out.nanCount, what).toBe(0);
  expect(out.relError, what).toBeLessThan(2e-5);
  const lse = compareArrays(new Float32Array(spec.read('lse.bin')), ref.lse);
  expect(lse.relError, `lse ${what}`).toBeLessThan(2e-5);
}

describe.concurrent('staged prefill, pass then float twin (CPU emulation, SIMT)', () => {
  programs.forEach(([store, body], p) =>
    it(`${store.replace(/\n\s*/g, '; ')}; ${body || 'no mask'}`, async () => {
      const c = compileCase(`qsf${p}`, store, body);
      const at = join(dir, c.kernel.name);
      mkdirSync(at, { recursive: true });
      const exe = await buildEmulation(at, emulated(c).artifact, c.kernel);
      for (const [i, s] of shapes.entries()) await runCase(c, exe, join(at, `case${i}`), s, 31 * p + i);
    }, 240_000),
  );
});
