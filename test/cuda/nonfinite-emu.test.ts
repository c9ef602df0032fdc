// docs/LANGUAGE.md "Non-finite values" on CUDA, executed on the CPU emulator (emu.ts): the SIMT
// prefill engine, the split-KV decode kernels with their lse merge, and token selection with its
// split merge, each with NaN/Inf planted in q, k, v (allowed and masked keys) or non-finite
// scores from a score expression, compared with the reference (test/support/nonfinite.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PIPE_SMEM_DECL } from '../../src/codegen/cuda/decode-pipe.js';
import { DEVICE_END, decodeSource } from '../../src/codegen/cuda/decode.js';
import { cudaLayout } from '../../src/codegen/cuda/layout.js';
import { compile, type Compiled } from '../../src/compile.js';
import { referenceDecl } from '../../src/runtime/reference-routing.js';
import {
  expectContract,
  plantedInputs,
  type NfInputs,
  type NfShape,
  type Plant,
} from '../support/nonfinite.js';
import { buildEmulation, compileEmulation, emulationSource } from './emu.js';
import { EmuSpec, packedStridesCpp, type ArgField, type EmuCall } from './emu-call.js';
import { buildSelectEmulation, runSelect } from './select-emu.js';
import { expectOk, run, scratchDir } from './support.js';

const D = 8;
const NaN_ = Number.NaN;
const Inf = Number.POSITIVE_INFINITY;
const dir = scratchDir('nonfinite-emu');

// k == ninf: log(0) = -inf (weight 0); k == pinf: exp(> 88) = +inf; k == nan: log(-1) = NaN,
// passed on by max (fmaxf would drop it and keep the score: the row must be poisoned, as the
// reference's max says). Elsewhere a NaN q·k would become 0.0 (NaN < 100 is false): it must
// poison the row anyway.
const SCORED = `attention nf_scored(ninf: int = -1, pinf: int = -1, nan: int = -1) {
  score k == ninf ? log(score - score) : (k == pinf ? exp(score + 1000.0) : (k == nan ? max(score, log(score - score - 1.0)) : (score < 100.0 ? score : 0.0)))
  mask causal
}`;
const SELECTED = `attention nf_selected(top: int = 260, pinf: int = -1) {
  select topk(top) by q . k
  score k == pinf ? exp(score + 1000.0) : (score < 100.0 ? score : 0.0)
  mask causal
}`;

const special = fc.constantFrom(NaN_, Inf, -Inf);
const arbCall: fc.Arbitrary<Call> = fc
  .record({
    H: fc.constantFrom(1, 2),
    Nq: fc.integer({ min: 1, max: 20 }),
    extra: fc.integer({ min: 0, max: 10 }),
  })
  .chain(({ H, Nq, extra }) =>
    fc.record({
      shape: fc.constant({ B: 1, H, Hkv: 1, Nq, Nk: Nq + extra }),
      plants: fc.array(
        fc
          .tuple(
            fc.constantFrom('q', 'k', 'v'),
            fc.nat(H - 1),
            fc.nat(Nq + extra - 1),
            fc.nat(D - 1),
            special,
          )
          .map(([t, h, row, d, x]): Plant => [t, 0, t === 'q' ? h : 0, t === 'q' ? row % Nq : row, d, x]),
        { minLength: 1, maxLength: 3 },
      ),
      params: fc.record({
        ninf: fc.integer({ min: -1, max: Nq + extra - 1 }),
        pinf: fc.integer({ min: -1, max: Nq + extra - 1 }),
        nan: fc.integer({ min: -1, max: Nq + extra - 1 }),
      }),
    }),
  );

const compileCuda = (source: string): Compiled =>
  compile(source, {
    target: 'cuda',
    file: 'nonfinite.attn',
    headDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt', blockQ: 8, blockK: 8, threads: 16 },
  });

interface Call {
  readonly shape: Omit<NfShape, 'D' | 'Dv'>;
  readonly plants: readonly Plant[];
  readonly params?: Record<string, number>;
}

function prepare(c: Compiled, call: Call): { s: NfShape; inputs: NfInputs; params: Record<string, number> } {
  const s: NfShape = { ...call.shape, D, Dv: D };
  const params = { ...Object.fromEntries(c.decl.defaults), ...call.params } as Record<string, number>;
  return { s, inputs: plantedInputs(s, 5, call.plants), params };
}

function reference(c: Compiled, s: NfShape, inputs: NfInputs, params: Record<string, number>) {
  const sizes = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  return referenceDecl(
    c.decl.decl,
    { ...inputs, ...sizes, Hq: s.H, D, Dv: D },
    { params, tensors: {}, sizes: { ...sizes, D } },
  );
}

const emuCall = (s: NfShape, inputs: NfInputs, params: Record<string, number>): EmuCall => ({
  ...s,
  qOffset: s.Nk - s.Nq,
  kOffset: 0,
  scale: Math.fround(1 / Math.sqrt(D)),
  ...inputs,
  params,
  tensors: {},
});

/** The SIMT prefill kernel: the launcher's one attention launch, restated. */
async function prefill(
  c: Compiled,
  exe: string,
  caseDir: string,
  call: EmuCall,
): Promise<{ out: Float32Array; lse: Float32Array }> {
  const k = c.kernel;
  const manifest = JSON.parse(c.artifact.files![`${k.name}.json`]!);
  const spec = new EmuSpec(caseDir);
  const sizes: Record<string, number> = {
    B: call.B,
    H: call.H,
    Hkv: call.Hkv,
    Nq: call.Nq,
    Nk: call.Nk,
    q_offset: call.qOffset,
    k_offset: call.kOffset,
  };
  for (const f of manifest.args.fields as ArgField[]) {
    if (spec.commonField(f, call, k)) continue;
    if (!(f.name in sizes)) throw new Error(`prefill emulation: unknown args field ${f.field}`);
    spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
  }
  spec.qscale(k, call.scale);
  const entry = c.artifact.entryPoints.findIndex((e) => e.role === 'attention');
  spec.line(
    `launch ${entry} ${Math.ceil(call.Nq / k.schedule.blockQ)} ${call.H} ${call.B} ${k.schedule.threads} ${manifest.sharedBytes}`,
  );
  await spec.run(exe);
  return { out: new Float32Array(spec.read('out.bin')), lse: new Float32Array(spec.read('lse.bin')) };
}

/**
 * The decode split and merge kernels (decode.ts) in one executable, driven as
 * decode-emu.test.ts does; each run reads its sizes, params and split length from `cfg.txt`.
 */
async function buildDecode(c: Compiled): Promise<string> {
  const k = c.kernel;
  const ns = `attnc_${k.name}`;
  const layout = cudaLayout(k);
  const kdir = join(dir, 'decode');
  mkdirSync(kdir, { recursive: true });
  const device = decodeSource(k, layout, ns)
    .split(DEVICE_END)[0]!
    .replace('extern __shared__ float w[];', 'float* w = (float*)emu::dyn_smem;')
    .replace(PIPE_SMEM_DECL, 'float4* dec_smem = emu::dyn_smem;');
  const fld = (key: string) => layout.field(key);
  const main = `
inline float atomicAdd(float* p, float v) { const float o = *p; *p = o + v; return o; }
${device}
int main(int, char** argv) {
  using namespace ${ns};
  const std::string d = argv[1];
  AttncArgs_${k.name} a{};
  int split_keys = 0;
  FILE* cfg = fopen((d + "/cfg.txt").c_str(), "r");
  if (fscanf(cfg, "%d %d %d %d %d %d %d %d", &a.B, &a.H, &a.Hkv, &a.Nq, &a.Nk, &a.q_offset, &a.k_offset, &split_keys) != 8) return 4;
  ${k.params.map((p) => `{ double x; if (fscanf(cfg, "%lf", &x) != 1) return 4; a.${fld(`param:${p.name}`)} = x; }`).join('\n  ')}
  fclose(cfg);
  a.scale = ${Math.fround(1 / Math.sqrt(D))}f;
  ${packedStridesCpp(k, 'a')}
  const size_t nq = (size_t)a.B * a.H * a.Nq, nk = (size_t)a.B * a.Hkv * a.Nk;
  auto rd = [&](const char* n, size_t bytes) { void* b = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64); FILE* f = fopen((d + n).c_str(), "rb"); if (bytes && fread(b, 1, bytes, f) != bytes) exit(3); fclose(f); return b; };
  a.${fld('q')} = rd("/q.bin", nq * D * 4);
  a.${fld('k')} = rd("/k.bin", nk * D * 4);
  a.${fld('v')} = rd("/v.bin", nk * DV * 4);
  std::vector<float> out(nq * DV, 12345.f), lse(nq, 12345.f);
  a.${fld('out')} = out.data();
  a.${fld('lse')} = lse.data();
  const int row_tiles = ((a.H / a.Hkv) * a.Nq + dec::MT - 1) / dec::MT, n_splits = (a.Nk + split_keys - 1) / split_keys;
  std::vector<float> part((size_t)a.B * a.Hkv * row_tiles * n_splits * dec::MT * (DV + 2), NAN);
  emu::launch(dim3{(unsigned)(n_splits * row_tiles), (unsigned)a.Hkv, (unsigned)a.B}, 128, dec::SPLIT_SMEM, [&] { dec::split_kernel(a, part.data(), split_keys, n_splits, row_tiles); });
  emu::launch(dim3{(unsigned)a.Nq, (unsigned)a.H, (unsigned)a.B}, 128, n_splits * 4, [&] { dec::merge_kernel(a, part.data(), n_splits, row_tiles); });
  FILE* f = fopen((d + "/out.bin").c_str(), "wb"); fwrite(out.data(), 4, out.size(), f); fclose(f);
  f = fopen((d + "/lse.bin").c_str(), "wb"); fwrite(lse.data(), 4, lse.size(), f); fclose(f);
  return 0;
}
`;
  const base = emulationSource(c.artifact, k);
  const src = join(kdir, 'decode.emu.cpp');
  writeFileSync(src, base.slice(0, base.indexOf('// Spec lines:')) + main);
  const exe = join(kdir, 'decode.emu');
  await compileEmulation(src, exe, `g++ ${src}`);
  return exe;
}

async function decode(
  c: Compiled,
  exe: string,
  caseDir: string,
  call: EmuCall,
  splitKeys: number,
): Promise<{ out: Float32Array; lse: Float32Array }> {
  mkdirSync(caseDir, { recursive: true });
  for (const n of ['q', 'k', 'v'] as const)
    writeFileSync(join(caseDir, `${n}.bin`), new Uint8Array(call[n].buffer));
  const sizes = [call.B, call.H, call.Hkv, call.Nq, call.Nk, call.qOffset, call.kOffset, splitKeys];
  const params = c.kernel.params.map((p) => call.params[p.name]);
  writeFileSync(join(caseDir, 'cfg.txt'), [...sizes, ...params].join(' ') + '\n');
  expectOk(await run(exe, [caseDir]), exe);
  const read = (n: string): Float32Array => {
    const b = readFileSync(join(caseDir, n));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  return { out: read('out.bin'), lse: read('lse.bin') };
}

describe.concurrent('CUDA kernels (emulated) follow the non-finite contract', () => {
  it('SIMT prefill: NaN in k row 6, q, v (allowed and masked keys), Inf v, non-finite scores', async () => {
    const c = compileCuda(SCORED);
    const kdir = join(dir, 'prefill');
    mkdirSync(kdir, { recursive: true });
    const exe = await buildEmulation(kdir, c.artifact, c.kernel);
    const calls: Call[] = [
      {
        shape: { B: 1, H: 2, Hkv: 1, Nq: 20, Nk: 20 },
        plants: [
          ['k', 0, 0, 6, 3, NaN_],
          ['q', 0, 1, 2, 0, NaN_],
          ['v', 0, 0, 1, 2, NaN_],
          ['v', 0, 0, 3, 5, Inf],
        ],
      },
      {
        shape: { B: 1, H: 1, Hkv: 1, Nq: 19, Nk: 19 },
        plants: [['v', 0, 0, 0, 1, NaN_]],
        params: { ninf: 0, pinf: 12, nan: 17 },
      },
    ];
    for (const [i, call] of calls.entries()) {
      const { s, inputs, params } = prepare(c, call);
      const caseDir = join(kdir, `case-${i}`);
      mkdirSync(caseDir, { recursive: true });
      const res = await prefill(c, exe, caseDir, emuCall(s, inputs, params));
      expectContract(res, reference(c, s, inputs, params), ` (simt prefill case ${i})`, 2e-5);
    }
    // Random shapes, plants (NaN/±Inf anywhere: CUDA's f32 is IEEE) and non-finite score positions.
    let n = 0;
    await fc.assert(
      fc.asyncProperty(arbCall, async (call) => {
        const { s, inputs, params } = prepare(c, call);
        const caseDir = join(kdir, `random-${n++}`);
        mkdirSync(caseDir, { recursive: true });
        const res = await prefill(c, exe, caseDir, emuCall(s, inputs, params));
        const ref = reference(c, s, inputs, params);
        expectContract(res, ref, ` (simt prefill ${JSON.stringify(call)})`, 2e-5, { nanOptional: true });
      }),
      { numRuns: 8 },
    );
  });

  it('split-KV decode: a poisoned split makes the merged row NaN; NaN v of a masked key', async () => {
    const c = compileCuda(SCORED);
    const calls: Call[] = [
      {
        shape: { B: 1, H: 2, Hkv: 2, Nq: 2, Nk: 200 },
        plants: [
          ['k', 0, 0, 100, 1, NaN_],
          ['v', 0, 1, 199, 2, NaN_],
        ],
      },
      // Rows 0..2 at positions 97..99: key 60 (+inf) poisons every row, key 98 (-inf) weighs 0.
      { shape: { B: 1, H: 2, Hkv: 1, Nq: 3, Nk: 100 }, plants: [], params: { pinf: 60, ninf: 98 } },
      // A NaN q: every score NaN, so each split's m stays -inf and its l is NaN.
      { shape: { B: 1, H: 1, Hkv: 1, Nq: 1, Nk: 100 }, plants: [['q', 0, 0, 0, 0, NaN_]] },
    ];
    const exe = await buildDecode(c);
    for (const [i, call] of calls.entries()) {
      const { s, inputs, params } = prepare(c, call);
      const res = await decode(c, exe, join(dir, 'decode', `case-${i}`), emuCall(s, inputs, params), 32);
      expectContract(res, reference(c, s, inputs, params), ` (decode ${JSON.stringify(call)})`, 2e-5);
    }
  });

  it('token selection with two attention splits and their merge: +inf score, NaN q and v', async () => {
    const c = compileCuda(SELECTED);
    const kdir = join(dir, 'select');
    mkdirSync(kdir, { recursive: true });
    const exe = await buildSelectEmulation(kdir, c.artifact, c.kernel);
    const calls: Call[] = [
      {
        shape: { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 300 },
        plants: [['v', 0, 0, 299, 3, NaN_]],
        params: { pinf: 280 },
      },
      {
        shape: { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 300 },
        plants: [['v', 0, 0, 10, 3, NaN_]],
        params: { pinf: 5 },
      },
      // A NaN q row: its affinities rank as -inf (the lowest ids are picked), its q·k are NaN.
      { shape: { B: 1, H: 1, Hkv: 1, Nq: 2, Nk: 300 }, plants: [['q', 0, 0, 1, 4, NaN_]] },
    ];
    for (const [i, call] of calls.entries()) {
      const { s, inputs, params } = prepare(c, call);
      const ref = reference(c, s, inputs, params);
      const res = await runSelect(exe, join(kdir, `case-${i}`), c.artifact, c.kernel, {
        ...emuCall(s, inputs, params),
        K: ref.routing!.K,
      });
      expect([...res.indices], `indices (select case ${i})`).toEqual([...ref.routing!.indices]);
      expectContract(res, ref, ` (select case ${i})`, 2e-5);
    }
  });
});
