#!/usr/bin/env node
// A random-program campaign against every backend (round 14's fuzz brief). Each draw is a random
// .attn program plus a run configuration (scripts/fuzz/draw.mjs), reproducible from its seed. For
// each it checks: every target × engine compiles or refuses with a positioned error (never an
// internal error), naga validates the WGSL, nvcc compiles the CUDA (batched: one translation unit
// per arch for several draws), the CUDA CPU emulator runs SIMT kernels and WebGPU (lavapipe, under
// scripts/with-gpu.mjs) runs WGSL kernels against the dense reference. Failures are printed with
// the program text, config and the command that replays the draw alone. nvcc runs with the repo's
// -Werror all-warnings (an unused local fails, as in the stdlib checks). An interrupted run still
// prints its counts so far.
// Usage (after npx tsc -p tsconfig.json):
//   node scripts/with-gpu.mjs node scripts/fuzz-campaign.mjs --seed 1 --runs 100 \
//     --targets wgsl,cuda,nvcc,emu,lavapipe,backward,bwd-emu [--index I] [--batch 6] [--out FILE] \
//     [--round 14|15] [--mma-dims]
// Round 15 added draw axes (scripts/fuzz/axes.mjs: decode, wide GQA, strided and paged K/V,
// composed store formats, qk int8 / pv e4m3, chunk and `from` routing, mma at sm_80/86/89) and
// executes the backward (`backward` with `lavapipe`: the WGSL backward; with `emu`: the CUDA SIMT
// backward) against the gradient reference; `--round 14` draws round 14's cases. Round 16's
// `bwd-emu` target runs the mma.sync backward (both modes) on the CPU emulator
// (test/backward/mma-check.ts), the tensor-core path whose dK/dV kernels hoist mask parts. Round
// 17's dilation axis (scripts/fuzz/draw.mjs) feeds the residue-class orders of both directions;
// `--round 15` replays rounds 15 and 16's draws without it. Round 18's neighbourhood axis feeds
// the 2-D patch orders (the backward's dK/dV kernel too); `--round 17` replays round 17's draws.
// Seeds used: round 14 1..14 (docs/PERFORMANCE.md round 14); round 15 from 1501; round 16 from 2001;
// round 17 from 2101; round 18 from 2201.
import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { draw, drawSeed } from './fuzz/draw.mjs';
import { jobs, nagaError, runJob } from './fuzz/compile-all.mjs';
import {
  backwardEmu,
  backwardMmaEmu,
  backwardWgsl,
  emulate,
  nvccBatch,
  routedTally,
  runWgsl,
} from './fuzz/execute.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const SEED = Number(arg('seed', 1));
const RUNS = Number(arg('runs', 50));
const INDEX = arg('index', undefined);
const BATCH = Number(arg('batch', 6));
const OUT = arg('out', undefined);
const VERBOSE = process.argv.includes('--verbose');
// --round 14 replays round 14's draws (no round-15 axes: scripts/fuzz/axes.mjs), --round 15 those
// of rounds 15 and 16 (no round-17 dilation axis: scripts/fuzz/draw.mjs), --round 17 those of
// round 17 (no round-18 neighbourhood axis).
const ROUND = Number(arg('round', 18));
// --mma-dims: D = Dv, 64 or 128 (by the draw's seed), the head dims the tensor-core backwards
// take (most draws' dims are refused there), for bwd-emu and nvcc campaigns on those kernels.
const MMA_DIMS = process.argv.includes('--mma-dims');
const TARGETS = new Set(arg('targets', 'wgsl,cuda,nvcc,emu,lavapipe,backward').split(','));
const scratch = mkdtempSync(join(tmpdir(), 'attnc-fuzz-'));

const tally = {};
const count = (key) => (tally[key] = (tally[key] ?? 0) + 1);
const failures = [];

function fail(c, index, where, message) {
  count(`FAIL ${where}`);
  failures.push({
    seed: SEED,
    index,
    drawSeed: c.seed,
    where,
    message,
    source: c.source,
    config: configOf(c),
  });
  const round = ROUND === 18 ? '' : ` --round ${ROUND}`;
  const dims = MMA_DIMS ? ' --mma-dims' : '';
  const replay = `node scripts/with-gpu.mjs node scripts/fuzz-campaign.mjs --seed ${SEED} --index ${index}${round}${dims} --targets ${[...TARGETS].join(',')}`;
  console.log(
    `\n=== FAIL ${where} (draw ${index}, seed ${c.seed})\n${c.source}${JSON.stringify(configOf(c))}\n${message}\nreplay: ${replay}\n`,
  );
}

const configOf = (c) => ({
  features: c.features,
  importance: c.importance,
  dtype: c.dtype,
  D: c.D,
  Dv: c.Dv,
  shape: c.shape,
  tile: c.tile,
  coopVariant: c.coopVariant,
  runParams: c.runParams,
  layout: c.layout,
  pageSize: c.pageSize,
  mmaArch: c.mmaArch,
  decodeMode: c.decodeMode,
  tokenOrder: c.tokenOrder,
});

/** The draw with head dims the tensor-core backwards take: D = Dv, 64 or 128. */
function withMmaDims(c) {
  const D = c.seed & 1 ? 128 : 64;
  return { ...c, D, Dv: D, shape: { ...c.shape, D, Dv: D } };
}

/** Compiles and validates one draw; returns its CUDA units for the batch's nvcc run. */
async function checkDraw(index) {
  const drawn = draw(drawSeed(SEED, index, { round: ROUND }), { round: ROUND });
  const c = MMA_DIMS ? withMmaDims(drawn) : drawn;
  const units = [];
  for (const [label, thunk] of jobs(c, TARGETS)) {
    const r = runJob(thunk);
    count(`${label} ${r.status}`);
    if (r.status === 'bug') fail(c, index, `compile ${label}`, r.message);
    if (r.status === 'refused' && VERBOSE)
      console.log(`refused ${label} D ${c.D} Dv ${c.Dv} ${c.dtype}: ${r.message}`);
    if (r.status !== 'ok') continue;
    for (const code of r.out.wgsl ?? []) {
      const err = nagaError(code);
      count(`naga ${err ? 'fail' : 'ok'}`);
      if (err) fail(c, index, `naga ${label}`, err);
    }
    for (const u of r.out.cuda ?? []) units.push({ ...u, key: `${index} ${label}`, c, index });
    if (c.compileOnly) continue;
    await execute(c, index, label, r.out.compiled);
  }
  return units;
}

/** Which executor runs a job's output: the CPU emulator, lavapipe, or none. */
function stageOf(label) {
  if ((label === 'cuda-simt' || label === 'bwd-cuda-simt') && TARGETS.has('emu')) return 'emu';
  if ((label.startsWith('wgsl-') || label === 'bwd-wgsl') && TARGETS.has('lavapipe')) return 'lavapipe';
  if (label.startsWith('bwd-cuda-mma') && TARGETS.has('bwd-emu')) return 'bwd-emu';
  return undefined;
}

async function execute(c, index, label, compiled) {
  const stage = stageOf(label);
  // The emulator's launches read packed K/V (runCase has no block table); lavapipe runs every layout.
  // The backward checks run packed K/V (no block table); runCase binds neither a block table
  // nor quantized caches and emu.ts has no routing passes (test/cuda's paged, quant and routing
  // emulation tests have their own harnesses).
  const paged = c.layout.endsWith('pages');
  const f = compiled?.kernel.formats;
  const quant = f && (f.k.kind === 'quant' || f.v.kind === 'quant');
  const routing = compiled?.kernel.routing !== undefined;
  if (!stage || ((paged || quant || routing) && stage === 'emu') || (paged && label.startsWith('bwd-')))
    return;
  try {
    let verdict;
    if (label === 'bwd-wgsl') verdict = await backwardWgsl(c);
    else if (label === 'bwd-cuda-simt') await backwardEmu(c);
    else if (label.startsWith('bwd-cuda-mma')) await backwardMmaEmu(c, label.endsWith('-det'));
    else if (stage === 'emu') await emulate(join(scratch, `d${index}`), c, compiled);
    else verdict = await runWgsl(c, compiled);
    count(`${stage} ${label} ${verdict ?? 'ok'}`);
  } catch (e) {
    fail(c, index, `${stage} ${label}`, String(e instanceof Error ? e.message : e).slice(0, 3000));
  }
}

async function nvccAll(units, tag) {
  if (!TARGETS.has('nvcc') || units.length === 0) return;
  for (const arch of ['sm_90a', 'sm_80', 'sm_86', 'sm_89']) {
    const mine = units.filter((u) => u.arch === arch);
    if (mine.length === 0) continue;
    const failed = await nvccBatch(join(scratch, `nvcc-${tag}`), arch, mine);
    for (const _ of mine) count(`nvcc ${arch} compiled`);
    for (const f of failed) {
      const u = mine.find((x) => x.key === f.key);
      fail(u.c, u.index, `nvcc ${f.key.split(' ')[1]}`, f.message);
    }
  }
}

/** The summary (and --out report) so far: at the end, or when the run is interrupted. */
function report(draws) {
  const routed = routedTally;
  console.log(JSON.stringify({ seed: SEED, draws, targets: [...TARGETS], tally, routed }, null, 1));
  if (OUT) writeFileSync(OUT, JSON.stringify({ seed: SEED, draws, tally, routed, failures }, null, 1));
}
let finished = 0;
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    report(finished);
    process.exit(failures.length > 0 ? 1 : 130);
  });

const started = Date.now();
const indices = INDEX !== undefined ? [Number(INDEX)] : Array.from({ length: RUNS }, (_, i) => i);
for (let i = 0; i < indices.length; i += BATCH) {
  const units = [];
  for (const index of indices.slice(i, i + BATCH)) units.push(...(await checkDraw(index)));
  await nvccAll(units, String(i));
  const done = Math.min(i + BATCH, indices.length);
  finished = done;
  console.log(
    `[${((Date.now() - started) / 1000).toFixed(0)} s] ${done}/${indices.length} draws, ${failures.length} failures`,
  );
}
report(indices.length);
process.exit(failures.length > 0 ? 1 : 0);
