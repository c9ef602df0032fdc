// Host-side speed of the compiler's interactive paths (no GPU): the frontend parse the REPL runs
// on every keystroke, compile() per target for every stdlib kernel, and the REPL's :mask picture
// at 1024 × 1024. These were once timed unit tests; timings belong here, as data.
// Usage (after npm run build): node bench/host.mjs [--out bench/results/host-DATE.json]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { compile } from '../dist/src/compile.js';
import { frontend } from '../dist/src/dsl/index.js';
import { maskGrid } from '../dist/src/viz/grid.js';

/** Median of `n` timed calls after two warm-up calls, in ms. */
function median(fn, n = 15) {
  fn();
  fn();
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(n / 2)];
}

const files = readdirSync('stdlib').filter((f) => f.endsWith('.attn'));
const rows = files.map((f) => {
  const src = readFileSync(`stdlib/${f}`, 'utf8');
  return {
    kernel: f.replace(/\.attn$/, ''),
    parseMs: median(() => frontend(src, f), 50),
    wgslMs: median(() => compile(src, { target: 'wgsl', file: f })),
    cudaMs: median(() => compile(src, { target: 'cuda', file: f, dtype: 'bf16', headDim: 128 })),
    maskGridMs: median(() => maskGrid(src, { nq: 1024, nk: 1024, cols: 116, rows: 31 }), 5),
  };
});

const out = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, node ${process.version}`,
  note: 'median ms; maskGrid = the REPL :mask picture at 1024×1024 on a 116×31 grid',
  rows,
};
const arg = process.argv.indexOf('--out');
if (arg > 0) writeFileSync(process.argv[arg + 1], JSON.stringify(out, null, 2) + '\n');
console.log(`| kernel | parse ms | compile wgsl ms | compile cuda ms | :mask 1024² ms |`);
console.log(`| --- | ---: | ---: | ---: | ---: |`);
for (const r of rows)
  console.log(
    `| ${r.kernel} | ${r.parseMs.toFixed(2)} | ${r.wgslMs.toFixed(1)} | ${r.cudaMs.toFixed(1)} | ${r.maskGridMs.toFixed(1)} |`,
  );
