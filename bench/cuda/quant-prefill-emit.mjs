// Writes the CUDA artifacts that bench/cuda/quant-prefill.py checks and times: prefill over
// quantized K/V caches beside the bf16 kernel, full and causal, D = 128, bf16 q/out, on the
// default sm_90a engine (wgmma-ws). Each quantized artifact is built with Schedule.quantPrefill
// 'staged' (src/codegen/cuda/quant-stage.ts), so one library holds both paths: `launch` (fused:
// the wgmma-ws producer converts every tile) and `launch_staged` (a dequant pass into a
// workspace, then the float twin), and `dequantize_kv` (the pass alone, timed on its own):
//   npm run build && node bench/cuda/quant-prefill-emit.mjs   → bench/build/cuda-quant-prefill/
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/cuda-quant-prefill');
mkdirSync(out, { recursive: true });

// The `store` statement of each K/V format; quant-prefill.py quantizes into the same layouts.
const formats = {
  bf16: '',
  int8: 'store kv int8 scale f32 per token',
  e4m3: 'store kv e4m3 scale f32 per token',
  int4: 'store kv int4 scale f32 per token',
  int2: 'store kv int2 scale f32 per token',
};
const masks = { full: '', causal: 'mask causal' };

const index = [];
for (const [fmt, store] of Object.entries(formats)) {
  for (const [mask, line] of Object.entries(masks)) {
    const name = `qp_${fmt}_${mask}`;
    const body = [store, line]
      .filter(Boolean)
      .map((l) => `  ${l}\n`)
      .join('');
    const { artifact, kernel } = compile(`attention ${name}() {\n${body}}`, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: fmt === 'bf16' ? {} : { quantPrefill: 'staged' },
    });
    writeFileSync(join(out, `${name}.cu`), artifact.code);
    const manifest = artifact.files[`${artifact.name}.json`];
    writeFileSync(join(out, `${name}.json`), manifest);
    const s = kernel.schedule;
    const staged = JSON.parse(manifest).staged;
    // bf16: one row; quantized: the fused path (its own blockK) and the staged one (the twin's).
    const modes =
      fmt === 'bf16'
        ? [['plain', s.blockK]]
        : [
            ['fused', staged.fusedBlockK],
            ['staged', s.blockK],
          ];
    for (const [mode, blockK] of modes)
      index.push({
        name: `${name}_${mode}`,
        fmt,
        mask,
        mode,
        engine: s.engine,
        blockK,
        manifest: `${name}.json`,
        variant: name,
      });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} entries (${Object.keys(formats).length * 2} artifacts) to ${out}`);
