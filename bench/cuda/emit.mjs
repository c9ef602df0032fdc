// Writes CUDA artifacts (.cu, .h, .json) for a list of kernels into bench/build/cuda/, plus an
// index.json that bench/cuda/check.py reads on the GPU machine (which has no Node).
//
//   npm run build && node bench/cuda/emit.mjs [--list hand|LIST.mjs]... [--out dir]
//
// With no --list, the hand kernels (`defaultList` below); `--list hand --list
// bench/cuda/stdlib-list.mjs` emits both. A list module's default export is an array of entries:
//   { name, hand: 'documentKernel' }            a builder from test/support/hand-kernels.ts, or
//   { name, source: 'stdlib/x.attn', entry? }   an .attn file compiled by the frontend;
//   params:  { window: 100 }                     values for the check (required params need one);
//   perfParams: { window: 1024 }                 values for the timings (default: params);
//   tensors: { doc: { kind: 'segments', maxLen: 300 } | { kind: 'uniform', lo, hi } | { kind: 'ints', lo, hi } };
//   dtypes, headDims: the variants to emit (default all three dtypes, D = 64 and 128);
//   perf: time at benchmark sizes too (bf16, D = 128 variants);
//   pattern: the benchmark pattern it implements (bench/cuda/bench.py times it beside FlexAttention).
// `--engine mma` (or `wgmma`, `wgmma-ws`) builds f16/bf16 variants with a tensor-core engine (mmaSchedule,
// wgmmaSchedule below) instead of the SIMT schedule; an entry's `schedule` still overrides single fields (e.g. blockQ, stages).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const { renderCuda } = await import(dist('src/codegen/cuda/index.js'));
const hand = await import(dist('test/support/hand-kernels.js'));

export const defaultList = [
  { name: 'full', hand: 'fullKernel', perf: true },
  {
    name: 'sliding_window',
    hand: 'slidingWindowKernel',
    params: { window: 256 },
    perfParams: { window: 1024 },
    perf: true,
  },
  {
    name: 'document',
    hand: 'documentKernel',
    tensors: { doc: { kind: 'segments', maxLen: 400 } },
    perf: true,
  },
  {
    name: 'softcap_alibi',
    hand: 'softcapAlibiKernel',
    params: { cap: 5.0 },
    tensors: { slopes: { kind: 'uniform', lo: 0.0, hi: 0.05 } },
    perf: true,
  },
  // Odd schedules: a 16-thread block (a partial warp), and 1-position summaries, whose q-tile
  // ranges span more than 64 blocks (the INT_MIN/INT_MAX fallback of RANGE_MIN/MAX).
  {
    name: 'sliding_window_small',
    hand: 'slidingWindowKernel',
    params: { window: 256 },
    dtypes: ['f32', 'bf16'],
    headDims: [64],
    schedule: { blockQ: 16, blockK: 16, threads: 16 },
  },
  {
    name: 'document_sb1',
    hand: 'documentKernel',
    tensors: { doc: { kind: 'segments', maxLen: 400 } },
    dtypes: ['f32'],
    headDims: [64],
    schedule: { blockQ: 128, blockK: 32, threads: 256, summaryBlock: 1 },
  },
];

/**
 * The warp-specialized Hopper engine (wgmma-ws): wgmmaSchedule's tiles plus a TMA producer
 * warpgroup (384 threads) over a 2-stage mbarrier ring (unmasked kernels: 176-key tiles,
 * as the schedule pass picks; give `schedule: { blockK: 176 }` in the list).
 */
export function wgmmaWsSchedule(headDim, dtype) {
  return Object.freeze({ ...wgmmaSchedule(headDim, dtype), threads: 384, engine: 'wgmma-ws' });
}

/** The SIMT core wants blockQ·(D+Dv)/threads ≤ 64 (q and accumulator registers per thread). */
export function benchSchedule(headDim, dtype) {
  return Object.freeze({
    blockQ: 64,
    blockK: 64,
    threads: headDim <= 64 ? 128 : 256,
    stages: 1,
    headDim,
    valueDim: headDim,
    dtype,
    summaryBlock: 64,
    engine: 'simt',
  });
}

/** The tensor-core engine's default: 8 warps × 16 rows, 64-key tiles, double-buffered. */
export function mmaSchedule(headDim, dtype) {
  return Object.freeze({
    blockQ: 128,
    blockK: 64,
    threads: 256,
    stages: 2,
    headDim,
    valueDim: headDim,
    dtype,
    summaryBlock: 64,
    engine: 'mma',
  });
}

/**
 * The Hopper wgmma engine's default for the bench: 2 warpgroups × 64 rows over 128-key tiles,
 * double-buffered (160 KiB of shared memory at D = 128).
 */
export function wgmmaSchedule(headDim, dtype) {
  return Object.freeze({ ...mmaSchedule(headDim, dtype), blockK: 128, engine: 'wgmma' });
}

function handKernel(entry, schedule) {
  const make = hand[entry.hand];
  if (typeof make !== 'function') throw new Error(`entry ${entry.name}: no hand kernel "${entry.hand}"`);
  return make(schedule);
}

async function sourceKernel(entry, schedule) {
  const { compile } = await import(dist('src/index.js'));
  const path = resolve(root, entry.source);
  // `defaultSchedule`: what the schedule pass picks (the CLI's choice), not the bench's basis.
  const { dtype, headDim, ...overrides } = schedule;
  const { kernel } = compile(readFileSync(path, 'utf8'), {
    target: 'cuda',
    file: entry.source,
    ...(entry.entry ? { entry: entry.entry } : {}),
    headDim,
    dtype,
    ...(entry.defaultSchedule ? {} : { schedule: overrides }),
    limits: { maxWorkgroupStorageBytes: 227 * 1024 },
  });
  return kernel;
}

async function main() {
  const args = process.argv.slice(2);
  const opts = (flag) =>
    args.flatMap((a, i) => (a === flag && args[i + 1] !== undefined ? [args[i + 1]] : []));
  const opt = (flag) => opts(flag)[0];
  const lists = opts('--list').length ? opts('--list') : ['hand'];
  const list = [];
  for (const l of lists) {
    list.push(...(l === 'hand' ? defaultList : (await import(pathToFileURL(resolve(l)).href)).default));
  }
  const engine = opt('--engine') ?? 'simt';
  const out = resolve(opt('--out') ?? join(root, 'bench/build/cuda'));
  mkdirSync(out, { recursive: true });
  const index = [];
  for (const entry of list) {
    for (const dtype of entry.dtypes ?? ['bf16', 'f16', 'f32']) {
      for (const headDim of entry.headDims ?? [64, 128]) {
        if (engine !== 'simt' && dtype === 'f32') continue; // no 16-bit tensor-core path for f32
        const basis =
          engine === 'mma'
            ? mmaSchedule(headDim, dtype)
            : engine === 'wgmma'
              ? wgmmaSchedule(headDim, dtype)
              : engine === 'wgmma-ws'
                ? wgmmaWsSchedule(headDim, dtype)
                : benchSchedule(headDim, dtype);
        let schedule = { ...basis, ...(entry.schedule ?? {}) };
        const t0 = performance.now(); // source → CUDA text: frontend, passes and rendering
        const base = entry.source ? await sourceKernel(entry, schedule) : handKernel(entry, schedule);
        if (entry.defaultSchedule) schedule = { ...base.schedule, dtype };
        const variant = `${entry.name}_${dtype}_d${headDim}`;
        // Each variant gets its own C names, so any set of them can share a process or a binary.
        const kernel = { ...base, name: variant };
        const artifact = renderCuda(kernel, {
          sourceHash: `bench:${entry.name}`,
          scheduleHash: JSON.stringify(schedule),
        });
        const renderMs = performance.now() - t0;
        writeFileSync(join(out, `${variant}.cu`), artifact.code);
        for (const [file, text] of Object.entries(artifact.files ?? {})) writeFileSync(join(out, file), text);
        index.push({
          variant,
          kernel: entry.name,
          dtype,
          headDim,
          cu: `${variant}.cu`,
          manifest: `${variant}.json`,
          params: entry.params ?? {},
          perfParams: entry.perfParams ?? {},
          tensors: entry.tensors ?? {},
          perf: Boolean(entry.perf) && dtype === 'bf16' && headDim === 128,
          pattern: entry.pattern ?? null,
          engine: schedule.engine ?? 'simt',
          schedule,
          renderMs: Math.round(renderMs * 100) / 100,
        });
      }
    }
  }
  writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  console.log(`wrote ${index.length} variants to ${out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
