// The CPU emulation of the tensor-core decode kernel over paged quantized caches (decode-mma-paged.ts,
// decode-mma-tokint.ts): decode-mma-packed-emu.ts's harness with the caches in pools of pages of a
// random order read through a block table, against the float64 reference of the contiguous caches.
import { expect } from 'vitest';
import { emulate as emulateCaches } from './decode-mma-packed-emu.js';

export interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly splitKeys: number;
}

export const seed0 = process.env.CI ? 20261204 : Math.floor(Math.random() * 2 ** 31);

/**
 * Pages of P rows, bf16 q and output; `lean`: ATTNC_DEC_MMA_LEAN bits (the lean code emitted as a
 * knob, decode-mma-lean.ts; 0: the default code); `defines`: more #define lines before the kernel;
 * `expected`: what the kernel must hold; `mutate`: a source edit. Throws where the output is off.
 */
export async function emulate(
  tag: string,
  store: string,
  P: number,
  c: Case,
  seed: number,
  mask = '',
  lean = 0,
  defines = '',
  expected = 'dm_fetch_code_pages<',
  mutate: (device: string) => string = (d) => d,
): Promise<void> {
  const knobs: Record<string, number> = lean ? { MMA_LEAN: lean } : {};
  const paging = { P, seed, defines };
  const e = await emulateCaches(`p${tag}`, store, 'bf16', c, mask, knobs, mutate, [expected], paging);
  const what = `P ${P} ${store} ${mask} ${JSON.stringify(c)} seed ${seed}`;
  expect(e.nans, what).toBe(0);
  // As the packed kernel (decode-mma-quant-emu.test.ts): q̂ and p·s in f16, the output in bf16.
  expect(e.out, what).toBeLessThanOrEqual(4e-3);
  expect(e.lse, what).toBeLessThanOrEqual(3e-5);
}
