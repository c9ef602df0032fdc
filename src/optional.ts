// Optional peer dependencies (package.json peerDependenciesMeta): `webgpu` (Dawn, to run kernels
// from Node; ~130 MB for five platforms) and `prettier` (to format emitted modules). attnc loads
// them only when a caller needs them, and names the package to add when it is missing.

/** A feature needs an optional package that is not installed. */
export class MissingDependencyError extends Error {
  constructor(
    readonly pkg: string,
    purpose: string,
  ) {
    super(`${purpose} needs the optional package \`${pkg}\`: install it with \`npm install ${pkg}\``);
    this.name = 'MissingDependencyError';
  }
}

function isMissingModule(e: unknown, pkg: string): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  const msg = e instanceof Error ? e.message : '';
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && msg.includes(`'${pkg}`);
}

/** Imports `load()`, turning "cannot find package `pkg`" into a MissingDependencyError. */
export async function importOptional<T>(pkg: string, purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (isMissingModule(e, pkg)) throw new MissingDependencyError(pkg, purpose);
    throw e;
  }
}
