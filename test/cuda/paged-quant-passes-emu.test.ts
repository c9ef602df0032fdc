// Passes beside the attention over paged quantized caches on CUDA, executed on the CPU emulator:
// ranked block routing's pooling pass (routing.ts route_pool_k over k_dequant) and token
// selection's scoring and attention (select-kv.ts), each reading codes and scales through the
// block table (kv-rows.ts kv_qrow) from shuffled pools poisoned elsewhere, against the float64
// oracle over the caches' dequantized values (indices equal, or a valid top-k at near-ties).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { checkedFormats } from '../../src/quant/format.js';
import { randomStoredInputs, rng } from '../../src/runtime/inputs.js';
import type { KvCacheLayout } from '../../src/runtime/kv-cache.js';
import { pageStoredCaches, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import type { RefInputs } from '../../src/runtime/reference.js';
import { expectRoutedRun, logNearTies, routingOracle, type Tally } from '../support/oracle-cases.js';
import { buildRoutingEmulation, runRouting } from './routing-emu.js';
import { buildSelectEmulation, runSelect } from './select-emu.js';
import { scratchDir } from './support.js';

const D = 8;
const P = 8;
const dir = scratchDir('paged-quant-passes');
const tally: Tally = { executed: 0, nearTies: 0 };

const store = 'store k int4 scale f16 per channel group 8 zero f16\n  store v int8 scale f32 per token';
const programs = {
  route: `attention pqr(top: int = 2) {\n  cache paged ${P}\n  ${store}\n  route blocks(4) topk(top) by mean(q) . mean(k)\n  mask causal\n}`,
  select: `attention pqs(top: int = 6) {\n  cache paged ${P}\n  ${store}\n  select topk(top) by q . k vote heads\n  mask causal\n}`,
};

const shapes = [
  { B: 2, H: 4, Hkv: 2, Nq: 6, Nk: 37 },
  { B: 1, H: 2, Hkv: 1, Nq: 3, Nk: 58 },
];

async function check(kind: 'route' | 'select', s: (typeof shapes)[number], seed: number): Promise<void> {
  const c = compile(programs[kind], {
    target: 'cuda',
    headDim: D,
    dtype: 'f32',
    schedule: { engine: 'simt' },
  });
  const at = join(dir, `${kind}-${seed}`);
  const exe = await (kind === 'route' ? buildRoutingEmulation : buildSelectEmulation)(
    dir,
    c.artifact,
    c.kernel,
  );
  const rand = rng(seed);
  const formats = checkedFormats(c.decl);
  const stored = randomStoredInputs(formats, { ...s, D, Dv: D }, rand);
  const q = new Float32Array(s.B * s.H * s.Nq * D).map(() => rand() * 2 - 1);
  const sizes = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D };
  const k = referenceDequantize(formats.k!, stored.caches.k!, sizes, undefined);
  const v = referenceDequantize(formats.v!, stored.caches.v!, sizes, undefined);
  const maxPages = Math.ceil(s.Nk / P) + 1;
  const count = s.B * maxPages + 2;
  const ids = Array.from({ length: count }, (_, i) => i).sort(() => rand() - 0.5);
  const blockTable = Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!);
  const pages: QuantPages = { pageSize: P, maxPages, pages: count, blockTable };
  const pools = pageStoredCaches(c.kernel.formats, stored.caches, { ...s, D, Dv: D }, pages);
  // Quantized k and v take no strides; the layout carries the block table and max_pages.
  const layout: KvCacheLayout = {
    kind: 'paged',
    pageSize: P,
    strides: { batch: 0, head: 0, row: 0 },
    blockTable,
    maxPages,
  };
  const params = { top: kind === 'route' ? 2 : 6 };
  const env = { params, tensors: {}, sizes: { ...s, D } };
  const inp: RefInputs = {
    q,
    k,
    v,
    B: s.B,
    Hq: s.H,
    Hkv: s.Hkv,
    Nq: s.Nq,
    Nk: s.Nk,
    D,
    Dv: D,
    qOffset: s.Nk - s.Nq,
    kOffset: 0,
  };
  const oracle = routingOracle(c, env, inp);
  const call = {
    ...s,
    qOffset: s.Nk - s.Nq,
    kOffset: 0,
    scale: Math.fround(1 / Math.sqrt(D)),
    q,
    k: new Float32Array(0),
    v: new Float32Array(0),
    params,
    tensors: {},
    caches: pools,
    kvLayouts: { k: layout, v: layout },
  };
  const src = oracle.spec.source;
  if (src.kind !== 'topk') throw new Error('these programs rank with topk');
  const res =
    kind === 'route'
      ? await runRouting(exe, at, c.artifact, c.kernel, { ...call, counts: [src.k, 0, 0] })
      : await runSelect(exe, at, c.artifact, c.kernel, { ...call, K: oracle.routing.K });
  expectRoutedRun(oracle, res, `\n${programs[kind]}\n${JSON.stringify(s)}`, tally);
}

describe('CUDA routing and selection over paged quantized caches (emulated) agree with the oracle', () => {
  for (const kind of ['route', 'select'] as const)
    it(`${kind}: pooled/scored keys dequantized through the block table`, async () => {
      for (const [i, s] of shapes.entries()) await check(kind, s, 40 + i + (kind === 'route' ? 0 : 10));
      expect(tally.executed).toBeGreaterThan(0);
      logNearTies(`cuda ${kind} over paged quantized caches`, tally);
    }, 600_000);
});
