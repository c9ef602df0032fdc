// Host-side speed of the compiler's interactive paths (no GPU): the frontend parse the REPL runs
// on every keystroke, compile() per target for every stdlib kernel, and the REPL's :mask picture
// at 1024 × 1024. These were once timed unit tests; timings belong here, as data.
// `cli startup`: the wall time of `attnc check stdlib/causal.attn` through the package's bin (the
// bundled executable, scripts/build-cli.mjs), median of spawns, beside bare `node -e 0` and the
// unbundled tsc output, so a loaded machine can be told from a slow CLI (issue 12 asks ≤ 150 ms).
// Usage (after npm run build): node bench/host.mjs [--out bench/results/host-DATE.json] [--startup-only]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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

// GNU time, when there, gives each spawn's CPU time (user + sys): unlike wall time it hardly
// moves with the machine's load.
const gnuTime = existsSync('/usr/bin/time');

/** One spawn of `node ARGS…`: wall ms, and CPU ms when GNU time is there. */
function spawnOnce(args) {
  const [cmd, argv] = gnuTime
    ? ['/usr/bin/time', ['-f', '%U %S', process.execPath, ...args]]
    : [process.execPath, args];
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const [user, sys] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { wall, cpu: gnuTime ? (user + sys) * 1000 : undefined };
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Each variant's median and min wall ms (and median CPU ms), spawns interleaved (same load). */
function spawnTimes(variants, n) {
  const runs = variants.map(() => []);
  for (let i = 0; i < n; i++) variants.forEach((args, j) => runs[j].push(spawnOnce(args)));
  return runs.map((r) => ({
    medianMs: med(r.map((x) => x.wall)),
    minMs: Math.min(...r.map((x) => x.wall)),
    ...(gnuTime ? { cpuMedianMs: med(r.map((x) => x.cpu)) } : {}),
  }));
}

function cliStartup(n = 21) {
  const bin = JSON.parse(readFileSync('package.json', 'utf8')).bin.attnc;
  const check = ['check', 'stdlib/causal.attn'];
  const [node, bundled, unbundled] = spawnTimes(
    [
      ['-e', '0'],
      [bin, ...check],
      ['dist/src/cli/main.js', ...check],
    ],
    n,
  );
  // Spawn times scale with the machine's load: keep it beside them.
  const load = loadavg()[0].toFixed(1);
  return {
    command: `node ${bin} check stdlib/causal.attn`,
    spawns: n,
    loadAverage1m: load,
    bundled,
    node,
    unbundled,
  };
}

/** The timing, or why the target does not offer the kernel (a quantized cache it cannot run). */
function offered(time) {
  try {
    return time();
  } catch (e) {
    const why = String(e.message).split('\n')[0];
    if (/K\/V storage formats|quantized K\/V caches/.test(why)) return `not offered: ${why}`;
    throw e;
  }
}

const startupOnly = process.argv.includes('--startup-only');
const files = startupOnly ? [] : readdirSync('stdlib').filter((f) => f.endsWith('.attn'));
const rows = files.map((f) => {
  const src = readFileSync(`stdlib/${f}`, 'utf8');
  return {
    kernel: f.replace(/\.attn$/, ''),
    parseMs: median(() => frontend(src, f), 50),
    wgslMs: median(() => compile(src, { target: 'wgsl', file: f })),
    cudaMs: offered(() =>
      median(() => compile(src, { target: 'cuda', file: f, dtype: 'bf16', headDim: 128 })),
    ),
    maskGridMs: median(() => maskGrid(src, { nq: 1024, nk: 1024, cols: 116, rows: 31 }), 5),
  };
});

const out = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, node ${process.version}`,
  note: 'median ms; maskGrid = the REPL :mask picture at 1024×1024 on a 116×31 grid',
  rows,
  cliStartup: cliStartup(),
};
const arg = process.argv.indexOf('--out');
if (arg > 0) writeFileSync(process.argv[arg + 1], JSON.stringify(out, null, 2) + '\n');
console.log(`| kernel | parse ms | compile wgsl ms | compile cuda ms | :mask 1024² ms |`);
console.log(`| --- | ---: | ---: | ---: | ---: |`);
for (const r of rows)
  console.log(
    `| ${r.kernel} | ${r.parseMs.toFixed(2)} | ${r.wgslMs.toFixed(1)} | ${typeof r.cudaMs === 'number' ? r.cudaMs.toFixed(1) : r.cudaMs} | ${r.maskGridMs.toFixed(1)} |`,
  );
const st = out.cliStartup;
const ms = (x) =>
  `${x.medianMs.toFixed(0)} ms (min ${x.minMs.toFixed(0)}${x.cpuMedianMs !== undefined ? `, CPU ${x.cpuMedianMs.toFixed(0)}` : ''})`;
console.log(
  `\ncli startup, median of ${st.spawns}: ${st.command} ${ms(st.bundled)}; node -e 0 ${ms(st.node)}; unbundled ${ms(st.unbundled)}; load average ${st.loadAverage1m} on ${cpus().length} cores`,
);
