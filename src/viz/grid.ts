// The mask grid behind `attnc viz` and the REPL's `:mask`/`:stats`: the reference mask of one
// (b, h) slice (declPredicates — the oracle's semantics, bottom-right aligned, q_offset = Nk − Nq)
// downsampled into at most cols × rows cells, next to the kernel's own tile classes (classifyTile,
// exactly as the kernels compute them).
import { wgslTarget } from '../codegen/wgsl/target.js';
import { compileWith, type Compiled } from '../compile-core.js';
import { eagerFrontFeatures } from '../dsl/front-eager.js';
import type { AttentionKernel } from '../ir/kernel.js';
import { declPredicates } from '../runtime/ast-eval.js';
import { randomTensor, rng, tensorLength, tensorShape } from '../runtime/inputs.js';
import { fillCells, isSampled, samplesPerCell, SAMPLES_PER_CELL, type Axis } from './sample.js';
import { tileGrid, type TileGrid } from './tiles.js';

export type CellState = 'allowed' | 'masked' | 'mixed';
export type ParamValues = Readonly<Record<string, number | boolean>>;

/** A user-facing problem with the inputs of a grid (a param with no value, a bad type). */
export class GridError extends Error {}

export interface MaskGridOptions {
  readonly nq: number;
  readonly nk: number;
  /** The batch and head of the slice drawn (default 0). */
  readonly b?: number;
  readonly h?: number;
  /** Sizes the program sees as B, H, Hkv, D (defaults: b + 1, h + 1, H, the schedule's). */
  readonly batch?: number;
  readonly heads?: number;
  readonly kvHeads?: number;
  readonly params?: ParamValues;
  /** Tensor params; missing ones get deterministic random content, as `attnc run` does. */
  readonly tensors?: Readonly<Record<string, Int32Array | Float32Array>>;
  readonly seed?: number;
  /** At most this many cells per axis (default 1024). */
  readonly cols?: number;
  readonly rows?: number;
  /**
   * Evaluate every pair, even in tiles the classifier proves empty or full. Off, those tiles take
   * their class's value after a spot check of 5 pairs each, which is what makes `:mask` at 1024
   * tokens take a few ms instead of 10–60.
   */
  readonly exact?: boolean;
  /** For source input: which declaration, and the file name in diagnostics. */
  readonly entry?: string;
  readonly file?: string;
}

/**
 * Extension point for routing/selection programs (a later issue): the blocks a program selected
 * for given inputs, drawn as an outline layer over the mask by both renderers.
 */
export interface SelectionLayer {
  readonly label: string;
  readonly blockQ: number;
  readonly blockK: number;
  /** Row-major [qBlock · ceil(nk / blockK) + kBlock], 1 = selected. */
  readonly selected: Uint8Array;
}

export interface MaskGrid {
  readonly name: string;
  readonly nq: number;
  readonly nk: number;
  readonly qOffset: number;
  readonly b: number;
  readonly h: number;
  readonly rows: number;
  readonly cols: number;
  /** Cell row r holds queries [rowStart[r], rowStart[r + 1]); likewise columns and keys. */
  readonly rowStart: Int32Array;
  readonly colStart: Int32Array;
  /** Allowed fraction of each cell, row-major. */
  readonly fraction: Float32Array;
  /** Allowed fraction of all pairs (an estimate when `sampled`). */
  readonly density: number;
  /** True when cells were sampled (samplesPerCell tokens per cell and axis), not counted. */
  readonly sampled: boolean;
  readonly samplesPerCell: number;
  readonly tiles: TileGrid;
  /** Tiles whose class the reference contradicts (a compiler bug; always 0 unless broken). */
  readonly unsoundTiles: number;
  /** Mask predicate calls the picture took (full and empty tiles cost five probes each). */
  readonly maskEvaluations: number;
  /** The param values used, defaults filled in. */
  readonly params: ParamValues;
  readonly selection?: SelectionLayer;
}

export { SAMPLES_PER_CELL };
export type { TileGrid };

export function cellState(g: MaskGrid, r: number, c: number): CellState {
  const f = g.fraction[r * g.cols + c] ?? 0;
  return f >= 1 ? 'allowed' : f <= 0 ? 'masked' : 'mixed';
}

/** Param values for `kernel`: given ones (type-checked), else defaults; unknown names ignored. */
export function resolveParams(
  kernel: AttentionKernel,
  given: ParamValues = {},
): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const p of kernel.params) {
    const v = Object.hasOwn(given, p.name) ? given[p.name] : p.default;
    if (v === undefined)
      throw new GridError(`param \`${p.name}\` has no default: give it a value (${p.name}=VALUE)`);
    if (p.dtype === 'bool' ? typeof v !== 'boolean' && v !== 0 && v !== 1 : typeof v !== 'number')
      throw new GridError(`param \`${p.name}\` is ${p.dtype}, got ${String(v)}`);
    if (p.dtype === 'i32' && !Number.isInteger(v))
      throw new GridError(`param \`${p.name}\` is an int, got ${String(v)}`);
    out[p.name] = v;
  }
  return out;
}

type Sizes = { B: number; H: number; Hkv: number; Nq: number; Nk: number; D: number };

/** Tensor params: given, else random from `seed` in declaration order (as runKernel draws them). */
function tensorEnv(
  kernel: AttentionKernel,
  sizes: Sizes,
  params: ParamValues,
  given: MaskGridOptions['tensors'],
  seed: number,
): Record<string, { data: Int32Array | Float32Array; shape: number[] }> {
  const rand = rng(seed);
  const out: Record<string, { data: Int32Array | Float32Array; shape: number[] }> = {};
  for (const t of kernel.tensors) {
    const shape = tensorShape(t, sizes, params);
    const length = shape.reduce((a, b) => a * b, 1);
    if (shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new GridError(
        `tensor \`${t.name}\` would have shape [${shape.join(', ')}]: dimensions are integers ≥ 0`,
      );
    if (length > MAX_TENSOR_ELEMENTS)
      throw new GridError(
        `tensor \`${t.name}\` [${shape.join(', ')}] would have ${length} elements; pictures draw at most ${MAX_TENSOR_ELEMENTS}`,
      );
    const drawn = randomTensor(t, tensorLength(t, sizes, params), rand);
    const data = given && Object.hasOwn(given, t.name) ? given[t.name]! : drawn;
    const want = shape.reduce((a, b) => a * b, 1);
    if (data.length !== want)
      throw new GridError(`tensor \`${t.name}\` has ${data.length} elements, expected ${want}`);
    out[t.name] = { data, shape };
  }
  return out;
}

/** Bucket boundaries of `n` items into `cells` nearly equal cells. */
function starts(n: number, cells: number): Int32Array {
  const s = new Int32Array(cells + 1);
  for (let c = 0; c <= cells; c++) s[c] = Math.floor((c * n) / cells);
  return s;
}

/** Positions are int32 (DESIGN §2). */
const I32_MAX = 2147483647;
/** Elements of drawn tensor params at most (512 MB of int32). */
export const MAX_TENSOR_ELEMENTS = 2 ** 27;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0 || v > I32_MAX)
    throw new GridError(`${name} must be a positive int32 (1 to ${I32_MAX}), got ${v}`);
  return v;
}

export function maskGrid(input: string | Compiled, o: MaskGridOptions): MaskGrid {
  const { kernel, decl } = compileInput(input, o);
  const nq = positiveInt('nq', o.nq);
  const nk = positiveInt('nk', o.nk);
  const { b, h, sizes } = slice(o, nq, nk, kernel.schedule.headDim);
  const params = resolveParams(kernel, o.params);
  const tensors = tensorEnv(kernel, sizes, params, o.tensors, o.seed ?? 1);
  // Bottom-right aligned, as the oracle is: the last query sees the last key.
  const qOffset = nk - nq;
  const env = { params, tensors, vars: { ...sizes } };
  const tiles = tileGrid(kernel, { b, h, Nq: nq, Nk: nk, qOffset, kOffset: 0, env });
  const layout = cellLayout(nq, nk, o);
  const { rowStart, colStart, perCell, sampled } = layout;
  const qAxis: Axis = { n: nq, starts: rowStart, block: tiles.blockQ, perCell };
  const kAxis: Axis = { n: nk, starts: colStart, block: tiles.blockK, perCell };
  const pred = declPredicates(decl.decl, { params, tensors, sizes }, { types: decl.types });
  const filled = fillCells(qAxis, kAxis, {
    mask: (i, j) => pred.mask(b, h, i + qOffset, j),
    classes: tiles.classes,
    tileCols: tiles.cols,
    exact: o.exact ?? false,
  });
  return {
    name: kernel.name,
    nq,
    nk,
    qOffset,
    b,
    h,
    rows: layout.rows,
    cols: layout.cols,
    rowStart,
    colStart,
    fraction: filled.fraction,
    density: filled.density,
    sampled,
    samplesPerCell: sampled ? perCell : 1,
    tiles,
    unsoundTiles: filled.unsoundTiles,
    maskEvaluations: filled.maskEvaluations,
    params,
  };
}

/** Source is compiled here; an already compiled kernel is drawn as is. */
function compileInput(input: string | Compiled, o: MaskGridOptions): Compiled {
  if (typeof input !== 'string') return input;
  // The WGSL backend alone: the grid reads tile classes, so browser bundles need no CUDA.
  return compileWith({ wgsl: wgslTarget }, eagerFrontFeatures, input, {
    target: 'wgsl',
    ...(o.file ? { file: o.file } : {}),
    ...(o.entry ? { entry: o.entry } : {}),
  });
}

/** The (b, h) slice drawn and the sizes the program sees, defaulting to the smallest that hold it. */
function slice(
  o: MaskGridOptions,
  nq: number,
  nk: number,
  headDim: number,
): { b: number; h: number; sizes: Sizes } {
  const b = o.b ?? 0;
  const h = o.h ?? 0;
  const H = o.heads ?? h + 1;
  const sizes: Sizes = { B: o.batch ?? b + 1, H, Hkv: o.kvHeads ?? H, Nq: nq, Nk: nk, D: headDim };
  if (b >= sizes.B || h >= sizes.H)
    throw new GridError(`slice b=${b}, h=${h} is outside B=${sizes.B}, H=${sizes.H}`);
  return { b, h, sizes };
}

/** How tokens bucket into cells, and whether cells are sampled because they hold many tokens. */
function cellLayout(nq: number, nk: number, o: MaskGridOptions) {
  const rows = Math.min(nq, Math.max(1, Math.floor(o.rows ?? 1024)));
  const cols = Math.min(nk, Math.max(1, Math.floor(o.cols ?? 1024)));
  const rowStart = starts(nq, rows);
  const colStart = starts(nk, cols);
  const perCell = samplesPerCell(rowStart, colStart);
  const sampled = isSampled(rowStart, perCell) || isSampled(colStart, perCell);
  return { rows, cols, rowStart, colStart, perCell, sampled };
}
