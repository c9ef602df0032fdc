// Writes the CUDA artifacts bench/cuda/paged-decode.py checks and times: contiguous causal decode
// (stdlib/causal.attn) beside the paged one (stdlib/paged-decode.attn, pages of 16, and the same
// kernel with pages of 64), bf16, D = 128.
//   npm run build && node bench/cuda/paged-decode-emit.mjs   → bench/build/cuda-paged/{name}.{cu,json}
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/cuda-paged');
mkdirSync(out, { recursive: true });
const paged = readFileSync(join(root, 'stdlib/paged-decode.attn'), 'utf8');
const variants = [
  { name: 'contiguous', page: 0, source: readFileSync(join(root, 'stdlib/causal.attn'), 'utf8') },
  { name: 'paged16', page: 16, source: paged },
  { name: 'paged64', page: 64, source: paged.replace('cache paged 16', 'cache paged 64') },
];
const index = [];
for (const v of variants) {
  const { artifact } = compile(v.source, { target: 'cuda', headDim: 128, dtype: 'bf16', arch: 'sm_90a' });
  const rename = (s) =>
    s
      .replaceAll(`attnc_${artifact.name}`, `attnc_${v.name}`)
      .replaceAll(`AttncArgs_${artifact.name}`, `AttncArgs_${v.name}`);
  writeFileSync(join(out, `${v.name}.cu`), rename(artifact.code));
  writeFileSync(join(out, `${v.name}.json`), rename(artifact.files[`${artifact.name}.json`]));
  index.push({ name: v.name, page: v.page, manifest: `${v.name}.json`, variant: v.name });
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
