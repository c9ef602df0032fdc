// What the two WGSL decode modules (the row engine's, decode.ts, and the coop engine's,
// decode-coop.ts) share around their kernels: the request's layout plus one f32 scratch binding
// for the split partials, and the launch records (summaries, attention_split, attention_merge).
import type { AttentionKernel } from '../../ir/kernel.js';
import type { Binding, EntryPoint } from '../artifact.js';
import type { AttentionParts } from './attention.js';
import type { QuantizedKv } from './features.js';
import type { WgslLayout } from './layout.js';

/** Decode mode is used for at most this many query rows (a merge workgroup per row and head). */
export const DECODE_MAX_NQ = 16;

export interface DecodeRequest {
  readonly kernel: AttentionKernel;
  readonly meta: { readonly sourceHash: string; readonly scheduleHash: string };
  /** The main module's layout; the decode module adds its scratch binding after it. */
  readonly layout: WgslLayout;
  /** The quantized K/V feature (features.ts), for kernels with a quantized cache. */
  readonly quant: QuantizedKv | undefined;
  /** Sections shared with the main module, in order: f16 enable, constants, helpers, tile
   * classifier, summary entry points (undefined entries are skipped). The layout is rendered here. */
  readonly constants: string;
  readonly shared: readonly (string | undefined)[];
  readonly prefix: string | undefined;
  readonly parts: AttentionParts;
  readonly summaryEntries: readonly EntryPoint[];
  /** Bindings the main attention entry point uses. */
  readonly attentionBindings: readonly string[];
}

/** The scratch binding of the split partials (acc, m, l records). */
export const DECODE_SCRATCH = 'decode_part';

export interface DecodeModuleRequest {
  readonly layout: WgslLayout;
  readonly summaryEntries: readonly EntryPoint[];
  /** Bindings the main attention entry point uses. */
  readonly attentionBindings: readonly string[];
}

export interface DecodeLaunch {
  /** Shape of the scratch binding (one element count). */
  readonly scratchShape: string;
  readonly splitThreads: number;
  readonly splitGrid: EntryPoint['grid'];
  readonly mergeThreads: number;
}

/** The decode module's layout and entry points: split reads the inputs, merge writes out and lse. */
export function decodeModulePlan(
  req: DecodeModuleRequest,
  launch: DecodeLaunch,
): { layout: WgslLayout; entryPoints: EntryPoint[] } {
  const scratch: Binding = {
    name: DECODE_SCRATCH,
    role: 'scratch',
    index: req.layout.bindings.length,
    dtype: 'f32',
    shape: [launch.scratchShape],
    access: 'read_write',
  };
  const layout: WgslLayout = {
    bindings: [...req.layout.bindings, scratch],
    uniforms: req.layout.uniforms,
    vars: new Map([...req.layout.vars, [DECODE_SCRATCH, DECODE_SCRATCH]]),
  };
  const writes = new Set(['out', 'lse']);
  const entryPoints: EntryPoint[] = [
    ...req.summaryEntries,
    {
      name: 'attention_split',
      role: 'attention',
      workgroupSize: [launch.splitThreads, 1, 1],
      grid: launch.splitGrid,
      bindings: [...req.attentionBindings.filter((b) => !writes.has(b)), DECODE_SCRATCH],
    },
    {
      name: 'attention_merge',
      role: 'attention',
      workgroupSize: [launch.mergeThreads, 1, 1],
      grid: ['Nq', 'H', 'B'],
      bindings: [...req.attentionBindings.filter((b) => writes.has(b)), DECODE_SCRATCH, 'uniforms'],
    },
  ];
  return { layout, entryPoints };
}
