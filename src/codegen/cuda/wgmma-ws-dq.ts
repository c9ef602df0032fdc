// The wgmma-ws producer over quantized K/V caches: wgmma reads B from shared memory, so the 16-bit
// tile must exist there. The whole producer warpgroup (idle under TMA) converts each visited
// tile into the stage the consumers read (dequant-tile.ts; the 128B-swizzled panels TMA would
// have written), so the consumers' loop — wait on `full`, compute, release `empty` — is
// unchanged. A float K or V beside a quantized one still comes by TMA, armed after the
// conversion; Q always does.
import type { TensorFormats } from '../../ir/formats.js';
import { producerHandleDecls } from './dequant-tile.js';
import { tmaLoadKvOf } from './kv-load-tma.js';

/** Named barrier of the producer warpgroup alone (1: consumers; 2, 3: ping-pong). */
const PRODUCER_BAR = 4;

/** The quantized tensors of `formats` as tile conversions of tile kt into stage st. */
function convertLines(formats: TensorFormats): string[] {
  const line = (w: 'k' | 'v'): string => {
    const [tile, width] = w === 'k' ? ['Ks', 'D'] : ['Vs', 'DV'];
    return `  load_panel_dq<${width}, BK, ${128}>(${tile} + st * (BK * ${width}), ${w}q + (size_t)kt * BK * ${width}, ${width}, a.Nk - kt * BK, ptid);`;
  };
  return (['k', 'v'] as const).filter((w) => formats[w].kind === 'quant').map(line);
}

/** The producer's loop when k and/or v is quantized (run by every producer warp). */
export function dequantProducerCode(formats: TensorFormats): string[] {
  const floats = (['k', 'v'] as const).filter((w) => formats[w].kind !== 'quant');
  const floatBytes = floats.map((w) => (w === 'k' ? 'D' : 'DV')).join(' + ');
  return [
    'const int ptid = tid - CTHREADS;',
    ...producerHandleDecls(formats),
    'int st = 0;',
    'bool wrapped = false; // past the first lap: a buffer is free once its `empty` phase completes',
    'unsigned ph = 0;',
    'if (ptid == 0) {',
    '  mbar_expect_tx(qbar, BQ * D * (int)sizeof(T));',
    '  tma_panels<D, BQ>(Qs, tmq, q0, b * a.H + h, qbar);',
    '}',
    'bool kt_full;',
    'for (int kt = next_tile(0, kt_full); kt < nkt; kt = next_tile(kt + 1, kt_full)) {',
    '  if (wrapped) mbar_wait(&empty_bar[st], ph ^ 1u);',
    ...convertLines(formats),
    '  // Generic-proxy stores, read by wgmma (async proxy): fence, then one arrival for all 128.',
    '  proxy_fence();',
    `  asm volatile("bar.sync ${PRODUCER_BAR}, 128;\\n" ::: "memory");`,
    '  if (ptid == 0) {',
    ...(floats.length
      ? [
          `    mbar_expect_tx(&full_bar[st], BK * (${floatBytes}) * (int)sizeof(T));`,
          ...tmaLoadKvOf(floats).map((l) => `  ${l}`),
        ]
      : ['    mbar_arrive(&full_bar[st]);']),
    '  }',
    '  if (++st == STAGES) {',
    '    st = 0;',
    '    ph ^= 1u;',
    '    wrapped = true;',
    '  }',
    '}',
    '(void)kt_full;',
  ];
}
