// The quantized K/V cache feature (features.ts): the modules that quantize rows into a cache,
// the bindings such a cache adds, the dequantizing functions its loads call (dequant-calls.ts),
// the coop decode's wide code-load plans and the pre-pass of salient index lists.
export { wgslQuantizeModules } from './quantize.js';
export { codesBinding, dequantFunctions, partBindings } from './dequant.js';
export { dequantVec4Functions } from './dequant-vec4.js';
export { dequantRunFunctions } from './dequant-run.js';
export { codesViewDecls, wide16Lanes, widePlan } from './dequant-run-plan.js';
export {
  salientEntryPoints,
  salientFlagsBinding,
  salientFlagsVar,
  salientSources,
  wgslSalientLists,
} from './salient-list.js';
