// Where the attnc package itself lies: for --version, and to point at its stdlib when a user
// outside the repository types the README's `stdlib/…` paths.
import { readFileSync } from 'node:fs';

/**
 * The folder of the nearest package.json named attnc above this file: dist/src/cli (tsc) and
 * dist/cli or dist/cli/chunks (the bundled executable) sit at different depths.
 */
export function packageRoot(): { dir: URL; version: string } | undefined {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as Record<string, unknown>;
      if (pkg.name === 'attnc') return { dir, version: String(pkg.version) };
    } catch {
      // no (readable) package.json here: look one folder up
    }
    if (dir.pathname === '/') return undefined;
  }
}
