// Emits and builds (nvcc here, so the GPU machine only runs them) the artifacts that
// bench/cuda/routing-token.py checks and times: NSA-style selection (stdlib/nsa_select.attn, raw
// queries → the token-granular attention of src/codegen/cuda/token-attn.ts) in bf16 at D = 128 on
// the default engine (mma form) and as simt f32 at D = 64 (the SIMT form), and TokenSelect
// (stdlib/tokenselect.attn, the selection pipeline) in bf16 at D = 128 for its 32K prefill.
//   npm run build && node bench/cuda/routing-token-emit.mjs [--out bench/build/cuda-token] [--no-build]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist', 'src', 'compile.js')).href);
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : join(root, 'bench', 'build', 'cuda-token');
mkdirSync(out, { recursive: true });

// --keymajor: only the default nsa_select and its key-major variants (the short device call of
// routing-token.sh --variants, about 6 MiB). --rank: only the default nsa_select and the ranking
// variants of round 9 (ROUTE_QREG, ROUTE_QVEC and their combinations; round 9's ROUTE_F16, one f16
// key part, was measured in round 10, not faster, and removed; round 25's ROUTE_QPREF, an L2
// prefetch of a later voter's query rows, likewise: bench/device-calls/c39-rank-prefetch.sh).
const keyMajorOnly = process.argv.includes('--keymajor');
const rankOnly = process.argv.includes('--rank');
// [file, entry, engine (undefined: the default), dtype, head dim, static mask]
const variants = [
  ['nsa_select', 'nsa_select', undefined, 'bf16', 128, 'causal'],
  ['nsa_select', 'nsa_select', 'mma', 'bf16', 128, 'causal'],
  ['nsa_select', 'nsa_select', 'simt', 'f32', 64, 'causal'],
  ['tokenselect', 'tokenselect', undefined, 'bf16', 128, 'causal'],
].filter((v, i) => !(keyMajorOnly || rankOnly) || i === 0);
// The key-major token attention (Schedule.tokenOrder 'key', src/codegen/cuda/token-keymajor*.ts) on
// the default nsa_select artifact, and its work-unit shapes (TKM_WARPS warps x TKM_TILES 16-row
// tiles = rows per block; the launcher reads the constants): tagged, timed by --variants TAG,...
const orderVariants = [
  ['keymajor', {}], // 4 warps x 4 tiles = 256 rows a unit
  ['keymajor_t2', { TKM_TILES: 2 }], // 128 rows: twice the units, each K/V block staged more often
  ['keymajor_t8', { TKM_TILES: 8 }], // 512 rows: fewer stagings, longer tails on popular blocks
  ['keymajor_minb4', { TKM_MINB: 4 }], // registers capped at 128: four blocks (16 warps) an SM
];
// Variants of the tensor-core ranking (routing-topk-mma.ts) on the default nsa_select artifact: the
// same code with other constants (the launcher reads them too), timed beside the default.
// (The default is 8 warps × 32-block chunks, 2 blocks an SM.)
const rankVariants = [
  ['w4kc64', { ROUTE_WARPS: 4, ROUTE_KC: 64, ROUTE_MINB: 3 }], // the previous default: 64 rows × 64 blocks
  ['w16kc32', { ROUTE_WARPS: 16, ROUTE_KC: 32, ROUTE_MINB: 1 }], // 256 rows share each chunk, 1 block an SM
  ['qvec', { ROUTE_QVEC: 1 }], // k permuted within 32: one 128-bit query load per row and two k-steps
  ['qvec_u4', { ROUTE_QVEC: 1, ROUTE_KUNROLL: 4 }], // and four k-steps' loads in flight
  // Round 9 (--rank emits only these): the vote statistics voter-outer with the query fragments held
  // in registers (ROUTE_QREG: 1 is the default since round 9; 0 re-reads them from L2 per chunk).
  ['qreg0', { ROUTE_QREG: 0 }, 9],
  ['qreg_qvec', { ROUTE_QREG: 1, ROUTE_QVEC: 1 }, 9],
  ['qvec', { ROUTE_QVEC: 1 }, 9],
  // 16 warps (256 rows) a block, one block an SM: each chunk staged per voter feeds twice the rows.
  ['w16_qreg', { ROUTE_WARPS: 16, ROUTE_MINB: 1, ROUTE_QREG: 1 }, 9],
  ['qreg_u4', { ROUTE_QREG: 1, ROUTE_KUNROLL: 4 }, 9], // the vote pass: 4 k-steps' loads in flight
  ['qreg2', { ROUTE_QREG: 2 }, 9], // two voters held: a chunk staged once for both
];
function withConstants(code, values) {
  let out = code;
  for (const [name, v] of Object.entries(values)) {
    const re = new RegExp(`constexpr int ${name} = \\d+;`, 'g');
    if ((out.match(re) ?? []).length !== 1) throw new Error(`rank variant: expected one constexpr ${name}`);
    out = out.replace(re, `constexpr int ${name} = ${v};`);
  }
  return out;
}
const index = [];
for (const [file, entry, engine, dtype, headDim, mask] of variants) {
  const { artifact } = compile(readFileSync(join(root, 'stdlib', `${file}.attn`), 'utf8'), {
    target: 'cuda',
    file: `${file}.attn`,
    entry,
    headDim,
    dtype,
    ...(engine ? { schedule: { engine } } : {}),
  });
  const variant = `${entry}_${artifact.schedule.engine}_${dtype}_d${headDim}`;
  writeFileSync(join(out, `${variant}.cu`), artifact.code);
  for (const [f, text] of Object.entries(artifact.files ?? {}))
    writeFileSync(join(out, `${variant}.${f.split('.').pop()}`), text);
  const token = artifact.entryPoints.some((e) => e.name.endsWith('_token_attn'));
  index.push({
    variant,
    kernel: entry,
    engine: artifact.schedule.engine,
    dtype,
    headDim,
    mask,
    token,
    manifest: `${variant}.json`,
  });
  if (entry !== 'nsa_select' || engine !== undefined) continue;
  const base = index[index.length - 1];
  const keyed = rankOnly
    ? undefined
    : compile(readFileSync(join(root, 'stdlib', `${file}.attn`), 'utf8'), {
        target: 'cuda',
        file: `${file}.attn`,
        entry,
        headDim,
        dtype,
        schedule: { tokenOrder: 'key' },
      }).artifact;
  if (keyed && !keyed.entryPoints.some((e) => e.name.endsWith('_tkm_attn')))
    throw new Error('tokenOrder key: no key-major kernels');
  for (const [tag, values] of keyed ? orderVariants : []) {
    const name = `${variant}_${tag}`;
    writeFileSync(join(out, `${name}.cu`), withConstants(keyed.code, values));
    for (const [f, text] of Object.entries(keyed.files ?? {}))
      writeFileSync(join(out, `${name}.${f.split('.').pop()}`), text);
    index.push({ ...base, variant: name, order: tag, manifest: `${name}.json` });
  }
  if (keyMajorOnly) continue;
  const seen = new Set();
  for (const [tag, values, round] of rankVariants) {
    if ((rankOnly && round !== 9) || seen.has(tag)) continue;
    seen.add(tag);
    const name = `${variant}_${tag}`;
    writeFileSync(join(out, `${name}.cu`), withConstants(artifact.code, values));
    for (const [f, text] of Object.entries(artifact.files ?? {}))
      writeFileSync(join(out, `${name}.${f.split('.').pop()}`), text);
    index.push({ ...base, variant: name, rank: tag, manifest: `${name}.json` });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
if (!process.argv.includes('--no-build')) {
  const nvcc = process.env.NVCC ?? 'nvcc';
  const one = (e) =>
    new Promise((resolve, reject) => {
      const args = [
        '-O3',
        '-arch=sm_90a',
        '--shared',
        '-Xcompiler',
        '-fPIC',
        '-o',
        join(out, `${e.variant}.so`),
        join(out, `${e.variant}.cu`),
      ];
      const p = spawn(nvcc, args, { stdio: 'inherit' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nvcc ${e.variant}: exit ${code}`))));
    });
  const queue = [...index];
  const jobs = Math.max(1, Math.min(queue.length, cpus().length));
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let e; (e = queue.shift());) await one(e);
    }),
  );
}
console.log(`wrote ${index.length} token-routing artifacts to ${out}`);
