// Emits and builds (nvcc here, so the GPU machine only runs them) the selection CUDA artifacts
// that bench/cuda/select.py checks and times: every entry of stdlib/{tokenselect,
// tidaldecode,recycled,dhsa}.attn as simt f32 D=64 and wgmma bf16 D=128 (the selection passes
// and the restricted attention are SIMT on every engine; `emit` runs the engine's attention).
// Plus tokenselect_wgmma_bf16_d128_onecta: the same code built with the one-block top-k.
//   npm run build && node bench/cuda/select-emit.mjs [--out bench/build/cuda-select] [--no-build]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist', 'src', 'compile.js')).href);
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : join(root, 'bench', 'build', 'cuda-select');
mkdirSync(out, { recursive: true });

const entries = [
  ['tokenselect', 'tokenselect'],
  ['tidaldecode', 'tidal_select'],
  ['tidaldecode', 'tidal_reuse'],
  ['recycled', 'recycled_full'],
  ['recycled', 'recycled_step'],
  ['dhsa', 'dhsa'],
];
const variants = [
  ['simt', 'f32', 64],
  ['wgmma', 'bf16', 128],
];
const index = [];
for (const [file, entry] of entries)
  for (const [engine, dtype, headDim] of variants) {
    const { artifact } = compile(readFileSync(join(root, 'stdlib', `${file}.attn`), 'utf8'), {
      target: 'cuda',
      file: `${file}.attn`,
      entry,
      headDim,
      dtype,
      schedule: { engine },
    });
    const variant = `${entry}_${engine}_${dtype}_d${headDim}`;
    writeFileSync(join(out, `${variant}.cu`), artifact.code);
    for (const [f, text] of Object.entries(artifact.files ?? {}))
      writeFileSync(join(out, `${variant}.${f.split('.').pop()}`), text);
    index.push({ variant, kernel: entry, engine, dtype, headDim, manifest: `${variant}.json` });
  }
// The same TokenSelect build with the one-block-per-row top-k (the wide multi-block top-k of
// select-wide.ts off), so one run measures both.
const base = 'tokenselect_wgmma_bf16_d128';
index.push({
  ...index.find((e) => e.variant === base),
  variant: `${base}_onecta`,
  defines: ['-DATTNC_SEL_WIDE_MIN_NK=2147483647'],
});
writeFileSync(join(out, `${base}_onecta.cu`), readFileSync(join(out, `${base}.cu`), 'utf8'));
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
if (!process.argv.includes('--no-build')) {
  const nvcc = process.env.NVCC ?? '/usr/local/cuda/bin/nvcc';
  const jobs = Math.max(1, Math.min(index.length, cpus().length));
  const queue = [...index];
  const { spawn } = await import('node:child_process');
  const one = (e) =>
    new Promise((resolve, reject) => {
      const args = [
        '-O3',
        '-arch=sm_90a',
        ...(e.defines ?? []),
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
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let e; (e = queue.shift());) await one(e);
    }),
  );
}
console.log(`wrote ${index.length} selection artifacts to ${out}`);
