// attnc's public API: the compiler core with every backend (WGSL and CUDA). It imports nothing
// Node-only, so it bundles for browsers; `attnc/wgsl` (src/wgsl.ts) is the same without CUDA.
export * from './api.js';
export { compile } from './compile.js';
export {
  compileBackward,
  compileCudaBackward,
  type CompiledBackward,
  type CompiledCudaBackward,
} from './backward.js';
