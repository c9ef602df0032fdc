// The importance feature (features.ts): the pass that sums attention mass per key.
export { renderImportance, withImportance } from './importance.js';
