// The wgmma-ws producer over quantized K/V caches: wgmma reads B from shared memory, so the 16-bit
// tile must exist there. The whole producer warpgroup (idle under TMA) converts each visited
// tile into the stage the consumers read (dequant-tile.ts; the 128B-swizzled panels TMA would
// have written), so the consumers' loop — wait on `full`, compute, release `empty` — is
// unchanged. The tile's code words first come into a staging buffer by cp.async (16-byte copies,
// no registers: the producer keeps 40), so the whole tile's loads are in flight at once and the
// conversion reads shared memory. A float K or V beside a quantized one still comes by TMA,
// armed after the conversion; Q always does.
import type { TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';
import { codesPerWord } from '../../quant/elem.js';
import { wordsPerRow } from '../../quant/layout.js';
import { fastConverterCode, fastConvertible } from './dequant-fast.js';
import { producerHandleDecls } from './dequant-tile.js';
import {
  pipelinedProducerCode,
  producerLoadQ,
  producerSync,
  publishStage,
  tokenScaled,
} from './wgmma-ws-dq-pipe.js';
import { ringAdvanceCode } from './wgmma-ws-body.js';

const quantOf = (f: TensorFormats): ('k' | 'v')[] =>
  (['k', 'v'] as const).filter((w) => f[w].kind === 'quant');

/** Code words per token of quantized cache `w` at head dim `width`. */
function wordsOf(f: TensorFormats, w: 'k' | 'v', width: number): number {
  const t = f[w];
  return t.kind === 'quant' ? wordsPerRow(width, codesPerWord(t.format.elem)) : 0;
}

/**
 * Shared memory the staging buffer adds to the wgmma-ws core (0 without quantized caches): one
 * tile of K's and V's code words, 16-byte aligned after the mbarriers.
 */
export function wsStagingBytes(s: Schedule, f: TensorFormats): number {
  const words = wordsOf(f, 'k', s.headDim) + wordsOf(f, 'v', s.valueDim);
  if (words === 0) return 0;
  if (s.wsDequant === 'serial') return 4 * s.blockK * words + 16;
  // Pipelined (wgmma-ws-dq-pipe.ts): two slots, then one f32 a key per staged per-token scale.
  const scales = fastConvertible(f) ? tokenScaled(f).length : 0;
  return 4 * s.blockK * (2 * words + scales) + 16;
}

/** The staging copy and the conversion of tile kt into stage st, per quantized tensor. */
function tileLines(f: TensorFormats): { stage: string[]; convert: string[] } {
  const stage: string[] = [];
  const convert: string[] = [];
  let at = '0';
  for (const w of quantOf(f)) {
    const [tile, width] = w === 'k' ? ['Ks', 'D'] : ['Vs', 'DV'];
    const H = `${w}q`;
    const wpr = `${w === 'k' ? 'DqRowsK' : 'DqRowsV'}::WPR`;
    const buf = at === '0' ? 'Cs' : `Cs + ${at}`;
    stage.push(`stage_codes<${wpr}>(${buf}, ${H}.codes_row(kt * BK), rows, ptid);`);
    convert.push(
      `load_panel_dq<${width}, BK, 128>(${tile} + st * (BK * ${width}), ${H} + (size_t)kt * BK * ${width}, ${width}, rows, ptid, ${buf});`,
    );
    at = `BK * ${wpr}`;
  }
  return { stage, convert };
}

/** Device helper: the staging copy (cp.async, every producer thread). */
export const stageCodesHelper: readonly string[] = [
  "// `rows` tokens' code words (WPR each, contiguous in the cache) → dst by the 128 producer threads.",
  'template <int WPR>',
  '__device__ __forceinline__ void stage_codes(unsigned* dst, const unsigned* src, int rows, int tid) {',
  '  static_assert(WPR % 4 == 0, "a token\'s code words are whole 16-byte copies");',
  '  for (int i = tid; i < rows * (WPR / 4); i += 128) cp_async16(dst + 4 * i, src + 4 * i, true);',
  '}',
];

/** The producer's loop when k and/or v is quantized (run by every producer warp). */
export function dequantProducerCode(
  s: Schedule,
  formats: TensorFormats,
  field: (key: string) => string,
): string[] {
  if (s.wsDequant === 'serial') return serialProducerCode(formats);
  return pipelinedProducerCode(formats, field, fastConvertible(formats));
}

/** Device code of the fast converter when the pipelined producer uses it (dequant-fast.ts). */
export function wsFastConverterCode(s: Schedule, formats: TensorFormats): string[] {
  return s.wsDequant !== 'serial' && fastConvertible(formats) ? fastConverterCode(formats) : [];
}

/** Schedule.wsDequant 'serial': stage the tile's codes, wait, convert, arm; one tile at a time. */
function serialProducerCode(formats: TensorFormats): string[] {
  const { stage, convert } = tileLines(formats);
  return [
    'const int ptid = tid - CTHREADS;',
    ...producerHandleDecls(formats),
    '// The staging buffer: after the mbarriers, 16-byte aligned (wsStagingBytes).',
    'unsigned* Cs = reinterpret_cast<unsigned*>((reinterpret_cast<size_t>(qbar + 1) + 15) & ~(size_t)15);',
    'int st = 0;',
    'bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes',
    'unsigned ph = 0;',
    ...producerLoadQ,
    'bool kt_full;',
    'for (int kt = next_tile(0, kt_full); kt < nkt; kt = next_tile(kt + 1, kt_full)) {',
    '  const int rows = min(BK, a.Nk - kt * BK);',
    '  // The codes of tile kt, all in flight at once, while the consumers may still read stage st.',
    ...stage.map((l) => `  ${l}`),
    '  cp_commit();',
    '  cp_wait<0>();',
    `  ${producerSync} // every thread's copies have landed`,
    '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
    ...convert.map((l) => `  ${l}`),
    ...publishStage(formats, 'the staging buffer before the next copies'),
    ...ringAdvanceCode,
    '}',
    '(void)kt_full;',
  ];
}
