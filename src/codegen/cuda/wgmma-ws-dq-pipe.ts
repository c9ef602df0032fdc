// The wgmma-ws producer over quantized K/V caches, pipelined (the default; Schedule.wsDequant
// 'serial' keeps wgmma-ws-dq.ts's one-tile-at-a-time loop): two staging buffers, so the code
// words of the next visited tile are in flight by cp.async (and its per-token scales by plain
// loads into registers) while this tile is converted; load latency leaves the producer's path.
// Formats the fast converter takes (dequant-fast.ts: int/fp8 codes, a per-tensor or per-token
// scale) convert with it; the others with the general converter (dequant-tile.ts), both from
// the staged words. Per-token scales are put into shared memory after the tile ahead of them is
// converted and read after the next iteration's producer barrier (one buffer suffices).
import type { TensorFormats } from '../../ir/formats.js';
import { fastScale, fastScaleRead } from './dequant-fast.js';
import { producerHandleDecls } from './dequant-tile.js';
import { tmaLoadKvOf } from './kv-load-tma.js';
import { qTmaCoords } from './qo-rows.js';

type Which = 'k' | 'v';

/** Named barrier of the producer warpgroup alone (1: consumers; 2, 3: ping-pong). */
/** Named barrier 4: the producer warpgroup alone (1: consumers; 2, 3: ping-pong). */
export const producerSync = 'asm volatile("bar.sync 4, 128;\\n" ::: "memory");';

/**
 * Q's tile by TMA, issued by one producer thread. The Q map is 4-D (columns, rows, heads, batches:
 * wgmma-ws-device.ts make_tma_maps), so the load must be the 4-D one: a 3-D load on it stops the
 * kernel with an illegal instruction (the H200, qp_int8_full). Both producers share this.
 */
export const producerLoadQ: readonly string[] = [
  'if (ptid == 0) {',
  '  mbar_expect_tx(qbar, BQ * D * (int)sizeof(T));',
  `  tma_kv_panels<D, BQ>(Qs, tmq, ${qTmaCoords('q0', 'b', 'h')}, qbar);`,
  '}',
];

/**
 * A converted stage handed to the consumers: the generic-proxy stores fenced for wgmma, one arrival
 * for the warpgroup (plus the TMA of a float K or V beside a quantized one). `reads` names what
 * the barrier also ends every read of.
 */
export function publishStage(formats: TensorFormats, reads: string): string[] {
  const floats = (['k', 'v'] as const).filter((w) => formats[w].kind !== 'quant');
  const floatBytes = floats.map((w) => (w === 'k' ? 'D' : 'DV')).join(' + ');
  return [
    '  // Generic-proxy stores, read by wgmma (async proxy): fence, then one arrival for all 128;',
    `  // the barrier also ends every read of ${reads}.`,
    '  proxy_fence();',
    `  ${producerSync}`,
    '  if (ptid == 0) {',
    ...(floats.length
      ? [
          `    mbar_expect_tx(&full_bar[st], BK * (${floatBytes}) * (int)sizeof(T));`,
          ...tmaLoadKvOf(floats).map((l) => `  ${l}`),
        ]
      : ['    mbar_arrive(&full_bar[st]);']),
    '  }',
  ];
}

const quantOf = (f: TensorFormats): Which[] => (['k', 'v'] as const).filter((w) => f[w].kind === 'quant');
const wprOf = (w: Which): string => `${w === 'k' ? 'DqRowsK' : 'DqRowsV'}::WPR`;

/** Quantized caches whose per-token scales the producer stages (fast converter, per token). */
export const tokenScaled = (f: TensorFormats): Which[] =>
  quantOf(f).filter((w) => fastScale(f[w]) === 'token');

/** Offset (in words) of cache w's codes within a staging slot. */
function codesAt(f: TensorFormats, w: Which): string {
  return w === quantOf(f)[0] ? '0' : `BK * ${wprOf(quantOf(f)[0]!)}`;
}

type Field = (key: string) => string;

/** The staging lambda, the scale prefetch registers and their store into shared memory. */
function stagingCode(f: TensorFormats, field: Field, scaled: readonly Which[]): string[] {
  const prefetch = scaled.flatMap((w) => [
    '#pragma unroll',
    `  for (int j = 0; j < SCALE_REGS; ++j) {`,
    '    const int r = ptid + 128 * j;',
    `    ${w}pre[j] = r < rows ? ${fastScaleRead(w, f[w], field, `${w}q.bh * (size_t)a.Nk + n * BK + r`)} : 0.f;`,
    '  }',
  ]);
  return [
    'constexpr int SCALE_REGS = (BK + 127) / 128;',
    ...scaled.map((w) => `float ${w}pre[SCALE_REGS]; // tile ahead's per-token ${w} scales, in flight`),
    "// Tile n's code words into slot `slot` (one cp.async group), its scales into registers.",
    'auto stage = [&](const int n, const int slot) {',
    '  const int rows = min(BK, a.Nk - n * BK);',
    ...quantOf(f).map(
      (w) =>
        `  stage_codes<${wprOf(w)}>(Cs + slot * CSLOT + ${codesAt(f, w)}, ${w}q.codes_row(n * BK), rows, ptid);`,
    ),
    '  cp_commit();',
    ...prefetch,
    '};',
    'auto put_scales = [&]() {',
    '#pragma unroll',
    '  for (int j = 0; j < SCALE_REGS; ++j) {',
    '    const int r = ptid + 128 * j;',
    '    if (r < BK) {',
    ...scaled.map((w, i) => `      Ss[${i} * BK + r] = ${w}pre[j];`),
    '    }',
    '  }',
    '};',
  ];
}

/** The conversion of tile kt (staged in `slot`) into stage st, per quantized cache. */
function convertLines(f: TensorFormats, fast: boolean): string[] {
  const scaled = fast ? tokenScaled(f) : [];
  return quantOf(f).map((w) => {
    const [tile, width] = w === 'k' ? ['Ks', 'D'] : ['Vs', 'DV'];
    const staged = `Cs + slot * CSLOT + ${codesAt(f, w)}`;
    const dst = `${tile} + st * (BK * ${width})`;
    if (!fast)
      return `load_panel_dq<${width}, BK, 128>(${dst}, ${w}q + (size_t)kt * BK * ${width}, ${width}, rows, ptid, ${staged});`;
    const i = scaled.indexOf(w);
    const scales = i < 0 ? 'nullptr' : `Ss + ${i} * BK`;
    const tensor = fastScale(f[w]) === 'tensor' ? `sc_${w}` : '0.f';
    return `${w}_tile_fast<${width}, BK>(${dst}, ${w}q, ${staged}, ${scales}, ${tensor}, kt, rows, ptid);`;
  });
}

/** The producer's loop, pipelined (`fast`: every quantized cache takes the fast converter). */
export function pipelinedProducerCode(formats: TensorFormats, field: Field, fast: boolean): string[] {
  const tensorScales = fast
    ? quantOf(formats)
        .filter((w) => fastScale(formats[w]) === 'tensor')
        .map((w) => `const float sc_${w} = ${fastScaleRead(w, formats[w], field, '0')};`)
    : [];
  return [
    'const int ptid = tid - CTHREADS;',
    ...producerHandleDecls(formats),
    ...tensorScales,
    `constexpr int CSLOT = BK * (${quantOf(formats).map(wprOf).join(' + ')}); // words of a staging slot`,
    '// Two staging slots after the mbarriers, 16-byte aligned, then the per-token scales (wsStagingBytes).',
    'unsigned* Cs = reinterpret_cast<unsigned*>((reinterpret_cast<size_t>(qbar + 1) + 15) & ~(size_t)15);',
    ...(fast && tokenScaled(formats).length ? ['float* Ss = reinterpret_cast<float*>(Cs + 2 * CSLOT);'] : []),
    ...stagingCode(formats, field, fast ? tokenScaled(formats) : []),
    'int st = 0, slot = 0;',
    'bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes',
    'unsigned ph = 0;',
    ...producerLoadQ,
    'bool kt_full, nx_full;',
    'int kt = next_tile(0, kt_full);',
    'if (kt < nkt) {',
    '  stage(kt, 0);',
    '  put_scales();',
    '}',
    'while (kt < nkt) {',
    '  const int rows = min(BK, a.Nk - kt * BK);',
    '  const int nx = next_tile(kt + 1, nx_full);',
    "  // The next tile's codes in flight while this one converts.",
    '  if (nx < nkt) {',
    '    stage(nx, slot ^ 1);',
    '    cp_wait<1>();',
    '  } else {',
    '    cp_wait<0>();',
    '  }',
    `  ${producerSync} // tile kt's codes and scales are in shared memory`,
    '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
    ...convertLines(formats, fast).map((l) => `  ${l}`),
    ...publishStage(formats, 'this slot and of the scales before they are rewritten'),
    '  if (nx < nkt) put_scales();',
    '  slot ^= 1;',
    '  if (++st == STAGES) {',
    '    st = 0;',
    '    ph ^= 1u;',
    '    wrapped = true;',
    '  }',
    '  kt = nx;',
    '}',
    '(void)kt_full;',
    '(void)nx_full;',
  ];
}
