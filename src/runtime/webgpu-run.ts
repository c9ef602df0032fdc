// One run of a WGSL kernel (webgpu.ts's run()): its inputs validated, buffers made, the passes
// encoded and submitted, the results read back, and every buffer freed, error scopes closed.
import type { Artifact } from '../codegen/artifact.js';
import { evalShapeExpr, type ShapeEnv } from './shape-expr.js';
import { InputError, validateRun, type RunInputs } from './validate.js';
import { encodeRun, readResults, runBuffers, type MakeBuffer } from './webgpu-launch.js';
import type { RunResult } from './webgpu.js';

/** One WGSL module's pipelines (the main module or its decode variant), under one layout. */
export interface CompiledModule {
  readonly bindGroupLayout: GPUBindGroupLayout;
  readonly pipelines: readonly GPUComputePipeline[];
}

/** What every run of one kernel shares. */
export interface RunContext {
  readonly device: GPUDevice;
  /** The kernel's name for messages (the decode variant's artifact has its own). */
  readonly kernelName: string;
  /** Poison outputs and return summaries (KernelOptions.debug). */
  readonly debug: boolean;
  /** The device has timestamp-query: gpuMs from timestamps rather than wall time. */
  readonly timestamps: boolean;
}

/** Runs `art` (compiled as `compiled`) once on `inputs`; decodeSplits is set when it is the decode variant. */
export async function launchOnce(
  ctx: RunContext,
  art: Artifact,
  compiled: CompiledModule,
  inputs: RunInputs,
  decodeSplits: number | undefined,
): Promise<RunResult> {
  const r = validateRun(art, inputs);
  const grids = launchGrids(ctx.device, art, r.env);
  const owned: GPUBuffer[] = [];
  const make: MakeBuffer = (label, size, usage) => {
    const buf = ctx.device.createBuffer({ label, size, usage });
    owned.push(buf);
    return buf;
  };
  let scopes = 0;
  try {
    ctx.device.pushErrorScope('validation');
    ctx.device.pushErrorScope('out-of-memory');
    scopes = 2;
    const rb = runBuffers(ctx.device, art, r, inputs, ctx.debug, make);
    const { commands, querySet, stamps } = encodeRun(
      ctx.device,
      art,
      ctx.kernelName,
      compiled,
      grids,
      rb,
      ctx.timestamps ? make : undefined,
    );
    const t0 = performance.now();
    ctx.device.queue.submit([commands]);
    scopes = 0;
    const oom = await ctx.device.popErrorScope();
    const invalid = await ctx.device.popErrorScope();
    if (oom || invalid) throw new Error(`kernel "${ctx.kernelName}": ${(invalid ?? oom)!.message}`);
    await Promise.all([...rb.readbacks.map((x) => x.dst.mapAsync(1)), stamps?.mapAsync(1)]);
    const wallMs = performance.now() - t0;
    querySet?.destroy();
    return readResults(rb.readbacks, stamps, wallMs, decodeSplits);
  } finally {
    // A throw while encoding leaves our error scopes open; close them so later calls are unaffected.
    for (; scopes > 0; scopes--) void ctx.device.popErrorScope();
    for (const b of owned) b.destroy();
  }
}

/** Each entry point's workgroup grid; sizes past the device's per-dimension limit are bad inputs. */
function launchGrids(device: GPUDevice, artifact: Artifact, env: ShapeEnv): [number, number, number][] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const grids = artifact.entryPoints.map(
    (ep) => ep.grid.map((g) => evalShapeExpr(g, env)) as [number, number, number],
  );
  const issues = grids.flatMap((grid, i) =>
    grid.some((g) => g > max)
      ? [
          `${artifact.entryPoints[i]!.name}: grid [${grid.join(', ')}] exceeds ${max} workgroups per dimension`,
        ]
      : [],
  );
  if (issues.length) throw new InputError(issues);
  return grids;
}
