// The routing/selection feature (features.ts): what renderWgsl, the layout and the stage table
// and the coop engine call for kernels with a `sparsity` statement.
export { routingHelpers, routingPoolEntry, routingRankEntries, routingScratchShape } from './routing.js';
export { selectStateShape } from './routing-select.js';
export { routedChunkClasses, routedKeyCheck, routedRowState, unitKeysFn } from './coop-route.js';
