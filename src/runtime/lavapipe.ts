// Where `attnc doctor --install-lavapipe` puts a Mesa lavapipe (a CPU Vulkan driver Dawn accepts:
// Mesa ≥ 24) and the environment that points the Vulkan loader at it. The runtime (device.ts)
// falls back to it when a Node process finds no adapter, so an installed package works on a
// headless box without the repository's scripts. Node-only pieces are imported lazily: browser
// bundles of the runtime must not see node:fs.

/** The ICD manifest's file name inside the lavapipe folder. */
export const LAVAPIPE_ICD = 'lvp_icd.json';

/**
 * The per-user lavapipe folder: $ATTNC_LAVAPIPE_DIR, else $XDG_CACHE_HOME/attnc/lavapipe, else
 * ~/.cache/attnc/lavapipe.
 */
export function lavapipeDir(env: Readonly<Record<string, string | undefined>>, home: string): string {
  if (env.ATTNC_LAVAPIPE_DIR) return env.ATTNC_LAVAPIPE_DIR;
  const cache = env.XDG_CACHE_HOME || `${home}/.cache`;
  return `${cache}/attnc/lavapipe`;
}

/**
 * The variables that make the Vulkan loader use the lavapipe in `dir` (its ICD file exists), or
 * undefined when the caller already chose drivers (VK_DRIVER_FILES / VK_ICD_FILENAMES set).
 * XDG_RUNTIME_DIR: Mesa's WSI complains on stderr without one.
 */
export function lavapipeEnv(
  dir: string,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> | undefined {
  if (env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES) return undefined;
  const icd = `${dir}/${LAVAPIPE_ICD}`;
  return {
    VK_DRIVER_FILES: icd,
    VK_ICD_FILENAMES: icd,
    ...(env.XDG_RUNTIME_DIR ? {} : { XDG_RUNTIME_DIR: `${dir}/xdg-runtime` }),
  };
}

/**
 * Node only: points this process's Vulkan loader at the per-user lavapipe when it is installed
 * and the environment names no drivers. Returns whether it did (then a new `webgpu` instance
 * sees the lavapipe adapter: the loader reads these variables when an instance is created).
 */
export async function useInstalledLavapipe(): Promise<boolean> {
  const fsName = 'node:fs';
  const osName = 'node:os';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  const os = (await import(/* @vite-ignore */ osName)) as typeof import('node:os');
  const dir = lavapipeDir(process.env, os.homedir());
  const vars = lavapipeEnv(dir, process.env);
  if (!vars || !fs.existsSync(`${dir}/${LAVAPIPE_ICD}`)) return false;
  if (vars.XDG_RUNTIME_DIR) fs.mkdirSync(vars.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  Object.assign(process.env, vars);
  return true;
}
