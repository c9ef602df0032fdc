// The quantized K/V cache feature (features.ts): the modules that quantize rows into a cache.
export { wgslQuantizeModules } from './quantize.js';
