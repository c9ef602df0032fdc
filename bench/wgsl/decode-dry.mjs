// The coop decode sweep's module construction on the CPU, for every cache format: no GPU, no
// timing. For each cache (f32, int8, e4m3, int4, KIVI int2: bench/quant-decode-wgsl.mjs's formats)
// and each Schedule.coopDecodeCodes ('words', 'wide', 'wide16'), compiles the causal decode kernel
// at D = 128 on the coop engine, builds every knob set of the sweep exactly as bench/wgsl/decode.mjs
// does (sweptModules: over the knobs the module was rendered with) and validates each module with
// naga. Lanes other than those a module's wide code loads were rendered for are compiled anew
// (Schedule.coopDecodeLanes), as the timed sweep does; a knob set that still cannot be built is
// listed as skipped with the reason; a module that fails to compile or validate fails the run.
//
//   npm run build && node bench/wgsl/decode-dry.mjs [--codes words,wide,wide16] [--formats int4,int2]
//     [--decode-threads 64,128] [--decode-lanes 4,8] [--decode-chunk 2] [--decode-rows 4]
//     [--decode-split 256] [--decode-prefetch 0,1]
//
// Without --decode-* options it sweeps every knob over a few values (DRY_SWEEP). naga has no
// subgroups: the modules take the workgroup-memory lane sums (the GPU's add the shuffle branch).
import { parseWgsl, validate } from 'naga-wasm';
import { compile } from '../../dist/src/compile.js';
import { decodeSweep, sweptModules } from './decode.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};

/** The cache formats, as bench/quant-decode-wgsl.mjs declares them ('' = f32 K/V). */
const FORMATS = {
  f32: '',
  int8: 'store kv int8 scale f16 per token',
  e4m3: 'store kv e4m3 scale f16 per token',
  int4: 'store kv int4 scale f16 per token group 32 zero f16',
  int2: 'store k int2 scale f16 per channel group 32 zero f16 recent 128 f16\n  store v int2 scale f16 per token group 32 zero f16 recent 128 f16',
};

/** Every knob over a few values, lanes among them (a wide module skips the lanes it cannot take). */
const DRY_SWEEP = {
  '--decode-threads': '64,128',
  '--decode-lanes': '4,8,16',
  '--decode-chunk': '2,4',
  '--decode-split': '512',
  '--decode-prefetch': '0,1',
};

const swept = args.some((a) => a.startsWith('--decode-'));
const sweep = decodeSweep((flag, fallback) => option(flag, swept ? fallback : DRY_SWEEP[flag]));
const codesList = option('--codes', 'words,wide,wide16').split(',');
const formats = option('--formats', Object.keys(FORMATS).join(',')).split(',');
const limits = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups: false };

function nagaProblem(code) {
  let module;
  try {
    module = parseWgsl(code);
    validate(module).free();
    return undefined;
  } catch (e) {
    return String(e?.message ?? e).split('\n')[0];
  } finally {
    module?.free();
  }
}

const describe = (t) =>
  `t${t.threads} l${t.lanes} c${t.chunk} r${t.rows} s${t.splitKeys}${t.prefetch ? ' pf' : ''}`;

let built = 0;
let skipped = 0;
const failed = [];
for (const name of formats) {
  if (!(name in FORMATS)) throw new Error(`--formats: unknown format "${name}" (${Object.keys(FORMATS)})`);
  const source = `attention causal_${name}() {\n  ${FORMATS[name]}\n  mask causal\n}`;
  for (const codes of codesList) {
    const what = `${name.padEnd(5)} ${codes.padEnd(6)}`;
    let points;
    try {
      const compileWith = (schedule) =>
        compile(source, { target: 'wgsl', headDim: 128, limits, wgslEngine: 'coop', schedule }).artifact;
      const artifact = compileWith({ coopDecodeCodes: codes });
      const lanes = artifact.decode.coop.codeLanes;
      console.log(
        `${what} rendered ${describe(artifact.decode.coop.tuning)}` +
          (lanes ? `, runs for ${lanes} lanes` : ''),
      );
      points = sweptModules(artifact, sweep, (lanes) =>
        compileWith({ coopDecodeCodes: codes, coopDecodeLanes: lanes }),
      );
    } catch (e) {
      failed.push(`${what} compile: ${e.message}`);
      continue;
    }
    const skips = new Map(); // reason → knob sets
    const runLanes = new Set(); // the lanes of the swept modules' wide code loads
    for (const p of points) {
      if (p.problem) {
        skipped++;
        skips.set(p.problem, [...(skips.get(p.problem) ?? []), describe(p.tuning)]);
        continue;
      }
      const problem = nagaProblem(p.artifact.decode.artifact.code);
      if (problem) failed.push(`${what} ${describe(p.tuning)} naga: ${problem}`);
      else built++;
      const lanes = p.artifact.decode.coop.codeLanes;
      if (lanes !== undefined) runLanes.add(lanes);
    }
    if (runLanes.size > 0) console.log(`${what} swept wide code loads for lanes ${[...runLanes].join(', ')}`);
    for (const [reason, sets] of skips) console.log(`${what} skipped ${sets.length} knob sets: ${reason}`);
  }
}
console.log(
  `\n${built} modules built and validated by naga, ${skipped} knob sets skipped, ${failed.length} failed`,
);
for (const f of failed) console.log(`FAILED ${f}`);
process.exitCode = failed.length > 0 ? 1 : 0;
