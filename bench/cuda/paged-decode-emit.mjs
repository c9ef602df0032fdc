// Writes the CUDA artifacts bench/cuda/paged-decode.py checks and times: causal decode over a
// contiguous cache beside the same kernel over paged caches (pages of 16, 64 and 256 rows), for a
// bf16 cache, an int8 one and a symmetric int4 one (f16 scale per token), D = 128. Each artifact is one kernel name
// (bf16_contiguous, bf16_paged16, ..., int8_paged256); index.json lists them with their page size,
// cache kind and the nvcc -D variants the bench builds (the paged ones also with
// ATTNC_KV_PAGE_ONCE=0: K, V and scale fetches each looking their page ids up, as before round 31,
// for a same-process comparison; ATTNC_KV_PAGE_RUNS=0, the round-6 per-row lookup, and
// ATTNC_DEC_MMA=0, the SIMT split kernel, were compared in rounds 7 and 15).
//   npm run build && node bench/cuda/paged-decode-emit.mjs   → bench/build/cuda-paged/{name}.{cu,json}
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const imp = (p) => import(pathToFileURL(join(root, 'dist/src', p)).href);
const { compile } = await imp('compile.js');
const { mmaQuantOf } = await imp('codegen/cuda/decode-mma-quant.js');
const { mmaTokenIntOf } = await imp('codegen/cuda/decode-mma-tokint.js');
const out = join(root, 'bench/build/cuda-paged');
mkdirSync(out, { recursive: true });
const stores = {
  bf16: '',
  int8: 'store kv int8 scale f16 per token',
  int4: 'store kv int4 scale f16 per token', // symmetric (decode-mma-tokint.ts, round 35)
};
const pages = [0, 16, 64, 256];
const index = [];
for (const [cache, store] of Object.entries(stores))
  for (const page of pages) {
    const name = `${cache}_${page ? `paged${page}` : 'contiguous'}`;
    const body = [page ? `cache paged ${page}` : '', store, 'mask causal'].filter((l) => l);
    const source = `attention ${name}() {\n${body.map((l) => `  ${l}\n`).join('')}}\n`;
    const { artifact, kernel } = compile(source, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      arch: 'sm_90a',
    });
    const code = artifact.code;
    if (!code.includes('namespace dec {')) throw new Error(`${name}: no decode path`);
    // Whether the tensor-core decode takes this cache (else the SIMT split kernel runs it).
    const mma = cache === 'bf16' || mmaQuantOf(kernel) !== undefined || mmaTokenIntOf(kernel) !== undefined;
    writeFileSync(join(out, `${name}.cu`), code);
    writeFileSync(join(out, `${name}.json`), artifact.files[`${artifact.name}.json`]);
    const lookup = page ? 'once, one base' : '';
    const variants = [{ variant: name, defines: [], lookup, mma }];
    // Every row through row() instead of a run's one base (-DATTNC_KV_PAGE_BASE=0, round 31's default).
    if (page)
      variants.push({
        variant: `${name}__rows`,
        defines: ['-DATTNC_KV_PAGE_BASE=0'],
        lookup: 'once, rows',
        mma,
      });
    // Each fetch looking its page ids up, as before round 31 (-DATTNC_KV_PAGE_ONCE=0).
    if (page)
      variants.push({
        variant: `${name}__separate`,
        defines: ['-DATTNC_KV_PAGE_ONCE=0'],
        lookup: 'separate',
        mma,
      });
    for (const v of variants)
      index.push({ name: v.variant, source: name, cache, page, manifest: `${name}.json`, ...v });
  }
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
const artifacts = pages.length * Object.keys(stores).length;
console.log(`wrote ${index.length} builds of ${artifacts} artifacts to ${out}`);
