// Writes what bench/cuda/quant-decode.py checks and times: CUDA decode over bf16 and quantized K/V
// caches (int8, fp8 e4m3, int4 and int2 KIVI-style, int4 / int2 per token), one artifact per format, plus correctness
// cases: quantized caches built by src/quant, q, and the float64 reference's out and lse; and the
// knob variants (DECODE_KNOB_VARIANTS, src/codegen/cuda/decode-knobs.ts) each format is rebuilt with. `--only a,b` keeps those variants,
// `--cases 0,2` those correctness cases (all three take 31 MiB; cases 0 and 2, 11 MiB), `--formats` those formats.
//   npx tsc -p tsconfig.json && node bench/cuda/quant-decode-emit.mjs
//     → bench/build/cuda-quant-decode/{index.json, <name>.{cu,json}, cases/<name>-<i>/*.bin}
// Caches are packed [B, Hkv, Nk, ...] here (quant-decode.py binds no block table).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const imp = (p) => import(pathToFileURL(join(root, 'dist/src', p)).href);
const { compile } = await imp('compile.js');
const { checkedFormats } = await imp('quant/format.js');
const { cacheBytes, cacheLayout, cacheTensors } = await imp('quant/layout.js');
const { randomStoredInputs, rng } = await imp('runtime/inputs.js');
const { referenceStoredDecl } = await imp('runtime/reference-quant.js');
const { DECODE_KNOB_VARIANTS: knobVariants } = await imp('codegen/cuda/decode-knobs.js');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1].split(',')) : undefined;
const knobs = knobVariants.filter((v) => !only || only.has(v.name));
if (knobs.length === 0) throw new Error(`--only: none of ${knobVariants.map((v) => v.name).join(', ')}`);

const out = join(root, 'bench/build/cuda-quant-decode');
mkdirSync(join(out, 'cases'), { recursive: true });
const D = 128;
const kivi = (bits) =>
  `store k int${bits} scale f16 per channel group 32 zero f16 recent 128 f16\n` +
  `  store v int${bits} scale f16 per token group 32 zero f16 recent 128 f16`;
/** name, `store` statements (none: the bf16 cache itself), what it is. */
const variants = [
  { name: 'bf16', store: '', what: 'attnc bf16 (dense cache)' },
  { name: 'int8', store: 'store kv int8 scale f16 per token', what: 'int8, f16 scale per token' },
  { name: 'e4m3', store: 'store kv e4m3 scale f16 per token', what: 'fp8 e4m3, f16 scale per token' },
  {
    name: 'int4',
    store: kivi(4),
    what: 'int4 KIVI-style (k per channel g32, v per token g32, recent 128 f16)',
  },
  {
    name: 'int2',
    store: kivi(2),
    what: 'int2 KIVI-style (k per channel g32, v per token g32, recent 128 f16)',
  },
  // Per-token sub-byte caches (decode-mma-tokint.ts, the key-major kernel): symmetric, and with a
  // zero point a token (LMDeploy / QServe-style KV4), per 64 channels (HF QuantizedCache), int2.
  { name: 'int4t', store: 'store kv int4 scale f16 per token', what: 'int4 symmetric, f16 scale per token' },
  {
    name: 'int4tz',
    store: 'store kv int4 scale f16 per token zero f16',
    what: 'int4 asymmetric, f16 scale and zero per token',
  },
  {
    name: 'int4g64z',
    store: 'store kv int4 scale f16 per token group 64 zero f16',
    what: 'int4 asymmetric, f16 scale and zero per token and 64 channels (HF QuantizedCache-style)',
  },
  {
    name: 'int2tz',
    store: 'store kv int2 scale f16 per token zero f16',
    what: 'int2 asymmetric, f16 scale and zero per token',
  },
];
// `--formats a,b` keeps those formats (default: all nine).
const formatsAt = process.argv.indexOf('--formats');
const formatSel = formatsAt > 0 ? new Set(process.argv[formatsAt + 1].split(',')) : undefined;
const emitted = variants.filter((v) => !formatSel || formatSel.has(v.name));
if (emitted.length === 0) throw new Error(`--formats: none of ${variants.map((v) => v.name).join(', ')}`);
/** Correctness cases (decode mode is taken for Nq ≤ 16, Nk ≥ 1024), and the timed shapes. */
const casesAt = process.argv.indexOf('--cases');
const caseSel = casesAt > 0 ? new Set(process.argv[casesAt + 1].split(',').map(Number)) : undefined;
const checks = [
  { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 1500 },
  { B: 1, H: 16, Hkv: 4, Nq: 1, Nk: 3100 },
  { B: 1, H: 6, Hkv: 2, Nq: 3, Nk: 2100 },
]
  .map((s, i) => ({ s, i }))
  .filter(({ i }) => !caseSel || caseSel.has(i));
if (checks.length === 0) throw new Error('--cases: none of 0, 1, 2');
const timed = [32768, 131072].map((Nk) => ({ B: 4, H: 32, Hkv: 8, Nq: 1, Nk }));

const bf16Bits = (x) => {
  const u = new Uint32Array(Float32Array.from(x).buffer);
  return new Uint16Array(u.map((w) => w >>> 16)); // truncation: the kernel's q is exactly these values
};
const fromBf16 = (b) => new Float32Array(new Uint32Array(Array.from(b, (x) => x << 16)).buffer);
const bytes = (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const index = [];
for (const v of emitted) {
  const source = `attention qd_${v.name}() {\n  ${v.store}\n}\n`;
  // The lean per-step code behind -DATTNC_DEC_MMA_LEAN, so the lean1..3 variants build from the same
  // artifacts (decode-mma-lean.ts), with the compiler's own default unset: 3 for quantized caches
  // (Schedule.decodeLean 'on'), 0 for bf16 ('knob'). (Until round 32 every artifact took 0, so the
  // `default` variant of a quantized cache was not the emitted default: its `lean3` was.)
  const schedule = { decodeLean: v.store ? 'on' : 'knob' };
  const c = compile(source, {
    target: 'cuda',
    headDim: D,
    dtype: 'bf16',
    file: `qd_${v.name}.attn`,
    schedule,
  });
  if (!c.artifact.code.includes('namespace dec {')) throw new Error(`${v.name}: no decode path`);
  writeFileSync(join(out, `${v.name}.cu`), c.artifact.code);
  writeFileSync(join(out, `${v.name}.json`), c.artifact.files[`${c.artifact.name}.json`]);
  const formats = checkedFormats(c.decl);
  const kvBytes = (s) => {
    let n = 0;
    for (const w of ['k', 'v']) {
      const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
      n += formats[w] ? cacheBytes(formats[w], sizes) : s.B * s.Hkv * s.Nk * D * 2;
    }
    return n;
  };
  // What each timed shape binds: tensor name (codes → the k/v field, others → cache k_<name>).
  const layouts = timed.map((s) => ({
    shape: s,
    bytes: kvBytes(s),
    tensors: ['k', 'v'].flatMap((w) =>
      formats[w]
        ? cacheLayout(formats[w], { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D }).map((t) => ({ which: w, ...t }))
        : [{ which: w, name: 'dense', dtype: 'bf16', shape: [s.B, s.Hkv, s.Nk, D] }],
    ),
  }));
  const cases = checks.map(({ s, i }) => {
    const dir = join(out, 'cases', `${v.name}-${i}`);
    mkdirSync(dir, { recursive: true });
    const rand = rng(1000 * i + v.name.length);
    const q = bf16Bits(Array.from({ length: s.B * s.H * s.Nq * D }, () => rand() * 2 - 1));
    writeFileSync(join(dir, 'q.bin'), bytes(q));
    const files = [];
    const qf = fromBf16(q);
    const inp = { q: qf, B: s.B, Hq: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk, D, Dv: D };
    const env = { params: {}, tensors: {}, sizes: { ...s, D } };
    let ref;
    if (v.store === '') {
      const kv = {};
      for (const w of ['k', 'v']) {
        const x = bf16Bits(Array.from({ length: s.B * s.Hkv * s.Nk * D }, () => rand() * 2 - 1));
        writeFileSync(join(dir, `${w}.bin`), bytes(x));
        files.push({ which: w, name: 'dense', dtype: 'bf16', path: `${w}.bin` });
        kv[w] = fromBf16(x);
      }
      ref = referenceStoredDecl(c.decl, { ...inp, k: kv.k, v: kv.v }, env, {});
    } else {
      const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand);
      for (const w of ['k', 'v']) {
        const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
        for (const t of cacheTensors(formats[w], stored.caches[w], sizes)) {
          const path = `${w}_${t.name}.bin`;
          writeFileSync(join(dir, path), bytes(t.data));
          files.push({ which: w, name: t.name, dtype: t.dtype, path });
        }
      }
      const empty = new Float32Array(0);
      ref = referenceStoredDecl(c.decl, { ...inp, k: empty, v: empty }, env, stored.caches);
    }
    writeFileSync(join(dir, 'ref_out.bin'), bytes(Float32Array.from(ref.out)));
    writeFileSync(join(dir, 'ref_lse.bin'), bytes(Float32Array.from(ref.lse)));
    return { shape: s, dir: `cases/${v.name}-${i}`, files };
  });
  index.push({ name: v.name, what: v.what, manifest: `${v.name}.json`, variant: v.name, layouts, cases });
  console.log(`${v.name}: ${cases.length} cases`);
}
writeFileSync(join(out, 'index.json'), JSON.stringify({ D, variants: index, knobs }, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
