// K/V tile loads of the TMA engine (wgmma-ws): the producer warp asks the TMA unit for a tile of
// 64-column panels (128B swizzle) per K and V, completing on the stage's mbarrier; the launcher
// describes K and V as 3-D tensor maps. Coordinates and shapes come from kv-rows.ts, so a paged
// or strided cache changes them there. A quantized K or V is not a TMA tensor: the producer
// warpgroup converts it into the stage instead (wgmma-ws-dq.ts), and it gets no tensor map.
import type { TensorFormats } from '../../ir/formats.js';
import { K_ROWS, V_ROWS, kvTmaCoords, kvTmaShape, type KvTensor } from './kv-rows.js';

const tile = (t: KvTensor): string => (t.name === 'k' ? 'Ks' : 'Vs');
const map = (t: KvTensor): string => (t.name === 'k' ? 'tmk' : 'tmv');

const request = (t: KvTensor): string =>
  `    tma_panels<${t.width}, BK>(${tile(t)} + st * (BK * ${t.width}), ${map(t)}, ${kvTmaCoords('kt * BK', 'b', 'hkv')}, &full_bar[st]);`;

/** The producer's requests for K/V tile `kt` of kv head `hkv` into stage `st`. */
export const tmaLoadKv: readonly string[] = [K_ROWS, V_ROWS].map(request);

/** The requests for those of K and V in `which` alone. */
export const tmaLoadKvOf = (which: readonly ('k' | 'v')[]): string[] =>
  [K_ROWS, V_ROWS].filter((t) => which.includes(t.name)).map(request);

/** Host: tensor maps 1 and 2 (K and V) of make_tma_maps, boxes of BK rows. */
export const tmaKvMaps: readonly string[] = [K_ROWS, V_ROWS].map(
  (t, i) =>
    `  if (encode_panels(encode, &maps[${i + 1}], ${kvTmaShape(t)}, BK) != 0) return "cannot describe ${t.name} to the TMA unit";`,
);

/** The K/V tensor maps of make_tma_maps for `formats`: none for a quantized cache (left zero). */
export const tmaKvMapsOf = (formats: TensorFormats): string[] =>
  tmaKvMaps.filter((_, i) => formats[i === 0 ? 'k' : 'v'].kind !== 'quant');
