// Compile a custom mask from a string and run it on WebGPU from Node, then check it against the
// dense reference. Run: npm run build && node scripts/with-gpu.mjs node examples/custom-mask.mjs
import { parseArgs } from 'node:util';
import { compile } from '../dist/src/index.js';
import {
  compareArrays,
  createKernel,
  declPredicates,
  deviceLimits,
  getDevice,
  referenceAttention,
} from '../dist/src/runtime/index.js';

const source = `
// Causal attention over the last 64 tokens, plus every 16th token (a "landmark" stride).
attention strided_local(window: int = 64, stride: int = 16) {
  mask causal && (q - k < window || k % stride == 0)
}`;

try {
  parseArgs({ options: {} }); // no flags: one given would otherwise be ignored without a word
} catch (e) {
  console.error(
    `custom-mask.mjs: ${e.message.split('\n')[0]} (usage: node examples/custom-mask.mjs; edit its source to try another mask)`,
  );
  process.exit(2);
}

const device = await getDevice();
const { artifact, decl } = compile(source, { target: 'wgsl', headDim: 32, limits: deviceLimits(device) });
const kernel = await createKernel(device, artifact);

const [B, H, Hkv, Nq, Nk, D] = [1, 2, 1, 300, 300, 32];
const rand = (n) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const q = rand(B * H * Nq * D);
const k = rand(B * Hkv * Nk * D);
const v = rand(B * Hkv * Nk * D);
const { out, lse, gpuMs } = await kernel.run({ q, k, v, B, H, Hkv, Nq, Nk, params: { window: 64 } });

const params = { window: 64, stride: 16 };
const pred = declPredicates(decl.decl, { params, tensors: {}, sizes: { B, H, Hkv, Nq, Nk, D } });
const ref = referenceAttention({ q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D }, pred);
const err = compareArrays(out, ref.out, ref.outScale);
console.log(
  `${artifact.name}: relative error ${err.relError.toExponential(2)} (lse ${compareArrays(lse, ref.lse, 1).relError.toExponential(2)}), ${gpuMs?.toFixed(2)} ms`,
);
kernel.destroy();
process.exit(err.relError <= 1e-5 ? 0 : 1);
