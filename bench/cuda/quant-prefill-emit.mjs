// Writes the CUDA artifacts that bench/cuda/quant-prefill.py checks and times: prefill over
// quantized K/V caches (src/codegen/cuda/dequant-tile.ts) beside the bf16 kernel, full and causal,
// D = 128, bf16 q/out: the default sm_90a engine (wgmma-ws, pipelined producer), wgmma-ws with
// the serial producer (Schedule.wsDequant 'serial') and the wgmma engine for int8:
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
};
const masks = { full: '', causal: 'mask causal' };
// Engine variants: wgmma-ws with its pipelined producer (the default, Schedule.wsDequant) and with
// the serial one (one tile at a time: the state before the pipeline), and the wgmma engine.
const variants = [
  { tag: '', schedule: {} },
  { tag: '_serial', schedule: { engine: 'wgmma-ws', wsDequant: 'serial' }, quantOnly: true },
  { tag: '_wgmma', schedule: { engine: 'wgmma' }, formats: ['bf16', 'int8'] },
];

const index = [];
for (const [fmt, store] of Object.entries(formats)) {
  for (const [mask, line] of Object.entries(masks)) {
    for (const v of variants) {
      if (v.quantOnly && fmt === 'bf16') continue;
      if (v.formats && !v.formats.includes(fmt)) continue;
      const name = `qp_${fmt}_${mask}${v.tag}`;
      const body = [store, line]
        .filter(Boolean)
        .map((l) => `  ${l}\n`)
        .join('');
      const { artifact, kernel } = compile(`attention ${name}() {\n${body}}`, {
        target: 'cuda',
        headDim: 128,
        dtype: 'bf16',
        schedule: v.schedule,
      });
      writeFileSync(join(out, `${name}.cu`), artifact.code);
      writeFileSync(join(out, `${name}.json`), artifact.files[`${artifact.name}.json`]);
      const s = kernel.schedule;
      index.push({
        name,
        fmt,
        mask,
        engine: s.engine,
        dequant: fmt === 'bf16' || s.engine !== 'wgmma-ws' ? null : (s.wsDequant ?? 'pipelined'),
        blockK: s.blockK,
        manifest: `${name}.json`,
        variant: name,
      });
    }
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
