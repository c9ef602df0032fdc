// Wide code loads of the coop decode module (Schedule.coopDecodeCodes = 'wide'): a lane owns a
// contiguous run of channels of a key row (DC_KC / DC_VC vec4 columns, not the strided columns
// lane, lane + DC_LANES, …) and loads the run's codes at once through a vec4<u32> view of the codes
// binding (16 bytes a load: 16 int8 / e4m3 codes, 32 int4, 64 int2), or a vec2<u32> / u32 view when
// the run is 8 or 4 bytes (the plan: dequant-run-plan.ts). The word-per-vec4 path (`<k|v>_dequant4`,
// dequant-vec4.ts) issues a 4-byte load and a scale read per four channels; on the H200 that left
// quantized caches 1.6–2.6× slower than the f32 cache while reading 4–10× fewer bytes (few bytes in
// flight per load).
// Every shift is a constant here (a run starts on a word), and a scale, zero point or normalizer
// shared by the run (per token, or a token group the run lies in) is read once. The arithmetic is
// dequant.ts's lane by lane: ((code − zero) · scale) · norm, each an f32 operation, none fused, so
// the values are bit-identical to `<k|v>_dequant`.
import { codesPerWord, elemBits } from '../../quant/elem.js';
import type { FloatDType, Granularity, HalfDType } from '../../quant/format.js';
import { partVar, readFloat, scaleIndex } from './dequant.js';
import { dequantRunFn } from './dequant-calls.js';
import { codesView, type WideCodes, type WidePlan } from './dequant-run-plan.js';
import { fp8Fn } from './dequant-vec4.js';

const LANES = [0, 1, 2, 3] as const;
const vec4Of = (read: (lane: number) => string): string => `vec4<f32>(${LANES.map(read).join(', ')})`;

/** The expression of code word `i` of the run (the loads are dq_w0, dq_w1, …). */
const wordOf = (w: WideCodes, i: number): string =>
  w.view === 1 ? `dq_w${i}` : `dq_w${Math.floor(i / w.view)}[${i % w.view}]`;

/** Lines loading the run's code words (sign bits flipped for symmetric int codes, as dequant4 does). */
function loadLines(w: WideCodes): string[] {
  const q = w.format;
  const bits = elemBits(q.elem);
  const perWord = codesPerWord(q.elem);
  const signed = q.kind !== 'fp8' && !q.zero;
  const flipWord = (((2 ** 32 - 1) / (2 ** bits - 1)) * (1 << (bits - 1))).toString(16);
  const flip = !signed ? '' : w.view === 1 ? ` ^ 0x${flipWord}u` : ` ^ vec${w.view}<u32>(0x${flipWord}u)`;
  const rowViews = w.width / perWord / w.view;
  const runViews = (4 * w.cols) / perWord / w.view;
  const lane = runViews === 1 ? `dq_c4 / ${w.cols}u` : `dq_c4 / ${w.cols}u * ${runViews}u`;
  return [
    `let dq_at = dq_row * ${rowViews}u + ${lane}; // the run's first load (a run starts on a load)`,
    ...Array.from(
      { length: w.loads },
      (_, i) => `let dq_w${i} = ${codesView(w)}[${i === 0 ? 'dq_at' : `dq_at + ${i}u`}]${flip};`,
    ),
  ];
}

/** Lines setting dq_out[j] to the codes of column j (channels 4j..4j+3 of the run) as f32. */
function columnLines(w: WideCodes, j: number): string[] {
  const q = w.format;
  const bits = elemBits(q.elem);
  const perWord = codesPerWord(q.elem);
  const word = wordOf(w, Math.floor((4 * j) / perWord));
  const shifts = LANES.map((l) => `${(((4 * j) % perWord) + l) * bits}u`).join(', ');
  const raw = `dq_r${j}`;
  const lines = [
    `let ${raw} = (vec4<u32>(${word}) >> vec4<u32>(${shifts})) & vec4<u32>(${(1 << bits) - 1}u);`,
  ];
  if (q.kind === 'fp8')
    return [...lines, `dq_out[${j}] = ${vec4Of((l) => `${fp8Fn(w.which)}(${raw}[${l}])`)};`];
  const signed = !q.zero;
  const offset = 2 ** 23 + (signed ? 1 << (bits - 1) : 0);
  return [
    ...lines,
    `dq_out[${j}] = bitcast<vec4<f32>>(${raw} | vec4<u32>(0x4b000000u)) - vec4<f32>(${offset}.0f);`,
  ];
}

/**
 * How the run's channels read a side tensor indexed by `per`: one element for the run, one per
 * column, one per channel at index + channel ('channel'), or one per channel otherwise ('lane').
 */
type Share = 'run' | 'column' | 'channel' | 'lane';
function shared(per: Granularity | 'channel', runChannels: number): Share {
  if (per === 'channel' || per.kind === 'channel') return 'channel';
  if (per.kind === 'tensor' || !per.group || per.group % runChannels === 0) return 'run';
  return per.group % 4 === 0 ? 'column' : 'lane';
}

/**
 * Lines applying a side tensor (`op`: subtract a zero point, multiply by a scale or norm) to every
 * column: one read for the run, one per column, or one per channel, by what the channels share.
 * `index` names the channel as `dq_c` (the run's first channel).
 */
function applyLines(
  w: WideCodes,
  buf: string,
  dtype: FloatDType | HalfDType,
  index: string,
  share: Share,
  op: '-' | '*',
  name: string,
): string[] {
  const at = (ch: string): string => index.replace(/\bdq_c\b/g, ch);
  const cols = Array.from({ length: w.cols }, (_, j) => j);
  if (share === 'run') {
    const f = `${name}_f`;
    return [
      `let ${name} = ${index};`,
      `let ${f} = ${readFloat(buf, dtype, name)};`,
      ...cols.map((j) => `dq_out[${j}] = dq_out[${j}] ${op} ${f};`),
    ];
  }
  if (share === 'column')
    return cols.flatMap((j) => [
      `let ${name}${j} = ${at(`(dq_c + ${4 * j}u)`)};`,
      `dq_out[${j}] = dq_out[${j}] ${op} ${readFloat(buf, dtype, `${name}${j}`)};`,
    ]);
  if (share === 'channel' && dtype !== 'f32') {
    // Channel c at index + c, and index(dq_c) even (dq_c and the row width are multiples of 4):
    // channels 2m, 2m + 1 of the run are the halves of word (index(dq_c) >> 1) + m, read once.
    const half = (word: string, hi: boolean): string =>
      dtype === 'f16'
        ? `unpack2x16float(${word})[${hi ? 1 : 0}]`
        : `bitcast<f32>(${hi ? `${word} & 0xffff0000u` : `${word} << 16u`})`;
    return [
      `let ${name} = (${index}) >> 1u;`,
      ...cols.flatMap((j) => [
        `let ${name}${j}a = ${buf}[${name} + ${2 * j}u];`,
        `let ${name}${j}b = ${buf}[${name} + ${2 * j + 1}u];`,
        `dq_out[${j}] = dq_out[${j}] ${op} vec4<f32>(${half(`${name}${j}a`, false)}, ${half(`${name}${j}a`, true)}, ${half(`${name}${j}b`, false)}, ${half(`${name}${j}b`, true)});`,
      ]),
    ];
  }
  return cols.flatMap((j) => [
    ...LANES.map((l) => `let ${name}${j}_${l} = ${at(`(dq_c + ${4 * j + l}u)`)};`),
    `dq_out[${j}] = dq_out[${j}] ${op} ${vec4Of((l) => readFloat(buf, dtype, `${name}${j}_${l}`))};`,
  ]);
}

/** Lines returning the run of a quantized (not recent) row: codes, zero, scale, norm. */
function codeRunLines(w: WideCodes, paged: boolean): string[] {
  const q = w.format;
  const W = String(w.width) + 'u';
  const runChannels = 4 * w.cols;
  const lines = [
    ...(paged ? ['let dq_row = kv_qrow(dq_bh, dq_t);'] : []),
    `let dq_c = 4u * dq_c4;`,
    ...loadLines(w),
    ...Array.from({ length: w.cols }, (_, j) => columnLines(w, j)).flat(),
  ];
  if (q.scale) {
    const share = shared(q.scale.per, runChannels);
    const index = scaleIndex(q.scale.per, W, paged);
    if (q.kind === 'int' && q.zero)
      lines.push(...applyLines(w, partVar(w.which, 'zero'), q.zero, index, share, '-', 'dq_z'));
    lines.push(...applyLines(w, partVar(w.which, 'scale'), q.scale.dtype, index, share, '*', 'dq_g'));
  }
  if (q.norm)
    lines.push(
      ...applyLines(
        w,
        partVar(w.which, 'norm'),
        q.norm,
        `dq_bh * ${W} + dq_c`,
        shared('channel', runChannels),
        '*',
        'dq_n',
      ),
    );
  return [...lines, 'return dq_out;'];
}

/** The recent-window branch (none without a window): the run from the 16-bit recent rows. */
function recentRunLines(w: WideCodes): string[] {
  const recent = w.format.recent;
  if (!recent) return [];
  const buf = partVar(w.which, 'recent');
  return [
    `let dq_first = Nk - min(${recent.tokens}u, Nk); // the recent window's first token`,
    'if (dq_t >= dq_first) {',
    `  let dq_i = (dq_bh * ${recent.tokens}u + dq_t - dq_first) * ${w.width}u + 4u * dq_c4;`,
    ...Array.from(
      { length: w.cols },
      (_, j) => `  dq_out[${j}] = ${vec4Of((l) => readFloat(buf, recent.dtype, `(dq_i + ${4 * j + l}u)`))};`,
    ),
    '  return dq_out;',
    '}',
  ];
}

/**
 * `fn <k|v>_dequant_run(dq_row, dq_t, dq_c4, dq_bh, Nk) -> array<vec4<f32>, cols>`: vec4 columns
 * dq_c4 .. dq_c4 + cols − 1 (dq_c4 a multiple of cols) of row dq_row (token dq_t of (batch, kv
 * head) dq_bh), each equal lane by lane to `<k|v>_dequant` of its channels.
 */
export function dequantRunFunction(w: WideCodes, paged: boolean): string[] {
  const row = paged ? 'dq_lrow' : 'dq_row';
  return [
    `fn ${dequantRunFn(w.which)}(${row}: u32, dq_t: u32, dq_c4: u32, dq_bh: u32, Nk: u32) -> array<vec4<f32>, ${w.cols}> {`,
    `  var dq_out: array<vec4<f32>, ${w.cols}>;`,
    ...[...recentRunLines(w), ...codeRunLines(w, paged)].map((l) => `  ${l}`),
    '}',
  ];
}

/**
 * The run functions of a plan, with a header saying which lanes they were made for (for readers of
 * the module: re-tuning reads them from DecodeVariant.coop.codeLanes, not from the text).
 */
export function dequantRunFunctions(plan: WidePlan, paged: boolean): string {
  return [
    `// Wide code loads (coopDecodeCodes 'wide'): each lane loads a run of channels; made for DC_LANES = ${plan.lanes}.`,
    `const DC_CODE_LANES: u32 = ${plan.lanes}u;`,
    ...[plan.k, plan.v].flatMap((w) => (w ? ['', ...dequantRunFunction(w, paged)] : [])),
  ].join('\n');
}
