// `:run [--nq N …]`: the current kernel on this machine's WebGPU device (runKernel; the device is
// process-wide, so it stays warm between runs), compared with the dense reference.
import { parseArgs } from 'node:util';
import { normalizeFlags, renameUnknownOption, repeatedValue } from '../argv.js';
import { parseParamAssignments } from '../check-command.js';
import { seedProblem } from '../compile-flags.js';
import { positiveIntProblem } from '../numbers.js';
import { MAX_REPEAT } from '../run-command.js';
import { runKernel } from '../run-kernel.js';
import { REPL_FILE, ReplError, type Session } from './session.js';

export const runFlags = [
  '--nq',
  '--nk',
  '--heads',
  '--kv-heads',
  '--batch',
  '--dim',
  '--dtype',
  '--seed',
  '--repeat',
  '--param',
] as const;

const str = { type: 'string' } as const;
const options = {
  nq: str,
  nk: str,
  heads: str,
  'kv-heads': str,
  batch: str,
  dim: str,
  dtype: str,
  seed: str,
  repeat: str,
  param: { type: 'string', multiple: true },
} as const;

/** :run's flags; `--nq -5`, `--nq --nk 4` and `--bogus` are one-line errors naming the flag. */
function parseRunArgs(args: readonly string[]) {
  const replError = (m: string): Error => new ReplError(m);
  const normalized = normalizeFlags(args, options, replError);
  try {
    const { tokens, ...parsed } = parseArgs({ args: normalized, options, tokens: true });
    const twice = repeatedValue(tokens, options);
    if (twice) throw new ReplError(twice);
    return parsed;
  } catch (e) {
    if (e instanceof ReplError) throw e;
    return renameUnknownOption(e, ':help', replError, options);
  }
}

function int(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const problem = positiveIntProblem(flag, raw);
  if (problem) throw new ReplError(problem);
  return Number(raw);
}

function seed(name: string, raw: string): number {
  const problem = seedProblem(raw);
  if (problem) throw new ReplError(`${name} ${problem}`);
  return Number(raw);
}

function repeats(n: number): number {
  if (n > MAX_REPEAT) throw new ReplError(`repeat ${n}: at most ${MAX_REPEAT}`);
  return n;
}

const fmt = (x: number): string => (x === 0 ? '0' : x.toExponential(2));

export async function runCommand(session: Session, args: string[]): Promise<void> {
  const def = session.requireCurrent();
  const s = session.settings;
  const { values: v } = parseRunArgs(args);
  const H = int('heads', v.heads, s.heads);
  const Hkv = int('kv-heads', v['kv-heads'], v.heads === undefined ? (s.kvHeads ?? H) : H);
  if (H % Hkv !== 0) throw new ReplError(`heads (${H}) must be a multiple of kv-heads (${Hkv})`);
  const dtype = v.dtype ?? s.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16')
    throw new ReplError(`WebGPU runs f32 or f16 storage, not \`${dtype}\` (:set dtype=f32)`);
  const params = { ...session.paramsFor(def), ...parseParamAssignments(v.param ?? []) };
  const t0 = performance.now();
  const r = await runKernel(def.source, {
    file: REPL_FILE,
    B: int('batch', v.batch, s.batch),
    H,
    Hkv,
    Nq: int('nq', v.nq, s.nq),
    Nk: int('nk', v.nk, s.nk),
    D: int('dim', v.dim, s.dim),
    dtype,
    params,
    ...(v.param ? { paramText: v.param } : {}),
    seed: v.seed === undefined ? s.seed : seed('--seed', v.seed),
    repeats: repeats(int('repeat', v.repeat, s.repeat)),
  });
  const total = performance.now() - t0;
  const ok =
    r.out.relError <= r.tolerance && r.out.nanCount === 0 && (!r.lse || r.lse.relError <= r.tolerance);
  const tiles = r.tiles.empty + r.tiles.full + r.tiles.partial;
  session.print(
    [
      `${r.name}: ${ok ? 'agrees with the reference' : 'DISAGREES with the reference'} (tolerance ${fmt(r.tolerance)})`,
      `  out  max abs error ${fmt(r.out.maxAbsError)}, relative ${fmt(r.out.relError)}${r.out.nanCount ? `, ${r.out.nanCount} NaN` : ''}`,
      ...(r.lse ? [`  lse  max abs error ${fmt(r.lse.maxAbsError)}, relative ${fmt(r.lse.relError)}`] : []),
      `  mask density ${(r.density * 100).toFixed(1)}%; tiles (head 0): ${r.tiles.full} full, ${r.tiles.partial} partial, ${r.tiles.empty} empty of ${tiles}`,
      `  time: compile ${r.compileMs.toFixed(1)} ms, pipeline ${r.pipelineMs.toFixed(1)} ms, kernel ${r.gpuMs.toFixed(2)} ms; ` +
        `whole :run ${total.toFixed(0)} ms (with inputs and the float64 reference)`,
    ].join('\n'),
  );
}
