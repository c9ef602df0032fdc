// Steady-state timing of a WGSL artifact, the way an engine runs it: the inputs uploaded once, the
// launch bound once through the emitted module's prepare(), then `launches` encodes back to back in
// one command buffer; the time per launch is the wall time of that submit divided by `launches`.
//
// Why not runtime/webgpu.ts's run(): it uploads every input on every call (1 GiB of K and V for a
// 128K decode), so the GPU idles for ~350 ms between kernels of well under a millisecond and drops
// its clocks; on the H200 through Dawn that made the coop decode read 315 GB/s where the same
// kernel back to back reads ~1,700 (measured 2026-12-03: the first runs of a process were fast,
// every later one slow, whatever the knobs).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emitKernelModule } from '../../dist/src/codegen/emit-ts.js';
import { upload } from './inputs.mjs';

const dir = mkdtempSync(join(tmpdir(), 'attnc-steady-'));
let serial = 0;

/** The artifact's emitted JS module, imported (self-contained: it imports nothing). */
export async function loadModule(artifact) {
  return loadModuleWith(artifact, {});
}

/** As loadModule, with more of emitKernelModule's options (e.g. an alternate engine's artifact). */
export async function loadModuleWith(artifact, options) {
  const files = emitKernelModule(artifact, { ...options, lang: 'js' }).files;
  const name = Object.keys(files).find((f) => f.endsWith('.js'));
  const path = join(dir, `${serial++}-${name}`);
  writeFileSync(path, files[name]);
  return import(path);
}

/**
 * Milliseconds per launch of `artifact` on `inputs` ({ B, H, Hkv, Nq, Nk, q, k, v, tensors?,
 * params? }, f32 arrays as for runtime run()), best of `rounds` submits of `launches` launches.
 * Returns { ms, decodeSplits }.
 */
export async function steadyMs(device, artifact, inputs, { launches = 20, rounds = 3 } = {}) {
  const mod = await loadModule(artifact);
  const kernel = await mod.createKernel(device);
  const { B, H, Hkv, Nq, Nk } = inputs;
  const Dv = artifact.schedule.valueDim;
  const owned = [];
  const own = (b) => (owned.push(b), b);
  try {
    const args = {
      sizes: { B, H, Hkv, Nq, Nk },
      q: own(upload(device, inputs.q)),
      k: own(upload(device, inputs.k)),
      v: own(upload(device, inputs.v)),
      out: own(upload(device, new Float32Array(B * H * Nq * Dv))),
      lse: own(upload(device, new Float32Array(B * H * Nq))),
      ...(inputs.params && Object.keys(inputs.params).length ? { params: inputs.params } : {}),
    };
    for (const [name, data] of Object.entries(inputs.tensors ?? {})) args[name] = own(upload(device, data));
    await device.queue.onSubmittedWorkDone();
    const launch = kernel.prepare(args);
    try {
      let best = Infinity;
      for (let r = 0; r <= rounds; r++) {
        const n = r === 0 ? 2 : launches; // round 0 warms up (pipelines, clocks)
        const encoder = device.createCommandEncoder();
        for (let i = 0; i < n; i++) launch.encode(encoder);
        const t0 = performance.now();
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        if (r > 0) best = Math.min(best, (performance.now() - t0) / n);
      }
      return { ms: best, decodeSplits: launch.decodeSplits };
    } finally {
      launch.destroy();
    }
  } finally {
    for (const b of owned) b.destroy();
    kernel.destroy();
  }
}
