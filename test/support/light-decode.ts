// The coop decode module with fewer invocations, for WebGPU tests whose point is not its knobs
// (strided and paged K/V, wide code loads, emitted modules). Lavapipe's LLVM compile of the
// split entry point depends on the knobs through loops it unrolls: over the lane groups (the
// groups' (m, l, acc) combine) and over the workgroup's share of cooperative loads (fewer
// invocations, more of it each). Measured on a cold Mesa cache (CPU s, docs/TESTING-TIME.md, round
// 25): D = 16, 4 lanes: 64 invocations ~10–18, 16 ~4–5; 2 lanes: 64 10.2, 16 7.1, 8 13.0; one lane
// (quantized caches at small D): no better below 64. So: 4 lane groups, at least 16 invocations,
// one lane left as rendered. Only the constant block changes (retuneCoopDecode); the code, the
// lanes, chunk, rows, splits and merge stay those rendered, and decode-coop.test.ts runs the
// default knobs too.
import type { Artifact } from '../../src/codegen/artifact.js';
import { renderedCoopDecodeTuning, retuneCoopDecode } from '../../src/codegen/wgsl/decode-coop.js';

/** Lane groups per split workgroup: still several, so the groups' (m, l, acc) combine runs. */
export const LIGHT_DECODE_GROUPS = 4;

/** `artifact` with its coop decode module at max(16, 4 × lanes) invocations, if fewer than now. */
export function lightCoopDecode(artifact: Artifact): Artifact {
  const decode = artifact.decode;
  if (!decode?.coop) return artifact;
  const t = renderedCoopDecodeTuning(decode);
  if (t.lanes < 2) return artifact;
  const threads = Math.min(t.threads, Math.max(16, LIGHT_DECODE_GROUPS * t.lanes));
  if (threads === t.threads) return artifact;
  return { ...artifact, decode: retuneCoopDecode(decode, { ...t, threads }) };
}
