// The backends, by target name: each a renderer plus its workgroup-memory footprint function
// (the schedule pass fits tile sizes to the device with it).
import type { Schedule } from '../ir/kernel.js';
import type { Target } from '../ir/passes/legalize.js';
import type { Backend } from './artifact.js';
import { cudaBackend, cudaSharedBytes } from './cuda/index.js';
import { wgslBackend, wgslWorkgroupBytes } from './wgsl/index.js';

export interface TargetBackend {
  readonly render: Backend;
  readonly footprint: (s: Schedule) => number;
}

export const targets: Readonly<Record<Target, TargetBackend>> = {
  wgsl: { render: wgslBackend, footprint: wgslWorkgroupBytes },
  cuda: { render: cudaBackend, footprint: cudaSharedBytes },
};
