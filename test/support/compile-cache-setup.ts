// vitest global setup: one fresh compile cache per run (see compile-cache.ts), removed after it.
// Test workers inherit ATTNC_COMPILE_CACHE; a directory the caller names is used as is and kept.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  if (process.env.ATTNC_COMPILE_CACHE) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'attnc-compile-cache-'));
  process.env.ATTNC_COMPILE_CACHE = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
