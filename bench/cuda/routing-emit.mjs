// Emits the block-routing CUDA artifacts that bench/cuda/routing.py checks and times on the GPU
// machine: the four block-routing stdlib kernels on each engine (simt f32, mma and wgmma f16/bf16,
// D = 64/128, wgmma-ws bf16), BiFormer with 64-row q-tiles, plus a 128-block BiFormer for the
// benchmark (wgmma, wgmma-ws serial and with FlashAttention-3's consumers). Writes
// .cu/.h/.json and index.json.
//   npm run build && node bench/cuda/routing-emit.mjs [--out bench/build/cuda-routing]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist', 'src', 'compile.js')).href);
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? process.argv[outArg + 1] : join(root, 'bench', 'build', 'cuda-routing');
mkdirSync(out, { recursive: true });

const stdlib = (f) => readFileSync(join(root, 'stdlib', `${f}.attn`), 'utf8');
const kernels = {
  biformer: { source: stdlib('biformer'), mask: 'none' },
  landmark: { source: stdlib('landmark'), mask: 'causal' },
  nsa_select: { source: stdlib('nsa_select'), entry: 'nsa_select', mask: 'causal' },
  cca: { source: stdlib('cca'), mask: 'causal' },
  biformer128: {
    source: 'attention biformer128(top: int = 8) {\n  route blocks(128) topk(top) by mean(q) . mean(k)\n}\n',
    mask: 'none',
  },
  // The same routing under a static causal mask: routed tiles the mask makes partial (dynamic mode).
  biformer128c: {
    source:
      'attention biformer128c(top: int = 8) {\n  route blocks(128) topk(top) by mean(q) . mean(k)\n  mask causal\n}\n',
    mask: 'causal',
  },
};
const variants = [
  ['simt', 'f32', 64],
  ['mma', 'bf16', 128],
  ['mma', 'f16', 64],
  ['wgmma', 'bf16', 64],
  ['wgmma', 'bf16', 128],
  ['wgmma', 'f16', 128],
  ['wgmma-ws', 'bf16', 64],
  ['wgmma-ws', 'bf16', 128],
];
// FlashAttention-3's consumers with the dense default's tweaks (schedule-preferred.ts wsDense).
const fa3 = {
  blockQ: 128,
  blockK: 128,
  threads: 384,
  stages: 2,
  wsConsumers: 'fa3',
  wsTweaks: ['splitKv', 'fastExp', 'lazyRescale', 'zeroInit', 'pvN128', 'rescaleInTurn', 'foldScale'],
};
// Schedules other than the default, suffixed to the variant name: 64-row q-tiles make every
// q-tile of a 64-block BiFormer one query unit (uniform: predicate-free selected tiles); with
// 128-key tiles a tile spans two blocks, which exercises the selection-gap test.
const tuned = {
  biformer: [
    ['wgmma', 'bf16', 128, { blockQ: 64, blockK: 64, threads: 128 }, 'q64k64'],
    ['wgmma', 'bf16', 64, { blockQ: 64, blockK: 128, threads: 128 }, 'q64k128'],
    ['mma', 'f16', 64, { blockQ: 64, blockK: 64, threads: 128 }, 'q64k64'],
    ['wgmma-ws', 'bf16', 128, { blockQ: 64, blockK: 64, threads: 256, stages: 4 }, 'q64k64'],
  ],
  biformer128: [
    ['default', 'bf16', 128],
    ['wgmma', 'bf16', 128],
    ['wgmma-ws', 'bf16', 128],
    ['wgmma-ws', 'bf16', 128, fa3, 'fa3'],
  ],
  biformer128c: [
    ['default', 'bf16', 128],
    ['wgmma', 'bf16', 128],
  ],
};
const index = [];
for (const [name, k] of Object.entries(kernels)) {
  const vs = name.startsWith('biformer128') ? tuned[name] : [...variants, ...(tuned[name] ?? [])];
  for (const [engine, dtype, headDim, sched, tag] of vs) {
    const { artifact } = compile(k.source, {
      target: 'cuda',
      file: `${name}.attn`,
      ...(k.entry ? { entry: k.entry } : {}),
      headDim,
      dtype,
      // 'default': the schedule pass's own pick (what `attnc compile` emits).
      ...(engine === 'default' ? {} : { schedule: { engine, ...(sched ?? {}) } }),
    });
    const variant = `${name}_${engine}_${dtype}_d${headDim}${tag ? `_${tag}` : ''}`;
    writeFileSync(join(out, `${variant}.cu`), artifact.code);
    for (const [file, text] of Object.entries(artifact.files ?? {}))
      writeFileSync(join(out, `${variant}.${file.split('.').pop()}`), text);
    index.push({ variant, kernel: name, engine, dtype, headDim, mask: k.mask, manifest: `${variant}.json` });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
console.log(`${index.length} routing artifacts in ${out}`);
