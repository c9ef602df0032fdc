// Writes the CUDA artifacts that bench/cuda/int8qk.py checks and times: `qk int8 smooth k`
// (SageAttention-style int8 Q·Kᵀ, docs/LANGUAGE.md "INT8 Q·Kᵀ") beside the bf16 default, full and
// causal, D = 128, bf16 storage. The int8 kernels run on the SIMT engine (the only one that
// implements the statement so far); their blockQ / blockK are the quantization blocks, recorded
// in index.json so the Python side can evaluate the same definition in torch:
//   npm run build && node bench/cuda/int8qk-emit.mjs   → bench/build/cuda-int8qk/
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/cuda-int8qk');
mkdirSync(out, { recursive: true });

const variants = { bf16: '', int8: 'qk int8 smooth k' };
const masks = { full: '', causal: 'mask causal' };
const index = [];
for (const [qk, stmt] of Object.entries(variants)) {
  for (const [mask, line] of Object.entries(masks)) {
    const name = `iq_${qk}_${mask}`;
    const body = [stmt, line]
      .filter(Boolean)
      .map((l) => `  ${l}\n`)
      .join('');
    const { artifact, kernel } = compile(`attention ${name}() {\n${body}}`, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
    });
    writeFileSync(join(out, `${name}.cu`), artifact.code);
    writeFileSync(join(out, `${name}.json`), artifact.files[`${artifact.name}.json`]);
    const s = kernel.schedule;
    index.push({
      name,
      variant: name,
      manifest: `${name}.json`,
      qk,
      mask,
      engine: s.engine,
      blockQ: s.blockQ,
      blockK: s.blockK,
      smoothK: kernel.qkInt8?.smoothK ?? null,
    });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
