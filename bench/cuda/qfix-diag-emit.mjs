// Emits the variants bench/cuda/qfix-diag.sh checks on the GPU, one suspect removed in each, to
// find why qp_int8_full (wgmma-ws, quantized K/V producer) stops with an illegal instruction:
// the producer's setmaxnreg budget (40 → 56 / 80 with the consumers lowered so 128·(p + 2c) ≤ 64K),
// setmaxnreg off, the serial converter, the wgmma engine, and the bf16 kernel as a control.
//   npx tsc -p tsconfig.json && node bench/cuda/qfix-diag-emit.mjs   → bench/build/qfix-diag/
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const out = join(root, 'bench/build/qfix-diag');
mkdirSync(out, { recursive: true });

const stores = {
  bf16: '',
  int8: 'store kv int8 scale f32 per token',
  e4m3: 'store kv e4m3 scale f32 per token',
  int4: 'store kv int4 scale f32 per token',
};
/** Rewrites of the emitted code: the producer/consumer setmaxnreg budgets. */
const regs = (p, c) => (code) => {
  const next = code
    .replace(/regs_dec<\d+>\(\);/g, `regs_dec<${p}>();`)
    .replace(/regs_inc<\d+>\(\);/g, `regs_inc<${c}>();`);
  if (next === code) throw new Error('no setmaxnreg to rewrite');
  return next;
};
const noRegs = (code) => {
  const next = code.replace(/regs_(dec|inc)<\d+>\(\);/g, '/* setmaxnreg removed */');
  if (next === code) throw new Error('no setmaxnreg to remove');
  return next;
};
const same = (code) => code;
// [fmt, mask, tag, schedule, rewrite]
const variants = [
  ['bf16', 'full', 'orig', {}, same],
  ['int8', 'full', 'orig', {}, same],
  ['int8', 'full', 'reg56', {}, regs(56, 224)],
  ['int8', 'full', 'reg80', {}, regs(80, 216)],
  ['int8', 'full', 'noreg', {}, noRegs],
  ['int8', 'full', 'serial', { engine: 'wgmma-ws', wsDequant: 'serial' }, same],
  ['int8', 'full', 'serial_reg80', { engine: 'wgmma-ws', wsDequant: 'serial' }, regs(80, 216)],
  ['int8', 'full', 'wgmma', { engine: 'wgmma' }, same],
  ['int8', 'causal', 'orig', {}, same],
  ['int8', 'causal', 'reg80', {}, regs(80, 216)],
  ['e4m3', 'full', 'orig', {}, same],
  ['e4m3', 'full', 'reg80', {}, regs(80, 216)],
  ['int4', 'full', 'orig', {}, same],
  ['int4', 'full', 'reg80', {}, regs(80, 216)],
];
const index = [];
for (const [fmt, mask, tag, schedule, rewrite] of variants) {
  const name = `qp_${fmt}_${mask}`;
  const variant = `${name}_${tag}`;
  const body = [stores[fmt], mask === 'causal' ? 'mask causal' : '']
    .filter(Boolean)
    .map((l) => `  ${l}\n`)
    .join('');
  const { artifact, kernel } = compile(`attention ${name}() {\n${body}}`, {
    target: 'cuda',
    headDim: 128,
    dtype: 'bf16',
    schedule,
  });
  writeFileSync(join(out, `${variant}.cu`), rewrite(artifact.code));
  writeFileSync(join(out, `${variant}.json`), artifact.files[`${artifact.name}.json`]);
  const s = kernel.schedule;
  index.push({
    name: variant,
    fmt,
    mask,
    engine: s.engine,
    blockK: s.blockK,
    manifest: `${variant}.json`,
    variant,
  });
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} variants to ${out}`);
