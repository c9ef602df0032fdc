// Emits the variants bench/cuda/qfix-diag.sh checks on the GPU, to confirm why qp_int8_full
// (wgmma-ws, pipelined quantized K/V producer) stopped with an illegal instruction on main: its Q
// load was the 3-D TMA on the 4-D Q map. `fixed`: this branch's code; `bug3d`: main's Q load put
// back (expected to fault), also with other producer setmaxnreg budgets (40 → 80, or none: not the
// cause); the serial producer and the wgmma engine (never had it) and the bf16 kernel as controls.
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
/** The bug as main had it: the pipelined producer's Q load by the 3-D helper on the 4-D Q map. */
const bug3d = (code) => {
  const next = code.replace(
    /tma_kv_panels<D, BQ>\(Qs, tmq, q0, h, b, qbar\)/,
    'tma_panels<D, BQ>(Qs, tmq, q0, b * a.H + h, qbar)',
  );
  if (next === code) throw new Error('no 4-D Q load to rewrite');
  return next;
};
const both = (f, g) => (code) => g(f(code));
// [fmt, mask, tag, schedule, rewrite]: `fixed` is this branch's code (Q by the 4-D load).
const variants = [
  ['bf16', 'full', 'orig', {}, same],
  ['int8', 'full', 'fixed', {}, same],
  ['int8', 'full', 'bug3d', {}, bug3d],
  ['int8', 'full', 'bug3d_reg80', {}, both(bug3d, regs(80, 216))],
  ['int8', 'full', 'bug3d_noreg', {}, both(bug3d, noRegs)],
  ['int8', 'full', 'fixed_reg56', {}, regs(56, 224)],
  ['int8', 'full', 'serial', { engine: 'wgmma-ws', wsDequant: 'serial' }, same],
  ['int8', 'full', 'wgmma', { engine: 'wgmma' }, same],
  ['int8', 'causal', 'fixed', {}, same],
  ['e4m3', 'full', 'fixed', {}, same],
  ['int4', 'full', 'fixed', {}, same],
  ['e4m3', 'causal', 'fixed', {}, same],
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
