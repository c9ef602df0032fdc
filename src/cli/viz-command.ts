// `attnc viz FILE --out mask.svg|mask.png`: the reference mask of one (batch, head) slice as a
// token-level heatmap with the kernel's tile grid and classes, a legend and the density.
import { extname } from 'node:path';
import { compile } from '../compile.js';
import { escapeControl } from '../diagnostics.js';
import { GridError, maskGrid, type ParamValues } from '../viz/grid.js';
import { renderPng } from '../viz/png.js';
import { renderSvg } from '../viz/svg.js';
import { densityText, routedNote, tileText } from '../viz/style.js';
import { paramProblem } from '../runtime/params.js';
import { checkIntSpellings, checkParamNames } from './check-command.js';
import { blamingFlags, dimFlags, positiveInt, seedFlag } from './compile-flags.js';
import { decimalInt } from './numbers.js';
import { UsageError } from './errors.js';
import { ensureParentDirectory, writeOutput } from './out-path.js';

export interface VizFlags {
  out?: string | undefined;
  entry?: string | undefined;
  nq?: string | undefined;
  nk?: string | undefined;
  head?: string | undefined;
  /** Which batch slice to draw. */
  'batch-index'?: string | undefined;
  /** The old spelling of --batch-index (run's and the REPL's --batch is the batch size). */
  batch?: string | undefined;
  heads?: string | undefined;
  'kv-heads'?: string | undefined;
  dim?: string | undefined;
  seed?: string | undefined;
  /** The `--param` items as typed (their values come parsed as `params`). */
  param?: string[] | undefined;
}

/** Largest picture, in cells per axis: a token per pixel up to 1024 tokens, downsampled beyond. */
const MAX_CELLS = 1024;

/** An index flag in [0, count): a value outside names the flag and the valid range. */
function index(flag: string, raw: string | undefined, count: number, why: string): number {
  if (raw === undefined) return 0;
  const n = decimalInt(raw);
  if (n === undefined || n < 0 || n >= count)
    throw new UsageError(`--${flag} expects an index in [0, ${count - 1}] (${why}), got \`${raw}\``);
  return n;
}

/** --batch-index, or --batch (its old spelling here); both given is a usage error. */
function batchIndex(f: VizFlags): number {
  if (f['batch-index'] !== undefined && f.batch !== undefined)
    throw new UsageError(
      'viz: --batch-index and --batch are both given (--batch is the old spelling of --batch-index here)',
    );
  const flag = f.batch !== undefined ? 'batch' : 'batch-index';
  return index(flag, f['batch-index'] ?? f.batch, 1, 'viz draws a batch of 1');
}

export function vizCommand(source: string, file: string, f: VizFlags, params: ParamValues): number {
  const out = f.out;
  if (!out) throw new UsageError('viz: missing --out FILE.svg or FILE.png');
  const format = extname(out).toLowerCase();
  if (format !== '.svg' && format !== '.png')
    throw new UsageError(`viz: --out must end in .svg or .png, got \`${out}\``);
  const headDim = positiveInt('dim', f.dim, 64);
  const compiled = blamingFlags({ dims: dimFlags(headDim, headDim), entry: f.entry }, () =>
    compile(source, { target: 'wgsl', file, ...(f.entry ? { entry: f.entry } : {}), headDim }),
  );
  checkParamNames(compiled.kernel, params);
  checkIntSpellings(compiled.kernel, f.param ?? []);
  for (const p of compiled.kernel.params) {
    const problem = Object.hasOwn(params, p.name) ? paramProblem(p.name, p.dtype, params[p.name]) : undefined;
    if (problem) throw new UsageError(`viz: --${problem}`);
  }
  const nk = positiveInt('nk', f.nk, 1024);
  // One head and one batch unless --heads says more: an index past them is a typo, not a reason
  // to size (and draw random tensors for) that many heads.
  const heads = positiveInt('heads', f.heads, 1);
  const kvHeads = positiveInt('kv-heads', f['kv-heads'], heads);
  // As `attnc run` (run-command.ts): a mask reading the kv head needs whole groups of query heads.
  if (heads % kvHeads !== 0)
    throw new UsageError(`--heads (${heads}) must be a multiple of --kv-heads (${kvHeads})`);
  const h = index('head', f.head, heads, `--heads ${heads}`);
  const b = batchIndex(f);
  let grid;
  try {
    grid = maskGrid(compiled, {
      nq: positiveInt('nq', f.nq, nk),
      nk,
      b,
      h,
      heads,
      kvHeads,
      batch: b + 1,
      params,
      seed: seedFlag(f.seed, 1),
      cols: MAX_CELLS,
      rows: MAX_CELLS,
      // A picture is not latency-bound: evaluate every pair, trusting the classifier for nothing.
      exact: true,
    });
  } catch (e) {
    if (e instanceof GridError) throw new UsageError(`viz: ${e.message}`);
    throw e;
  }
  ensureParentDirectory(out);
  writeOutput(out, format === '.svg' ? renderSvg(grid) : renderPng(grid).png);
  process.stdout.write(
    `wrote ${escapeControl(out)}: ${grid.name}, ${densityText(grid)}; ${tileText(grid)}\n`,
  );
  const routed = routedNote(compiled.kernel.routing, grid.name);
  if (routed) process.stdout.write(`${routed}\n`);
  return 0;
}
