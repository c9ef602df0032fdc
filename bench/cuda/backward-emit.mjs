// Writes the forward (with lse) and tensor-core backward CUDA artifacts of every DESIGN §6
// pattern with a backward (bf16, D = 128) into bench/build/cuda-backward/, plus the index.json
// that bench/cuda/backward.py reads on the GPU machine (which has no Node).
//
//   npx tsc -p tsconfig.json && node bench/cuda/backward-emit.mjs [--out dir] [--only a,b] [--engines x,y] [--dim 64]
//
// --only keeps the patterns whose name contains one of the words (as backward.py's --only), and
// --engines the named backward engines (default: all), so a device call carries only what it times.
//
// The forward is what the compiler picks for CUDA (the schedule pass's engine: wgmma-ws on
// sm_90a); the backwards, each atomic and deterministic, are the index's `engines`:
//   mma  codegen/cuda/backward-mma.ts (mma.sync, sm_80+);
//   wg   codegen/cuda/backward-wgmma.ts (wgmma, sm_90a; every thread streams Q/dO);
//   ws   the same with a producer warpgroup and 16-byte dQ atomics (backward-wgmma-ws.ts);
//   ws_* ws with opt-in instruction cuts (codegen/cuda/backward-wgmma-tune.ts, TUNE_ENGINES:
//        ws_exp ws_mask ws_pack ws_dqu ws_desc ws_dq8 ws_n128 one knob each, ws_all / ws_all8 together;
//        ws_dqb the default with dQ added by the producer's bulk reductions, ws_pp that with the
//        consumer warpgroups out of lockstep; ws_nosplit the default without splitMask;
//        ws_plain, neighbourhood only: the default with bwd_dkdv in the plain order, not 2-D patches;
//        ws_ho the default (round 21: the producer hands the tile walk to the consumers where the
//        classifier reads summaries), ws_ho_split / ws_ho_only the hand-over with fewer knobs).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const { compile } = await import(dist('src/index.js'));
const { renderCuda } = await import(dist('src/codegen/cuda/index.js'));
const { renderCudaBackwardMma } = await import(dist('src/codegen/cuda/backward-mma.js'));
const { renderCudaBackwardWgmma, backwardWgmmaUnsupported } = await import(
  dist('src/codegen/cuda/backward-wgmma.js')
);
const { TUNE_ENGINES } = await import(dist('src/codegen/cuda/backward-wgmma-tune.js'));

/** pattern → stdlib file and the values the small-shape correctness check uses. */
export const patterns = [
  { pattern: 'full', source: 'full' },
  { pattern: 'causal', source: 'causal' },
  { pattern: 'sliding_window', source: 'sliding_window', params: { window: 64 } },
  { pattern: 'sink_window', source: 'sink_window', params: { window: 64, sinks: 4 } },
  { pattern: 'prefix_lm', source: 'prefix_lm', params: { prefix: 75 } },
  { pattern: 'document', source: 'document', tensors: { doc: { kind: 'segments', maxLen: 90 } } },
  { pattern: 'dilated', source: 'dilated', params: { dilation: 2 } },
  { pattern: 'softcap', source: 'softcap', params: { cap: 5.0 } },
  { pattern: 'alibi', source: 'alibi' },
  { pattern: 'neighbourhood', source: 'neighbourhood', params: { W: 16, r: 2 } },
];

/** `kernel` without Schedule.patchTweaks 'backward' (the backward reads it; the forward is emitted before). */
const plainBackward = (kernel) => ({
  ...kernel,
  schedule: {
    ...kernel.schedule,
    patchTweaks: (kernel.schedule.patchTweaks ?? []).filter((t) => t !== 'backward'),
  },
});

function main() {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const out = resolve(outAt >= 0 ? args[outAt + 1] : join(root, 'bench/build/cuda-backward'));
  const list = (flag) => {
    const at = args.indexOf(flag);
    return at >= 0 ? args[at + 1].split(',').filter((x) => x) : undefined;
  };
  const only = list('--only');
  // --dim 64: the D = 64 kernels (backward.py --dim 64 times them).
  const headDim = Number(list('--dim')?.[0] ?? 128);
  const wanted = list('--engines');
  const keep = (engine) => !wanted || wanted.includes(engine);
  mkdirSync(out, { recursive: true });
  const index = [];
  for (const p of patterns) {
    if (only && !only.some((w) => p.pattern.includes(w))) continue;
    const file = `stdlib/${p.source}.attn`;
    const { kernel: base } = compile(readFileSync(join(root, file), 'utf8'), {
      target: 'cuda',
      file,
      headDim,
      dtype: 'bf16',
      lse: true,
      limits: { maxWorkgroupStorageBytes: 227 * 1024 },
    });
    const variant = `bwd_${p.pattern}_bf16_d${headDim}`;
    const kernel = { ...base, name: variant };
    const fwd = renderCuda(kernel, {
      sourceHash: `bench:${p.pattern}`,
      scheduleHash: JSON.stringify(kernel.schedule),
    });
    writeFileSync(join(out, `${variant}.cu`), fwd.code);
    for (const [name, text] of Object.entries(fwd.files ?? {})) writeFileSync(join(out, name), text);
    const meta = (b, cu) => ({
      cu,
      namespace: b.namespace,
      fields: b.fields,
      gradParams: b.gradParams,
      gradTensors: b.gradTensors,
      smemBytes: b.smemBytes,
      threads: b.threads,
    });
    // engine -> { atomic, det }: each under its own C names (one process loads them all).
    const engines = {};
    const emit = (engine, render) => {
      if (!keep(engine)) return;
      engines[engine] = {};
      for (const [mode, deterministic] of [
        ['atomic', false],
        ['det', true],
      ]) {
        const suffix = `${engine}${deterministic ? '_det' : ''}`;
        const b = render({ ...kernel, name: `${variant}_${suffix}` }, { deterministic });
        const cu = `${variant}_backward_${suffix}.cu`;
        writeFileSync(join(out, cu), b.code);
        engines[engine][mode] = meta(b, cu);
      }
    };
    emit('mma', renderCudaBackwardMma);
    const why = backwardWgmmaUnsupported(kernel);
    if (why) console.log(`${variant}: no wgmma backward (${why})`);
    else {
      emit('wg', (k, o) => renderCudaBackwardWgmma(k, { ...o, producer: false }));
      emit('ws', (k, o) => renderCudaBackwardWgmma(k, { ...o, producer: true }));
      for (const [engine, tune] of Object.entries(TUNE_ENGINES))
        emit(engine, (k, o) => renderCudaBackwardWgmma(k, { ...o, producer: true, tune }));
      // ws_plain: the default with bwd_dkdv in the plain key-tile order, the default before round
      // 19 put neighbourhood masks' in 2-D patch order (codegen/cuda/backward-patch.ts).
      if (kernel.neighbourhood)
        emit('ws_plain', (k, o) => renderCudaBackwardWgmma(plainBackward(k), { ...o, producer: true }));
    }
    index.push({
      variant,
      pattern: p.pattern,
      manifest: `${variant}.json`,
      cu: `${variant}.cu`,
      params: p.params ?? {},
      tensors: p.tensors ?? {},
      schedule: kernel.schedule,
      engine: kernel.schedule.engine,
      engines,
    });
  }
  writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  console.log(`wrote ${index.length} forward + backward pairs to ${out}`);
}

main();
