// The front-end features loaded with import() (attnc/wgsl/async's compileAsync; front-async.ts
// runs the front end with them): a page that compiles a plain mask kernel without mistakes never
// downloads the routing, storage or qk/pv statements, nor the wording of errors.
import { lazyTable, type TableLoaders } from '../lazy-table.js';
import type { LazyFront } from './front-async.js';
import { frontFeatureTitles, type FrontFeatures } from './front-features.js';

/** How each feature is loaded. */
export type FrontLoaders = TableLoaders<FrontFeatures>;

/** The chunks: each import() names its module literally, so bundlers can see and split it. */
export const frontChunkLoaders: FrontLoaders = {
  sparsity: () => import('./front-sparsity.js'),
  storage: () => import('./front-storage.js'),
  operandQuant: () => import('./front-operand-quant.js'),
  messages: () => import('./front-messages.js'),
};

/** One per page, so each chunk loads once. */
export const lazyFront = (loaders: FrontLoaders = frontChunkLoaders): LazyFront =>
  lazyTable(loaders, (f) => `the front end's ${frontFeatureTitles[f]} (feature '${f}')`);
