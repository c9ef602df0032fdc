// K/V tile loads of the TMA engine (wgmma-ws): the producer warp asks the TMA unit for a tile of
// 64-column panels (128B swizzle) per K and V, completing on the stage's mbarrier; the launcher
// describes K and V as 3-D tensor maps. Coordinates and shapes come from kv-rows.ts, so a paged
// or strided cache changes them there. (A quantized K/V format would stage the packed tile here
// and dequantize in the consumers.)
import { K_ROWS, V_ROWS, kvTmaCoords, kvTmaShape, type KvTensor } from './kv-rows.js';

const tile = (t: KvTensor): string => (t.name === 'k' ? 'Ks' : 'Vs');
const map = (t: KvTensor): string => (t.name === 'k' ? 'tmk' : 'tmv');

/** The producer's requests for K/V tile `kt` of kv head `hkv` into stage `st`. */
export const tmaLoadKv: readonly string[] = [K_ROWS, V_ROWS].map(
  (t) =>
    `    tma_panels<${t.width}, BK>(${tile(t)} + st * (BK * ${t.width}), ${map(t)}, ${kvTmaCoords('kt * BK', 'b', 'hkv')}, &full_bar[st]);`,
);

/** Host: tensor maps 1 and 2 (K and V) of make_tma_maps, boxes of BK rows. */
export const tmaKvMaps: readonly string[] = [K_ROWS, V_ROWS].map(
  (t, i) =>
    `  if (encode_panels(encode, &maps[${i + 1}], ${kvTmaShape(t)}, BK) != 0) return "cannot describe ${t.name} to the TMA unit";`,
);
