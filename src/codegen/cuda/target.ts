import type { TargetBackend } from '../target.js';
import { cudaBackend, cudaSharedBytes } from './index.js';

export const cudaTarget: TargetBackend = {
  render: (kernel, meta) => cudaBackend(kernel, meta),
  footprint: cudaSharedBytes,
};
