// An emitted module with both WGSL engines on this machine's adapter: which engine engineFor()
// takes by default (coop expected on a GPU, row on lavapipe), and each engine's result against the
// float64 reference (document mask, GQA, Nq != Nk). Prints one JSON line; exit 1 on a mismatch.
//   npm run build && node scripts/with-gpu.mjs node bench/wgsl/engines.mjs [--out file.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { compile } from '../../dist/src/compile.js';
import { COOP_MODULE_TIERS } from '../../dist/src/codegen/emit-ts-engines.js';
import { compareArrays } from '../../dist/src/runtime/compare.js';
import { referenceAttention } from '../../dist/src/runtime/reference.js';
import { getDevice } from '../../dist/src/runtime/webgpu.js';
import { loadModuleWith } from './steady.mjs';

const source = readFileSync(new URL('../../stdlib/document.attn', import.meta.url), 'utf8');
const D = 64;
const row = compile(source, { target: 'wgsl', headDim: D, wgslEngine: 'row' }).artifact;
// The coop engine at each limit tier the CLI compiles modules for; createKernel takes the first
// the device meets (on the H200: the 48 KiB tier with the measured best knob set).
const coop = COOP_MODULE_TIERS.map(
  (limits) => compile(source, { target: 'wgsl', headDim: D, wgslEngine: 'coop', limits }).artifact,
);
const mod = await loadModuleWith(row, { alternate: coop });
const device = await getDevice();
const [B, H, Hkv, Nq, Nk] = [2, 4, 2, 45, 300];
const values = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
const doc = Int32Array.from({ length: Nk }, (_, i) => Math.floor(i / 23));
const q = values(B * H * Nq * D, 1);
const k = values(B * Hkv * Nk * D, 2);
const v = values(B * Hkv * Nk * D, 3);
const ref = referenceAttention(
  { q, k, v, B, Hq: H, Hkv, Nq, Nk, D, Dv: D },
  { mask: (_b, _h, qi, ki) => doc[qi] === doc[ki] && qi >= ki }, // qi: the query position
);
const result = {
  adapter: device.adapterInfo?.description ?? device.adapterInfo?.vendor,
  default: mod.engineFor(device),
  coopTiers: coop.map((a) => a.schedule),
};
let ok = true;
for (const engine of ['row', 'coop']) {
  const t0 = performance.now();
  const kernel = await mod.createKernel(device, { engine });
  result[`${engine}ReadyMs`] = performance.now() - t0;
  const res = await kernel.dispatch({ q, k, v, doc, sizes: { B, H, Hkv, Nq, Nk } });
  kernel.destroy();
  const err = Math.max(
    compareArrays(res.out, ref.out, ref.outScale).relError,
    compareArrays(res.lse, ref.lse, 1).relError,
  );
  result[engine] = err;
  if (!(err <= 1e-4)) console.log(engine, compareArrays(res.out, ref.out, ref.outScale), res.lse?.length);
  ok &&= err <= 1e-4;
}
console.log(JSON.stringify(result));
const i = process.argv.indexOf('--out');
if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(result, null, 2) + '\n');
process.exit(ok ? 0 : 1);
