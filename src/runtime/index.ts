// attnc/runtime: execute WGSL artifacts on WebGPU (Node via the `webgpu` package, loaded lazily;
// browsers via navigator.gpu) and check them against the dense reference.
export {
  createKernel,
  deviceLimits,
  getDevice,
  type GpuKernel,
  type RunResult,
  type RunInputs,
} from './webgpu.js';
export { InputError } from './validate.js';
export { MissingDependencyError } from '../optional.js';
export { referenceAttention, type RefInputs, type RefPredicates, type RefResult } from './reference.js';
export { declPredicates } from './ast-eval.js';
export { compareArrays, type Agreement } from './compare.js';
export { runWgslBackward, type BackwardRunInputs, type BackwardRunResult } from './backward-webgpu.js';
export { referenceGradients, type GradPredicates, type RefGradients } from './reference-grad.js';
