// The runtime's own types as emitted text (TypeScript modules and .d.ts only; JS has none): what
// the runtime (emit-ts-runtime.ts) needs of a kernel, a KernelSpec, and what resolve returns.
/**
 * The runtime's own types (TypeScript and .d.ts only): kernel-independent; the kernel module's
 * public types are emit-ts-types.ts's.
 */
export const runtimeTypesSource = `
/** A launch's evaluated shapes (by binding name), grids (by entry point) and packed uniforms. */
interface Resolved {
  readonly shapes: Record<string, number[]>;
  readonly grids: [number, number, number][];
  readonly uniforms: ArrayBuffer;
  /** Sizes and int params, for decode mode's layout. */
  readonly env: Readonly<Record<string, number>>;
  /** Kernels with float K/V: the launch's K/V row addressing (kvCacheArgs). */
  readonly kv?: KvArgs;
}

/**
 * A launch's checked K/V addressing: uniform values, the elements each cache needs where its
 * strides are not the packed ones (paged: one page), the strides.
 */
interface KvArgs {
  readonly values: Record<string, number>;
  readonly need: Record<string, number>;
  readonly strides: Record<string, { b: number; h: number; n: number; W: number }>;
  readonly pageSize?: number;
  readonly maxPages: number;
}

/** Decode mode's shapes (its scratch included) and grids for one launch. */
interface DecodeLayout {
  readonly shapes: Record<string, number[]>;
  readonly grids: [number, number, number][];
}

/** A kernel's decode variant (split-KV + lse merge): taken for Nq <= maxNq over >= 2 splits. */
interface DecodeSpec {
  readonly maxNq: number;
  readonly splitKeys: number;
  readonly bindings: readonly KernelBinding[];
  readonly entryPoints: readonly KernelEntryPoint[];
  readonly wgsl: string;
  layout(e: Readonly<Record<string, number>>): DecodeLayout;
}

/** What the runtime needs of one kernel: its tables, its WGSL, and its \`resolve\`. */
interface KernelSpec {
  readonly kernelName: string;
  readonly schedule: { readonly dtype: string; readonly headDim: number; readonly subgroups?: boolean };
  readonly bindings: readonly KernelBinding[];
  readonly entryPoints: readonly KernelEntryPoint[];
  readonly uniformLayout: UniformLayout;
  readonly workgroupStorageBytes: number;
  readonly maxWorkgroupSize: number;
  readonly wgsl: string;
  /** Checks sizes, params, offsets and scale; evaluates shapes and grids; packs the uniforms. */
  resolve(o: object): Resolved;
  readonly decode?: DecodeSpec;
}`;
