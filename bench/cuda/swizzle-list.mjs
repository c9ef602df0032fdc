// wsTweaks l2Swizzle (wgmma-ws-tweaks.ts: FlashAttention-3's LPT order of the CTAs) beside the
// default schedule of each pattern whose default is the wgmma-ws engine, timed between two copies
// of the default (the second engine of a process has run up to 10% slower: round 22):
//   npm run build && node bench/cuda/emit.mjs --list bench/cuda/swizzle-list.mjs --out bench/build/cuda-swizzle
//   BUILD=bench/build/cuda-swizzle CHECK_S=150 TABLE_S=240 bash bench/cuda/run-table.sh 16384,32768
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import stdlib from './stdlib-list.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { compile } = await import(pathToFileURL(join(root, 'dist/src/index.js')).href);
const patterns = (process.env.SWIZZLE_PATTERNS ?? 'full,causal,prefix_lm,softcap').split(',');

/** The schedule the schedule pass picks for a stdlib entry (bf16, D 128), as emit.mjs's defaultSchedule. */
function defaultSchedule(e) {
  const { kernel } = compile(readFileSync(join(root, e.source), 'utf8'), {
    target: 'cuda',
    file: e.source,
    headDim: 128,
    dtype: 'bf16',
    limits: { maxWorkgroupStorageBytes: 227 * 1024 },
  });
  const { dtype: _d, headDim: _h, ...schedule } = kernel.schedule;
  return schedule;
}

export default stdlib
  .filter((e) => patterns.includes(e.name.replace(/^std_/, '')))
  .flatMap((e) => {
    const pattern = e.name.replace(/^std_/, '');
    const s = defaultSchedule(e);
    if (s.engine !== 'wgmma-ws') return [];
    const tweaks = [...(s.wsTweaks ?? []), 'l2Swizzle'];
    return [
      { ...e, name: `${e.name}__default`, pattern, defaultSchedule: true },
      { ...e, name: `${e.name}__l2`, pattern, schedule: { ...s, wsTweaks: tweaks } },
      { ...e, name: `${e.name}__default2`, pattern, defaultSchedule: true },
    ];
  });
