// The WGSL target of attnc/wgsl/async's `compileAsync`: the feature code generators a kernel needs are
// loaded with import() (features-lazy.ts) before it is rendered. One loader per target, so each
// chunk loads once per page.
import type { TargetBackend } from '../target.js';
import { chunkLoaders, lazyWgslFeatures, type FeatureLoaders } from './features-lazy.js';
import { wgslTargetWith } from './target-base.js';

export function lazyWgslTarget(loaders: FeatureLoaders = chunkLoaders): TargetBackend {
  const lazy = lazyWgslFeatures(loaders);
  return { ...wgslTargetWith(lazy.features), load: lazy.load };
}
