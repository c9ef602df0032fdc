// The WGSL features loaded with import() the first time a program needs one (attnc/wgsl/async's
// compileAsync): bundlers split each import() target into a chunk, so a page that compiles a
// plain mask kernel never downloads the routing, quantize or importance code generators.
import type { AttentionKernel } from '../../ir/kernel.js';
import { featuresNeeded, featureTitles, type WgslFeature, type WgslFeatures } from './features.js';

/** How each feature is loaded. */
export type FeatureLoaders = { readonly [F in WgslFeature]: () => Promise<WgslFeatures[F]> };

/** The chunks: each import() names its module literally, so bundlers can see and split it. */
export const chunkLoaders: FeatureLoaders = {
  routing: () => import('./feature-routing.js'),
  decode: () => import('./feature-decode.js'),
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
  const features: { -readonly [F in WgslFeature]?: WgslFeatures[F] } = {};
  async function loadOne<F extends WgslFeature>(name: F): Promise<void> {
    try {
      features[name] = await loaders[name]();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new Error(
        `attnc/wgsl/async: could not load the WGSL ${featureTitles[name]} code generator (feature '${name}'): ${reason}`,
        { cause: e },
      );
    }
  }
  const load = async (kernel: AttentionKernel): Promise<void> => {
    await Promise.all(
      featuresNeeded(kernel)
        .filter((f) => features[f] === undefined)
        .map((f) => loadOne(f)),
    );
  };
  return { features, load };
}
