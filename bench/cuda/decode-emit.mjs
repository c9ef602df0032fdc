// Writes the CUDA artifacts that bench/cuda/decode.py checks and times (decode mode, split-KV):
//   npm run build && node bench/cuda/decode-emit.mjs   → bench/build/cuda-decode/{name}.{cu,json}
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/cuda-decode');
mkdirSync(out, { recursive: true });
const index = [];
for (const file of ['full', 'causal', 'sliding_window', 'softcap']) {
  for (const [dtype, D] of [
    ['bf16', 128],
    ['f32', 64],
  ]) {
    const name = `${file}_${dtype}_d${D}`;
    const source = readFileSync(join(root, 'stdlib', `${file}.attn`), 'utf8');
    const { artifact } = compile(source, { target: 'cuda', headDim: D, dtype, file: `${file}.attn` });
    const rename = (s) =>
      s.replaceAll(`attnc_${file}`, `attnc_${name}`).replaceAll(`AttncArgs_${file}`, `AttncArgs_${name}`);
    writeFileSync(join(out, `${name}.cu`), rename(artifact.code));
    writeFileSync(join(out, `${name}.json`), rename(artifact.files[`${artifact.name}.json`]));
    index.push({ name, file, dtype, D, manifest: `${name}.json`, variant: name });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
