// The plan of the coop decode module's wide code loads (Schedule.coopDecodeCodes 'wide' / 'wide16';
// the WGSL is dequant-run.ts's): which of k / v load a lane's contiguous run of channels at once,
// how long a run is (DC_KC / DC_VC vec4 columns of exactly the lanes the plan is made for) and
// through which view of the codes binding (vec4<u32>, vec2<u32> or u32 words), and how many lanes
// 'wide16' takes so that runs are 16 bytes. Apart from the rendering so that the split pass
// (decode-coop-split.ts) and the module (decode-coop.ts) see the plan without the code generator.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { codesPerWord, elemBits } from '../../quant/elem.js';
import type { QuantFormat } from '../../quant/format.js';
import type { KvWhich } from './dequant.js';

/** How one of k / v is loaded on the wide path. */
export interface WideCodes {
  readonly which: KvWhich;
  readonly format: QuantFormat;
  /** Channels of the row (HEAD_DIM or VALUE_DIM). */
  readonly width: number;
  /** vec4 columns of a lane's run (= DC_KC or DC_VC: the row splits into DC_LANES whole runs). */
  readonly cols: number;
  /** u32 words of codes per load: 4 (vec4<u32>), 2 (vec2<u32>) or 1 (u32, the binding itself). */
  readonly view: 4 | 2 | 1;
  /** Loads per run (run words / view). */
  readonly loads: number;
}

/** Both caches' wide plans (undefined: that cache keeps the word-per-vec4 loads). */
export interface WidePlan {
  readonly k?: WideCodes;
  readonly v?: WideCodes;
  /** DC_LANES the plan was made for (the runs are DC_KC / DC_VC columns of exactly that many lanes). */
  readonly lanes: number;
}

/**
 * The wide plan of a cache, or undefined where the row does not split into whole runs of whole
 * words: a float cache, salient tokens (two code tensors), a width not a multiple of 4·lanes, or a
 * run not a whole number of code words (the row pitch of the views would not hold).
 */
export function wideCodes(
  which: KvWhich,
  f: TensorFormat,
  width: number,
  lanes: number,
): WideCodes | undefined {
  if (f.kind !== 'quant') return undefined;
  const q = f.format;
  if (q.kind === 'int' && q.salient) return undefined;
  if (width % (4 * lanes) !== 0) return undefined;
  const cols = width / 4 / lanes;
  const perWord = codesPerWord(q.elem);
  if ((4 * cols) % perWord !== 0) return undefined;
  const words = (4 * cols) / perWord;
  const view = words % 4 === 0 ? 4 : words % 2 === 0 ? 2 : 1;
  return { which, format: q, width, cols, view, loads: words / view };
}

/** The plan for a kernel's formats under `lanes`, undefined when neither cache qualifies. */
export function widePlan(
  formats: TensorFormats,
  dims: { headDim: number; valueDim: number },
  lanes: number,
): WidePlan | undefined {
  const k = wideCodes('k', formats.k, dims.headDim, lanes);
  const v = wideCodes('v', formats.v, dims.valueDim, lanes);
  if (!k && !v) return undefined;
  return { lanes, ...(k ? { k } : {}), ...(v ? { v } : {}) };
}

/**
 * The longest run 'wide16' makes, in vec4 columns: a lane holds its columns of q and of the acc for
 * every packed row (2 · rows · 4 · cols floats), so at 4 rows 8 columns are 256 registers already.
 */
const MAX_WIDE16_COLS = 8;

/**
 * Lanes per key row for 'wide16': `lanes` halved until every quantized cache's run is 16 bytes or
 * more, but not below runs of MAX_WIDE16_COLS columns (KIVI's int2 rows stay at 8-byte runs).
 */
export function wide16Lanes(
  formats: TensorFormats,
  dims: { headDim: number; valueDim: number },
  lanes: number,
): number {
  const rowBytes = (['k', 'v'] as const).flatMap((w) => {
    const f = formats[w];
    const width = w === 'k' ? dims.headDim : dims.valueDim;
    return f.kind === 'quant' ? [(width * elemBits(f.format.elem)) / 8] : [];
  });
  const widest = Math.max(dims.headDim, dims.valueDim) / 4;
  let n = lanes;
  while (n > 1 && widest / (n / 2) <= MAX_WIDE16_COLS && rowBytes.some((b) => b / n < 16)) n /= 2;
  return n;
}

/** The view of the codes binding a wide cache loads through (`<k|v>_buf` itself for u32 loads). */
export const codesView = (w: WideCodes): string =>
  w.view === 1 ? `${w.which}_buf` : `${w.which}_codes${w.view}`;

/** The view declarations at the codes bindings' indices (none for u32 loads). */
export function codesViewDecls(plan: WidePlan, bindingIndex: (name: string) => number): string[] {
  return [plan.k, plan.v]
    .filter((w): w is WideCodes => w !== undefined && w.view !== 1)
    .map(
      (w) =>
        `@group(0) @binding(${bindingIndex(w.which)}) var<storage, read> ${codesView(w)}: array<vec${w.view}<u32>>;`,
    );
}
