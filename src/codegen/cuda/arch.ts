// The CUDA architectures attnc builds for, and what each can run. The schedule pass picks only
// the engines of the chosen arch (limits.engines); the header and manifest name it, and it is the
// `-arch` nvcc needs. sm_90a is Hopper with its arch-specific features (wgmma, TMA, setmaxnreg).
import type { Engine } from '../../ir/kernel.js';

export type CudaArch = 'sm_80' | 'sm_86' | 'sm_89' | 'sm_90a';

export interface CudaArchInfo {
  /** Opt-in dynamic shared memory per block (the launcher raises the 48 KiB default to it). */
  readonly maxSharedBytes: number;
  /** Engines in preference order: warpgroup MMA needs sm_90a; mma.sync runs on sm_80 and later. */
  readonly engines: readonly Engine[];
}

export const cudaArchs: Readonly<Record<CudaArch, CudaArchInfo>> = {
  // A100: 163 KiB per block; RTX 30xx (sm_86) and 40xx / L4 / L40 (sm_89): 99 KiB.
  sm_80: { maxSharedBytes: 163 * 1024, engines: ['mma', 'simt'] },
  sm_86: { maxSharedBytes: 99 * 1024, engines: ['mma', 'simt'] },
  sm_89: { maxSharedBytes: 99 * 1024, engines: ['mma', 'simt'] },
  sm_90a: { maxSharedBytes: 227 * 1024, engines: ['wgmma-ws', 'wgmma', 'mma', 'simt'] },
};

export const defaultCudaArch: CudaArch = 'sm_90a';

export function isCudaArch(x: unknown): x is CudaArch {
  return typeof x === 'string' && Object.hasOwn(cudaArchs, x);
}

/** The arch of a compute capability (torch.cuda.get_device_capability()), or undefined. */
export function archOfCapability(major: number, minor: number): CudaArch | undefined {
  const cc = major * 10 + minor;
  if (cc >= 90) return cc === 90 ? 'sm_90a' : undefined;
  if (cc >= 89) return 'sm_89';
  if (cc >= 86) return 'sm_86';
  if (cc >= 80) return 'sm_80';
  return undefined;
}
