// Every TMA load of the wgmma-ws engine matches the rank of the tensor map it reads. A 3-D
// cp.async.bulk.tensor on a 4-D map compiles cleanly and stops the kernel on the GPU with "an
// illegal instruction was encountered" (the H200, qp_int8_full: the pipelined quantized producer
// kept the 3-D Q load after the Q map became 4-D). Neither nvcc nor the CPU emulator (no TMA)
// sees it, so the emitted code is checked here: each map's rank from its host encoder, each
// load's from the device helper it calls.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import type { Schedule, StorageDType } from '../../src/ir/kernel.js';
import { readStdlib, staticStdlib, stdlibPath } from '../support/stdlib.js';

/** Device helpers that issue TMA loads, by the rank of the map they need (wgmma-ws-device.ts). */
const loadRank: Readonly<Record<string, number>> = {
  tma_load: 3,
  tma_panels: 3,
  tma_load4: 4,
  tma_kv_panels: 4,
};
/** Host encoders of the maps, by the rank they encode (kv-load-tma.ts). */
const encoderRank: Readonly<Record<string, number>> = { encode_kv_panels: 4, encode_panels: 3 };

/** The kernel's map parameters (tmq, tmk, tmv): maps[0..2] of make_tma_maps, in that order. */
function mapParams(code: string): string[] {
  return [...code.matchAll(/const __grid_constant__ TmaMap (\w+)/g)].map((m) => m[1]!);
}

/** maps[i]'s rank as its encoder gives it. */
function mapRanks(code: string): Map<number, number> {
  const ranks = new Map<number, number>();
  for (const m of code.matchAll(/(\w+)\(encode, &maps\[(\d+)\]/g)) {
    const rank = encoderRank[m[1]!];
    if (rank === undefined) throw new Error(`unknown TMA encoder ${m[1]}`);
    ranks.set(Number(m[2]), rank);
  }
  return ranks;
}

/** Every load of a kernel map in the device code: the map's name and the load's rank. */
function loads(code: string, params: readonly string[]): { map: string; rank: number; line: string }[] {
  const found: { map: string; rank: number; line: string }[] = [];
  for (const line of code.split('\n')) {
    const m = /\b(tma_load4|tma_load|tma_kv_panels|tma_panels)(?:<[^>]*>)?\(\s*[^,]+,\s*(\w+)\s*,/.exec(line);
    if (m && params.includes(m[2]!)) found.push({ map: m[2]!, rank: loadRank[m[1]!]!, line: line.trim() });
  }
  return found;
}

/** Each load of a map whose rank differs from the map's (empty when all agree). */
function tmaRankMismatches(code: string): string[] {
  const params = mapParams(code);
  const ranks = mapRanks(code);
  return loads(code, params)
    .filter((l) => ranks.get(params.indexOf(l.map)) !== l.rank)
    .map(
      (l) => `${l.line}: a ${l.rank}-D load of ${l.map}, a ${ranks.get(params.indexOf(l.map)) ?? '?'}-D map`,
    );
}

const ws = (more: Partial<Schedule> = {}): Partial<Schedule> => ({ engine: 'wgmma-ws', ...more });
const stores = [
  '',
  'store kv int8 scale f32 per token',
  'store kv e4m3 scale f32 per token',
  'store kv int4 scale f32 per token',
  'store k int8 scale f32 per token',
];

function emit(
  source: string,
  headDim: number,
  dtype: StorageDType,
  schedule: Partial<Schedule>,
  file?: string,
) {
  return compile(source, { target: 'cuda', headDim, dtype, schedule, ...(file ? { file } : {}) }).artifact
    .code;
}

describe('wgmma-ws TMA loads match their maps', () => {
  it('finds a 3-D load of a 4-D map (the check can fail)', () => {
    const code = emit('attention a() {\n}', 128, 'bf16', ws());
    const broken = code.replace(
      /tma_kv_panels<D, BQ>\(Qs, tmq, q0, h, b, qbar\)/,
      'tma_panels<D, BQ>(Qs, tmq, q0, b * a.H + h, qbar)',
    );
    expect(broken).not.toBe(code);
    expect(tmaRankMismatches(broken)).toHaveLength(1);
  });

  for (const store of stores) {
    for (const mask of ['', 'mask causal']) {
      for (const wsDequant of store ? (['pipelined', 'serial'] as const) : [undefined]) {
        for (const headDim of [64, 128]) {
          const label = `${store || 'bf16 kv'} ${mask || 'full'} ${wsDequant ?? ''} D=${headDim}`;
          it(label, () => {
            const body = [store, mask]
              .filter(Boolean)
              .map((l) => `  ${l}\n`)
              .join('');
            const code = emit(
              `attention a() {\n${body}}`,
              headDim,
              'bf16',
              // Fused: the producer converts and loads Q itself (staged kernels run the float twin).
              ws(wsDequant ? { wsDequant, quantPrefill: 'fused' } : {}),
            );
            expect(mapParams(code)).toEqual(['tmq', 'tmk', 'tmv']);
            expect(loads(code, mapParams(code)).some((l) => l.map === 'tmq')).toBe(true);
            expect(tmaRankMismatches(code)).toEqual([]);
          });
        }
      }
    }
  }

  it('every static stdlib kernel on wgmma-ws (f16 and bf16, D = 64 and 128)', () => {
    let checked = 0;
    for (const file of staticStdlib) {
      for (const dtype of ['f16', 'bf16'] as const) {
        for (const headDim of [64, 128]) {
          let code: string;
          try {
            code = emit(readStdlib(file), headDim, dtype, ws(), stdlibPath(file));
          } catch {
            continue; // the engine refuses the kernel (e.g. dilated); wgmma-ws.test.ts covers which
          }
          expect(tmaRankMismatches(code), `${file} ${dtype} D=${headDim}`).toEqual([]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});
