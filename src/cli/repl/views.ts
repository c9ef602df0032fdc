// `:mask` and `:stats`: the current kernel's mask and tile classes at the session's shape.
import { GridError, maskGrid, type MaskGridOptions } from '../../viz/grid.js';
import { decimalInt } from '../numbers.js';
import { registerUserErrors } from '../exit.js';
import { densityText, routedNote, tileText } from '../../viz/style.js';
import { ReplError, type Session } from './session.js';
import { drawMask, termCells } from './term-mask.js';

// maskGrid's errors are the user's (exit.ts cannot import viz/grid: the compiler is behind it).
registerUserErrors(GridError);

function size(raw: string | undefined, fallback: number, what: string): number {
  if (raw === undefined) return fallback;
  const n = decimalInt(raw);
  if (n === undefined || n <= 0) throw new ReplError(`:mask expects positive ${what}, got \`${raw}\``);
  return n;
}

/**
 * The heads :run would take (run.ts's rule), and the drawn head among them: a head past them is
 * refused rather than quietly growing the heads that :stats counts.
 */
function checkedHeads(s: Session['settings']): { heads: number; kvHeads: number } {
  const kvHeads = s.kvHeads ?? s.heads;
  if (s.heads % kvHeads !== 0)
    throw new ReplError(`heads (${s.heads}) must be a multiple of kv-heads (${kvHeads})`);
  if (s.head >= s.heads)
    throw new ReplError(
      `head (${s.head}) must be below heads (${s.heads}): :set heads=${s.head + 1}, or a smaller head`,
    );
  return { heads: s.heads, kvHeads };
}

/** Grid options shared by :mask and :stats: the session's shape, seed and params. */
function gridOptions(session: Session, nq: number, nk: number): MaskGridOptions {
  const s = session.settings;
  return {
    nq,
    nk,
    h: s.head,
    ...checkedHeads(s),
    batch: s.batch,
    params: session.paramsFor(session.requireCurrent()),
    seed: s.seed,
  };
}

/** `:mask [nq nk]` (one number: a square mask). */
export function maskCommand(session: Session, args: readonly string[]): void {
  const def = session.requireCurrent();
  const nq = size(args[0], session.settings.nq, 'nq');
  const nk = size(args[1], args[0] === undefined ? session.settings.nk : nq, 'nk');
  const t0 = performance.now();
  const compiled = session.compiled(def);
  const cells = termCells(nq, nk, session.out);
  const grid = maskGrid(compiled, { ...gridOptions(session, nq, nk), ...cells });
  const routed = routedNote(compiled.kernel.routing, compiled.kernel.name);
  session.print(drawMask(grid, session.out, performance.now() - t0) + (routed ? ` ${routed}\n` : ''));
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Heads evaluated one by one up to this many (b, h) slices; beyond, head `head` stands for all. */
const PER_HEAD_LIMIT = 32;
/** …and up to this many tiles classified over all of them. */
const PER_HEAD_TILES = 2 ** 17;

/**
 * `:stats`: density, tile counts and an estimate of the bytes the WGSL kernel moves. Each
 * (q-tile) workgroup loads every non-empty K/V tile once; Q is read and O (+ lse) written once.
 */
export function statsCommand(session: Session): void {
  const def = session.requireCurrent();
  const s = session.settings;
  const { kernel } = session.compiled(def);
  const { blockQ, blockK, headDim: D, valueDim: Dv } = kernel.schedule;
  const B = s.batch;
  const H = checkedHeads(s).heads;
  const base = gridOptions(session, s.nq, s.nk);
  const shown = maskGrid(session.compiled(def), { ...base, cols: 1, rows: 1 });
  // Per head only while that stays cheap: every slice costs a tile classification.
  const perHead = B * H <= PER_HEAD_LIMIT && B * H * shown.tiles.classes.length <= PER_HEAD_TILES;
  let nonEmpty = 0;
  let density = 0;
  if (perHead) {
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const g = maskGrid(session.compiled(def), { ...base, b, h, cols: 1, rows: 1 });
        nonEmpty += g.tiles.kernelCounts.full + g.tiles.kernelCounts.partial;
        density += g.density / (B * H);
      }
  } else {
    nonEmpty = (shown.tiles.kernelCounts.full + shown.tiles.kernelCounts.partial) * B * H;
    density = shown.density;
  }
  const bytes = (s.dtype ?? 'f32') === 'f32' ? 4 : 2;
  const rows = B * H * s.nq;
  const kv = nonEmpty * blockK * (D + Dv) * bytes;
  const lse = kernel.outputs.lse ? rows * 4 : 0;
  const qo = rows * (D + Dv) * bytes + lse;
  const allTiles = Math.ceil(s.nq / blockQ) * Math.ceil(s.nk / blockK) * B * H;
  const dense = allTiles * blockK * (D + Dv) * bytes + qo;
  const heads = perHead ? `summed over B·H = ${B * H} head(s)` : `head ${s.head} × B·H = ${B * H}`;
  session.print(
    [
      `${kernel.name}: nq=${s.nq} nk=${s.nk} B=${B} H=${H} D=${D} Dv=${Dv} ${s.dtype ?? 'f32'}, WGSL tiles ${blockQ}×${blockK}`,
      `  ${densityText({ ...shown, density })}${B * H > 1 ? (perHead ? ' (mean over heads)' : ` (head ${s.head})`) : ''}`,
      `  ${tileText(shown)} (head ${s.head})`,
      `  bytes moved (estimate, ${heads}):`,
      `    K/V = non-empty tiles × blockK × (D + Dv) × bytes/elem = ${nonEmpty} × ${blockK} × ${D + Dv} × ${bytes} = ${formatBytes(kv)}`,
      `    Q/O = B·H·Nq × (D + Dv) × bytes/elem${lse ? ' + lse B·H·Nq × 4' : ''} = ${rows} × ${D + Dv} × ${bytes}${lse ? ` + ${rows} × 4` : ''} = ${formatBytes(qo)}`,
      `    total ${formatBytes(kv + qo)}; dense (every tile) ${formatBytes(dense)}: ${((1 - (kv + qo) / dense) * 100).toFixed(0)}% saved`,
      ...[routedNote(kernel.routing, kernel.name)].flatMap((n) => (n ? [`  ${n}`] : [])),
    ].join('\n'),
  );
}
