// Writes the CUDA artifacts that bench/cuda/int8qk.py checks and times: `qk int8 smooth k`
// (SageAttention-style int8 Q·Kᵀ, docs/LANGUAGE.md "INT8 Q·Kᵀ") beside the bf16 default, full and
// causal, D = 128, bf16 storage. `int8` is the statement's default (round 28: the ping-pong s8
// kernel with foldScale, int8QkWsDefault; `int8simt` the SIMT engine, the default before), `int8ws*` the
// tensor-core kernel (engine wgmma-ws: s8 wgmma over codes from a quantize pre-pass,
// src/codegen/cuda/int8qk-wgmma.ts) in five consumer schedules. Their blockQ / blockK are the quantization blocks, recorded
// in index.json so the Python side can evaluate the same definition in torch:
//   npm run build && node bench/cuda/int8qk-emit.mjs   → bench/build/cuda-int8qk/
// With the argument `pv`, the set of `pv e4m3 [smooth v]` (SageAttention2's fp8 P·V,
// src/codegen/cuda/int8qk-pv-wgmma.ts) instead, beside its `qk int8` baselines:
//   npm run build && node bench/cuda/int8qk-emit.mjs pv → bench/build/cuda-int8qk-pv/
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/compile.js')).href);
const pvSet = process.argv[2] === 'pv';
const out = join(root, pvSet ? 'bench/build/cuda-int8qk-pv' : 'bench/build/cuda-int8qk');
mkdirSync(out, { recursive: true });

// int8ws*: the serial consumers untweaked, with the tweaks that apply to them (T), ping-pong with
// them (P), and FlashAttention-3's consumers (F: 128-key tiles; F112: 112-key tiles, the causal
// kernel's spill-free size) with the overlapped ones too, and P and F with foldScale (PF, FF): the
// GPU run picks the default.
const ws = { engine: 'wgmma-ws', blockK: 128 };
const tweaks = ['fastExp', 'lazyRescale', 'pvN128', 'regs240'];
const fa3 = { ...ws, wsConsumers: 'fa3', wsTweaks: [...tweaks, 'rescaleInTurn'] };
const int8 = 'qk int8 smooth k';
const pingpongFold = (more) => ({
  ...ws,
  wsConsumers: 'pingpong',
  wsTweaks: [...tweaks, 'foldScale', ...more],
});
// The pv set: the serial s8 kernel plain, with its best serial tweaks (T) and with the tweaks
// the fp8 tile takes (FR: the like-for-like baseline of PVT), then with fp8 P·V plain (PV), with
// those tweaks (PVT), and tweaked without smooth v (PVr: the smoothing's cost); then on ping-pong
// consumers, the s8 kernel's round-9 best (P: 7.51 ms full) and fp8 P·V tweaked (PVpp).
const pvTweaks = ['fastExp', 'regs240']; // not lazyRescale: a stale max lets 448·p saturate
const pvVariants = {
  bf16: { stmt: '' },
  int8ws: { stmt: int8, schedule: ws },
  int8wsT: { stmt: int8, schedule: { ...ws, wsTweaks: tweaks } },
  int8wsFR: { stmt: int8, schedule: { ...ws, wsTweaks: pvTweaks } },
  int8wsPV: { stmt: `${int8}\n  pv e4m3 smooth v`, schedule: ws },
  int8wsPVT: { stmt: `${int8}\n  pv e4m3 smooth v`, schedule: { ...ws, wsTweaks: pvTweaks } },
  int8wsPVr: { stmt: `${int8}\n  pv e4m3`, schedule: { ...ws, wsTweaks: pvTweaks } },
  int8wsP: { stmt: int8, schedule: { ...ws, wsConsumers: 'pingpong', wsTweaks: tweaks } },
  int8wsPVpp: {
    stmt: `${int8}\n  pv e4m3 smooth v`,
    schedule: { ...ws, wsConsumers: 'pingpong', wsTweaks: pvTweaks },
  },
};
const qkVariants = {
  bf16: { stmt: '' },
  int8: { stmt: int8 },
  int8simt: { stmt: int8, schedule: { engine: 'simt' } },
  int8ws: { stmt: int8, schedule: ws },
  int8wsT: { stmt: int8, schedule: { ...ws, wsTweaks: tweaks } },
  int8wsP: { stmt: int8, schedule: { ...ws, wsConsumers: 'pingpong', wsTweaks: tweaks } },
  int8wsF: { stmt: int8, schedule: fa3 },
  int8wsF112: { stmt: int8, schedule: { ...fa3, blockK: 112 } },
  // foldScale (round 27): the raw s32 sums into the max, |qscale| · sq · sk into the exp2's FFMA.
  int8wsPF: { stmt: int8, schedule: pingpongFold([]) },
  int8wsFF: { stmt: int8, schedule: { ...fa3, wsTweaks: [...fa3.wsTweaks, 'foldScale'] } },
  // Round 28: the default (PF) with P packed first (k), over 3 stages (s3).
  int8wsPFk: { stmt: int8, schedule: pingpongFold(['packFirst']) },
  int8wsPFs3: { stmt: int8, schedule: { ...pingpongFold([]), stages: 3 } },
};
const variants = pvSet ? pvVariants : qkVariants;
// window: a sliding window (per-tile classification, partial tiles), checked at --check-n only.
const masks = { full: '', causal: 'mask causal', window: 'mask k <= q && q - k < 512' };
const index = [];
for (const [qk, { stmt, schedule }] of Object.entries(variants)) {
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
      ...(schedule ? { schedule } : {}),
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
      ...(kernel.pvE4m3 ? { smoothV: kernel.pvE4m3.smoothV } : {}),
    });
  }
}
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2));
console.log(`wrote ${index.length} artifacts to ${out}`);
