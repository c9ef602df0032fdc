// Environment that lets the `webgpu` package (Dawn) find an adapter on a machine without a GPU:
// the project-local Mesa lavapipe written by scripts/setup-lavapipe.sh. Shared by with-gpu.mjs
// (tests, demo) and anything else that spawns Dawn.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Returns env additions for lavapipe, or {} if the project-local Mesa is not present. */
export function lavapipeEnv() {
  const gpu = join(projectRoot, '.gpu');
  const icd = join(gpu, 'lvp_icd.json');
  if (!existsSync(icd)) return {};
  const lib = join(gpu, 'mesa/usr/lib/x86_64-linux-gnu');
  const runtimeDir = process.env.XDG_RUNTIME_DIR ?? join(gpu, 'xdg-runtime');
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  return {
    VK_ICD_FILENAMES: icd,
    VK_DRIVER_FILES: icd,
    LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    XDG_RUNTIME_DIR: runtimeDir,
  };
}
