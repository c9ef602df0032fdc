// Every WGSL feature imported statically: the table `compile` (attnc, attnc/wgsl) renders with.
// Named imports, not namespace objects, so bundlers need not build a namespace per feature.
import { renderDecode } from './feature-decode.js';
import { renderImportance, withImportance } from './feature-importance.js';
import {
  codesBinding,
  dequantFunctions,
  dequantRunFunctions,
  dequantVec4Functions,
  partBindings,
  wgslQuantizeModules,
} from './feature-quantize.js';
import {
  routingHelpers,
  routingPoolEntry,
  routingRankEntries,
  routingScratchShape,
  selectStateShape,
  routedChunkClasses,
  routedKeyCheck,
  routedRowState,
  unitKeysFn,
} from './feature-routing.js';
import type { WgslFeatures } from './features.js';

export const eagerWgslFeatures: WgslFeatures = {
  routing: {
    routingHelpers,
    routingPoolEntry,
    routingRankEntries,
    routingScratchShape,
    selectStateShape,
    routedChunkClasses,
    routedKeyCheck,
    routedRowState,
    unitKeysFn,
  },
  decode: { renderDecode },
  quantize: {
    wgslQuantizeModules,
    codesBinding,
    partBindings,
    dequantFunctions,
    dequantVec4Functions,
    dequantRunFunctions,
  },
  importance: { renderImportance, withImportance },
};
