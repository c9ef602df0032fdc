// The WGSL code generators only some programs need, reached through one record so that an entry
// point decides how they are loaded: features-eager.ts fills it with static imports (`compile`),
// features-lazy.ts with import() the first time a program needs each one (attnc/wgsl/async's
// `compileAsync`), which lets a consumer's bundler put each in a chunk of its own. This module
// imports them as types only: it is in every static graph.
import { hasQuantizedKv } from '../../ir/formats.js';
import type { AttentionKernel } from '../../ir/kernel.js';
import { isCoop } from './coop-geometry.js';
import type * as CoopEngine from './feature-coop-engine.js';
import type * as Importance from './feature-importance.js';
import type * as Quantize from './feature-quantize.js';
import type * as Routing from './feature-routing.js';
import type * as RowEngine from './feature-row-engine.js';

export interface WgslFeatures {
  /**
   * The row engine: its prefill entry point (attention.ts) and split-KV decode module of
   * few-query calls (decode.ts). A kernel renders with one engine.
   */
  readonly rowEngine: typeof RowEngine;
  /** The coop engine: its prefill entry point (coop*.ts) and decode module (decode-coop*.ts). */
  readonly coopEngine: typeof CoopEngine;
  /** Block routing and token selection: the pool, rank and select passes (routing.ts). */
  readonly routing: typeof Routing;
  /**
   * Quantized K/V caches: the bindings they add, the dequantizing functions their loads call
   * (dequant*.ts) and the quantize modules that fill them (quantize.ts).
   */
  readonly quantize: typeof Quantize;
  /** The importance side output's pass (importance.ts). */
  readonly importance: typeof Importance;
}

export type WgslFeature = keyof WgslFeatures;

/** The quantized K/V feature, which the engines' layouts and K/V loads take where a cache is quantized. */
export type QuantizedKv = WgslFeatures['quantize'];

/** What each feature is, for messages. */
export const featureTitles: Readonly<Record<WgslFeature, string>> = {
  rowEngine: 'row engine',
  coopEngine: 'coop engine',
  routing: 'routing/selection',
  quantize: 'quantized K/V cache',
  importance: 'importance output',
};

/** Whether `kernel` gets a decode variant: routed kernels and all-empty masks do not (yet). */
export function hasDecodeVariant(kernel: AttentionKernel): boolean {
  const empty = kernel.tiles.kind === 'static' && kernel.tiles.value === 'empty';
  return kernel.decodeVariant !== false && kernel.routing === undefined && !empty;
}

/** The features renderWgsl uses for `kernel`. */
export function featuresNeeded(kernel: AttentionKernel): WgslFeature[] {
  const needs: Record<WgslFeature, boolean> = {
    rowEngine: !isCoop(kernel.schedule),
    coopEngine: isCoop(kernel.schedule),
    routing: kernel.routing !== undefined,
    quantize: hasQuantizedKv(kernel.formats),
    importance: kernel.outputs.importance !== undefined,
  };
  return (Object.keys(needs) as WgslFeature[]).filter((f) => needs[f]);
}

/** The feature from `features`, or an error saying it was not loaded (render before load). */
export const feature = <F extends WgslFeature>(features: Partial<WgslFeatures>, name: F): WgslFeatures[F] =>
  loaded<WgslFeatures[F]>(features[name], name);

/** `found`, a feature's code generator, or an error saying it was not loaded. */
export function loaded<T>(found: T | undefined, name: WgslFeature): T {
  // Terse: this message is in every bundle of `compile`, which cannot reach it.
  if (found === undefined) throw new Error(`WGSL backend: feature '${name}' is not loaded`);
  return found;
}
