// Every WGSL feature imported statically: the table `compile` (attnc, attnc/wgsl) renders with.
// Each feature-*.ts module exports exactly its feature's code generators (features.ts types them).
import * as coopEngine from './feature-coop-engine.js';
import * as importance from './feature-importance.js';
import * as quantize from './feature-quantize.js';
import * as routing from './feature-routing.js';
import * as rowEngine from './feature-row-engine.js';
import type { WgslFeatures } from './features.js';

export const eagerWgslFeatures: WgslFeatures = {
  rowEngine,
  coopEngine,
  routing,
  quantize,
  importance,
};
