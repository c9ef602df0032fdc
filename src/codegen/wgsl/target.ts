// The WGSL target of `compile` (attnc, attnc/wgsl): every feature's code generator imported statically.
import type { TargetBackend } from '../target.js';
import { eagerWgslFeatures } from './features-eager.js';
import { wgslTargetWith } from './target-base.js';

export const wgslTarget: TargetBackend = wgslTargetWith(eagerWgslFeatures);
