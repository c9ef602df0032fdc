// The wgmma engine as the schedule pass picks it under the default 99 KiB shared-memory budget:
// at D = 128 that is 64-key tiles, so every stdlib kernel is checked there in bf16 and f16
// (`_k64`); the DESIGN §6 patterns with the bench's 128-key tiles are timed again (e.g. at
// S = 32768). `node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/wgmma-default-list.mjs
// --out bench/build/cuda-wgmma-default`, then `ENGINE=wgmma-default bash bench/cuda/run-mma.sh`.
import mma from './mma-list.mjs';

const all = mma.filter((e) => !e.alt);
export default [
  ...all.map((e) => ({
    ...e,
    name: `${e.name}_k64`,
    headDims: [128],
    schedule: { blockK: 64 },
    perf: false,
  })),
  ...all.filter((e) => e.perf).map((e) => ({ ...e, dtypes: ['bf16'], headDims: [128] })),
];
