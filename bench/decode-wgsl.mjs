// WGSL decode mode, before/after: the same artifact run with decode 'never' (one invocation per
// query row) and 'auto' (split-KV + merge). Usage (after npm run build):
//   node scripts/with-gpu.mjs node bench/decode-wgsl.mjs [Nk] [H] [Hkv]
import { readFileSync } from 'node:fs';
import { compile } from '../dist/src/compile.js';
import { createKernel, deviceLimits, getDevice } from '../dist/src/runtime/webgpu.js';

const [Nk = 65536, H = 1, Hkv = 1] = process.argv.slice(2).map(Number);
const device = await getDevice();
for (const file of ['sliding_window', 'causal']) {
  const source = readFileSync(`stdlib/${file}.attn`, 'utf8');
  const { artifact } = compile(source, { target: 'wgsl', headDim: 64, limits: deviceLimits(device) });
  const D = 64;
  const fill = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const inputs = { q: fill(H * D), k: fill(Hkv * Nk * D), v: fill(Hkv * Nk * D), B: 1, H, Hkv, Nq: 1, Nk };
  const row = [];
  let ref;
  for (const mode of ['never', 'auto']) {
    const k = await createKernel(device, artifact, { decode: mode });
    let best = Infinity;
    let res;
    for (let i = 0; i < 5; i++) {
      res = await k.run(inputs);
      best = Math.min(best, res.gpuMs);
    }
    k.destroy();
    if (ref) {
      let err = 0;
      for (let i = 0; i < ref.out.length; i++) err = Math.max(err, Math.abs(ref.out[i] - res.out[i]));
      row.push(`max |diff| ${err.toExponential(2)}`);
    }
    ref = res;
    row.push(`${mode}: ${best.toFixed(2)} ms${res.decodeSplits ? ` (${res.decodeSplits} splits)` : ''}`);
  }
  console.log(`${file} Nq=1 Nk=${Nk} H=${H} Hkv=${Hkv} D=64: ${row.join(', ')}`);
}
