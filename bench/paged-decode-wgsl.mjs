// WGSL decode over a paged K/V cache vs a contiguous one (issue #10 item 6: "paged within 5% of
// contiguous"): B = 4, H = 32, Hkv = 8, D = 128, one query, row and coop engines, pages of 16 and
// 64 rows (FlashInfer HND pages in a shuffled block table). Correctness first, in the same process:
// each kernel at Nk = 600 against the reference over the logical K/V; then the timing at Nk.
// Usage (after npm run build): node bench/paged-decode-wgsl.mjs [Nk=32768] [repeats=10]
// Writes $OUT/paged-decode-wgsl.json when OUT is set. Runs in about a minute on the H200.
import { writeFileSync } from 'node:fs';
import { compile } from '../dist/src/compile.js';
import { compareArrays } from '../dist/src/runtime/compare.js';
import { rng } from '../dist/src/runtime/inputs.js';
import { randomPagedRun } from '../dist/src/runtime/kv-rows.js';
import { referenceAttention } from '../dist/src/runtime/reference.js';
import { createKernel, deviceLimits, getDevice } from '../dist/src/runtime/webgpu.js';

const [Nk = 32768, repeats = 10] = process.argv.slice(2).map(Number);
const B = 4,
  H = 32,
  Hkv = 8,
  D = 128;
const device = await getDevice();
const rows = [];
for (const engine of ['row', 'coop'])
  for (const page of [0, 16, 64]) {
    const source = page ? `attention paged() {\n  cache paged ${page}\n}\n` : 'attention contiguous() {\n}\n';
    const { artifact } = compile(source, {
      target: 'wgsl',
      headDim: D,
      limits: deviceLimits(device),
      wgslEngine: engine,
    });
    const gpu = await createKernel(device, artifact, { decode: 'always' });
    const name = `${engine} ${page ? `paged ${page}` : 'contiguous'}`;
    try {
      const check = await run(gpu, page, 600, 1, true);
      const t = await run(gpu, page, Nk, repeats, false);
      rows.push({ engine, page, ok: check.ok, rel: check.rel, ms: t.ms, bytes: t.bytes });
      console.log(
        `${name.padEnd(18)} check ${check.ok ? 'ok' : 'FAILED'} (rel ${check.rel.toExponential(2)})  ` +
          `${t.ms.toFixed(3)} ms  ${(t.bytes / t.ms / 1e6).toFixed(1)} GB/s`,
      );
    } catch (e) {
      rows.push({ engine, page, error: e.message });
      console.log(`${name.padEnd(18)} error: ${e.message}`);
    } finally {
      gpu.destroy();
    }
  }
for (const r of rows) {
  const base = rows.find((x) => x.engine === r.engine && x.page === 0);
  if (r.page && base?.ms && r.ms)
    console.log(`${r.engine} paged ${r.page}: ${((r.ms / base.ms - 1) * 100).toFixed(1)}% vs contiguous`);
}
if (process.env.OUT)
  writeFileSync(
    `${process.env.OUT}/paged-decode-wgsl.json`,
    JSON.stringify({ B, H, Hkv, D, Nk, rows }, null, 2),
  );

/** One decode call (f32 caches); with `check`, compared with the reference over the logical K/V. */
async function run(gpu, page, n, times, check) {
  const rand = rng(n);
  const fill = (len) => Float32Array.from({ length: len }, () => rand() * 2 - 1);
  const q = fill(B * H * D);
  const k = fill(B * Hkv * n * D);
  const v = fill(B * Hkv * n * D);
  const s = { B, Hkv, Nk: n, D, Dv: D };
  const paged = page ? randomPagedRun({ k, v }, s, page, rand) : undefined;
  const inputs = {
    q,
    k: paged?.k ?? k,
    v: paged?.v ?? v,
    B,
    H,
    Hkv,
    Nq: 1,
    Nk: n,
    ...(paged ? { kvCache: paged.kvCache } : {}),
  };
  let ms = Infinity;
  let res;
  for (let i = 0; i < times; i++) {
    res = await gpu.run(inputs);
    ms = Math.min(ms, res.gpuMs ?? Infinity);
  }
  const bytes = 4 * (2 * B * H * D + 2 * B * Hkv * n * D);
  if (!check) return { ms, bytes };
  const ref = referenceAttention({ q, k, v, B, Hq: H, Hkv, Nq: 1, Nk: n, D, Dv: D }, {});
  const agree = compareArrays(res.out, ref.out, ref.outScale);
  return { ok: agree.relError <= 1e-5 && agree.nanCount === 0, rel: agree.relError, ms, bytes };
}
