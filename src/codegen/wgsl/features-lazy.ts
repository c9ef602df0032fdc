// The WGSL features loaded with import() the first time a program needs one (attnc/wgsl/async's
// compileAsync): bundlers split each import() target into a chunk, so a page that compiles a
// plain mask kernel never downloads the routing, quantize or importance code generators, nor the
// engine its schedule does not pick.
import type { AttentionKernel } from '../../ir/kernel.js';
import { lazyTable, type TableLoaders } from '../../lazy-table.js';
import { featuresNeeded, featureTitles, type WgslFeatures } from './features.js';

/** How each feature is loaded. */
export type FeatureLoaders = TableLoaders<WgslFeatures>;

/** The chunks: each import() names its module literally, so bundlers can see and split it. */
export const chunkLoaders: FeatureLoaders = {
  rowEngine: () => import('./feature-row-engine.js'),
  coopEngine: () => import('./feature-coop-engine.js'),
  routing: () => import('./feature-routing.js'),
  quantize: () => import('./feature-quantize.js'),
  importance: () => import('./feature-importance.js'),
};

export interface LazyFeatures {
  /** The features loaded so far (render reads it; a missing one it needs is an error). */
  readonly features: Partial<WgslFeatures>;
  /** Loads what `kernel` needs and is not loaded yet; rejects naming a feature that fails to load. */
  readonly load: (kernel: AttentionKernel) => Promise<void>;
}

export function lazyWgslFeatures(loaders: FeatureLoaders = chunkLoaders): LazyFeatures {
  const table = lazyTable(loaders, (f) => `the WGSL ${featureTitles[f]} code generator (feature '${f}')`);
  return { features: table.loaded, load: (kernel) => table.load(featuresNeeded(kernel)) };
}
