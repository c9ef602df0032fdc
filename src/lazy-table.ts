// A record of modules that an entry point loads one way or another: `compile` fills such a table
// with static imports, attnc/wgsl/async's `compileAsync` with import() the first time a program
// needs an entry, so that bundlers split each into a chunk. Both tables of this kind, the WGSL
// code generators (codegen/wgsl/features.ts) and the front end's statements and messages
// (dsl/front-features.ts), load through this one loader.

/** How each entry of `T` is loaded. */
export type TableLoaders<T> = { readonly [K in keyof T]: () => Promise<T[K]> };

export interface LazyTable<T> {
  /** The entries loaded so far. */
  readonly loaded: Partial<T>;
  /** Loads those of `names` not loaded yet; rejects naming an entry that fails to load. */
  readonly load: (names: readonly (keyof T)[]) => Promise<void>;
}

/** `describe(name)` says what an entry is, for the error when its chunk fails to load. */
export function lazyTable<T>(loaders: TableLoaders<T>, describe: (name: keyof T) => string): LazyTable<T> {
  const loaded: { -readonly [K in keyof T]?: T[K] } = {};
  async function loadOne<K extends keyof T>(name: K): Promise<void> {
    try {
      loaded[name] = await loaders[name]();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new Error(`attnc/wgsl/async: could not load ${describe(name)}: ${reason}`, { cause: e });
    }
  }
  const load = async (names: readonly (keyof T)[]): Promise<void> => {
    await Promise.all(names.filter((n) => loaded[n] === undefined).map((n) => loadOne(n)));
  };
  return { loaded, load };
}
