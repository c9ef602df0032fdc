// Glue between the WGSL module renderer (kernel.ts) and the coop engine (coop.ts): the coop entry
// point's expressions, and the row-engine schedule its decode module runs on.
import type { AttentionKernel } from '../../ir/kernel.js';
import { attendsSelected } from '../../ir/routing.js';
import { linearize } from '../linearize.js';
import type { ClassMode } from './attention.js';
import { coopAttentionBody } from './coop.js';
import { feature, type WgslFeatures } from './features.js';
import type { WgslLayout } from './layout.js';
import { wgslRenderer, type WgslContext } from './rules.js';

/**
 * The coop `attention` entry point. Mask and score are rendered whole per element (the row
 * engine hoists their row-invariant parts; here an invocation owns several rows).
 */
export function coopBody(
  kernel: AttentionKernel,
  layout: WgslLayout,
  cx: WgslContext,
  mode: ClassMode,
  features: Partial<WgslFeatures>,
): string {
  if (mode === 'empty') throw new Error('WGSL coop: an all-empty kernel runs on the row engine');
  const r = wgslRenderer(cx);
  const mask = mode === 'full' ? undefined : linearize([kernel.mask], r, 'mk');
  const score = linearize([kernel.score], r, 'sc');
  const { schedule, formats } = kernel;
  // `emit` writes the selection but attends under the static mask alone.
  const routed =
    kernel.routing && attendsSelected(kernel.routing)
      ? { plan: kernel.routing, render: feature(features, 'routing') }
      : undefined;
  return coopAttentionBody({ schedule, formats, mode, lse: kernel.outputs.lse, mask, score, layout, routed });
}
