// `:mask` in the terminal: one glyph per cell (█ allowed, ░ masked, ▒ mixed), coloured by the
// class of the kernel tile under the cell when colour is on; without colour a separate tile map
// shows the classes as letters, so the information survives `NO_COLOR` and pipes.
import type { TileClass } from '../../ir/kernel.js';
import { cellState, type CellState, type MaskGrid } from '../../viz/grid.js';
import { cellText, densityText, tileText, titleText } from '../../viz/style.js';

export const glyph: Record<CellState, string> = { allowed: '█', masked: '░', mixed: '▒' };
const tileLetter: Record<TileClass, string> = { full: 'F', partial: 'P', empty: '·' };
const ansi: Record<TileClass, string> = { full: '\x1b[32m', partial: '\x1b[33m', empty: '\x1b[90m' };
const RESET = '\x1b[0m';

export interface Screen {
  readonly columns: number;
  /** Terminal height when known (a TTY). */
  readonly rows: number | undefined;
  readonly color: boolean;
}

/**
 * Cells for an nq × nk mask on this screen: as wide as fits, and half as many rows as the aspect
 * ratio asks for, because a terminal character is about twice as tall as it is wide.
 */
export function termCells(nq: number, nk: number, s: Screen): { cols: number; rows: number } {
  const cols = Math.max(8, Math.min(nk, s.columns - 4));
  const tall = s.rows === undefined ? 48 : Math.max(8, s.rows - 9);
  const rows = Math.max(1, Math.min(nq, tall, Math.round((cols * nq) / nk / 2)));
  return { cols, rows };
}

/** The class of the tile holding token pair (i, j). */
function tileAt(g: MaskGrid, i: number, j: number): TileClass {
  const { blockQ, blockK, cols, classes } = g.tiles;
  return classes[Math.floor(i / blockQ) * cols + Math.floor(j / blockK)]!;
}

const mid = (starts: Int32Array, c: number): number => (starts[c]! + starts[c + 1]! - 1) >> 1;

function tileMap(g: MaskGrid, width: number): string[] {
  const t = g.tiles;
  const cols = Math.min(t.cols, width);
  const rows = Math.max(1, Math.min(t.rows, 16, Math.round((cols * t.rows) / t.cols / 2) || 1));
  const out = [
    ` tile classes (${Object.entries(tileLetter)
      .map(([c, l]) => `${l} ${c}`)
      .join(', ')}):`,
  ];
  for (let r = 0; r < rows; r++) {
    const qt = Math.floor(((r + 0.5) * t.rows) / rows);
    let line = '  ';
    for (let c = 0; c < cols; c++)
      line += tileLetter[t.classes[qt * t.cols + Math.floor(((c + 0.5) * t.cols) / cols)]!];
    out.push(line);
  }
  return out;
}

export function drawMask(g: MaskGrid, s: Screen, ms: number): string {
  const lines = [titleText(g), ` k →   ${cellText(g)}`, ' ┌' + '─'.repeat(g.cols) + '┐'];
  for (let r = 0; r < g.rows; r++) {
    const gutter = r === 0 ? 'q' : r === 1 ? '↓' : ' ';
    let line = gutter + '│';
    let color = '';
    for (let c = 0; c < g.cols; c++) {
      const ch = glyph[cellState(g, r, c)];
      if (s.color) {
        const want = ansi[tileAt(g, mid(g.rowStart, r), mid(g.colStart, c))];
        if (want !== color) line += want;
        color = want;
      }
      line += ch;
    }
    lines.push(line + (s.color ? RESET : '') + '│');
  }
  lines.push(' └' + '─'.repeat(g.cols) + '┘');
  const legend = ` ${glyph.allowed} allowed  ${glyph.masked} masked  ${glyph.mixed} mixed`;
  if (s.color) {
    const classes = (['full', 'partial', 'empty'] as const).map((c) => `${ansi[c]}${c}${RESET}`);
    lines.push(`${legend}   tile colours: ${classes.join(' ')}`);
  } else {
    lines.push(legend, ...tileMap(g, s.columns - 4));
  }
  lines.push(` ${densityText(g)} · ${tileText(g)} · ${ms.toFixed(1)} ms`);
  return lines.join('\n') + '\n';
}
