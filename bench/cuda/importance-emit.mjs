// Writes the CUDA artifacts that bench/cuda/importance.py checks and times: causal and sliding
// window, bf16 D = 128 (default sm_90a engines) and f32 D = 64 (SIMT), each without importance,
// with 'sum' and with 'normalized' (src/codegen/cuda/importance.ts):
//   npm run build && node bench/cuda/importance-emit.mjs   → bench/build/cuda-importance/
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/cuda-importance');
mkdirSync(out, { recursive: true });
const index = [];
for (const file of ['causal', 'sliding_window']) {
  for (const [dtype, D] of [
    ['bf16', 128],
    ['f32', 64],
  ]) {
    for (const importance of ['none', 'sum', 'normalized']) {
      const name = `${file}_${dtype}_d${D}_${importance}`;
      const source = readFileSync(join(root, 'stdlib', `${file}.attn`), 'utf8');
      const { artifact } = compile(source, {
        target: 'cuda',
        headDim: D,
        dtype,
        file: `${file}.attn`,
        ...(importance === 'none' ? {} : { importance }),
      });
      const rename = (s) =>
        s.replaceAll(`attnc_${file}`, `attnc_${name}`).replaceAll(`AttncArgs_${file}`, `AttncArgs_${name}`);
      writeFileSync(join(out, `${name}.cu`), rename(artifact.code));
      writeFileSync(join(out, `${name}.json`), rename(artifact.files[`${artifact.name}.json`]));
      index.push({ name, file, dtype, D, importance, manifest: `${name}.json`, variant: name });
    }
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
