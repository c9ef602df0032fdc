// Runs the CUDA selection passes (src/codegen/cuda/select*.ts) in the CPU emulator (emu.ts) for
// one case: the launcher's part (grids, shared memory, scratch size) is restated here from
// select*.ts, and the emulator gets the few intrinsics the selection uses beyond emu.ts's shim.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import { SEL_SPAN } from '../../src/codegen/cuda/select.js';
import {
  SEL_WIDE_ROUNDS,
  SEL_WIDE_THREADS,
  WIDE_PASSES,
  wideTopk,
} from '../../src/codegen/cuda/select-wide.js';
import { voteKv } from '../../src/codegen/cuda/select-vote.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import type { KvCacheLayout } from '../../src/runtime/kv-cache.js';
import { attendsSelected, pooledSides, routingGroups, routingVote } from '../../src/ir/routing.js';
import { EMU_CXX_FLAGS, emulationSource } from './emu.js';
import { EmuSpec, warpIntrinsics, type ArgField, type EmuCaches, type EmuCall } from './emu-call.js';
import { expectOk, run } from './support.js';

const extraShim = String.raw`
template <class T> T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
${warpIntrinsics}
inline unsigned __match_any_sync(unsigned, unsigned value) {
  const unsigned me = threadIdx.x;
  auto& w = emu::warps[me / 32];
  memcpy(w.slot[me % 32], &value, 4);
  w.bar.wait();
  unsigned r = 0;
  for (unsigned i = 0; i < w.bar.n; ++i) { unsigned x; memcpy(&x, w.slot[i], 4); if (x == value) r |= 1u << i; }
  w.bar.wait();
  return r;
}
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
`;

/**
 * Floor of a scoring round's scratch in the emulation (ATTNC_SEL_ROUND_FLOATS; 2^24 in a real
 * build): small, so the test shapes score in several rounds unless k is large (the other term of
 * the round budget, 8 × the indices) — both the one-round and the multi-round launches run.
 */
export const EMU_ROUND_FLOATS = 64;

/**
 * The wide (multi-block) top-k of select-wide.ts in the emulation: small chunks from a small Nk
 * on, so rows of the test shapes split over several blocks (ties across blocks included) while
 * shorter rows keep the one-block top-k.
 */
export const EMU_WIDE_CHUNK = 16;
export const EMU_WIDE_MIN_NK = 40;

/** Compiles the emulation of a selection artifact; returns the executable. */
export async function buildSelectEmulation(dir: string, a: Artifact, k: AttentionKernel): Promise<string> {
  const base = emulationSource(a, k);
  const at = base.indexOf(`// attnc kernel "${k.name}"`);
  const src = (base.slice(0, at) + extraShim + base.slice(at)).replaceAll(
    'extern __shared__ float4 smem4[];',
    'float4* smem4 = emu::dyn_smem;',
  );
  const path = join(dir, `${k.name}.emu.cpp`);
  writeFileSync(path, src);
  const exe = join(dir, `${k.name}.emu`);
  expectOk(
    await run('g++', [
      ...EMU_CXX_FLAGS,
      `-DATTNC_SEL_ROUND_FLOATS=${EMU_ROUND_FLOATS}`,
      `-DATTNC_SEL_WIDE_CHUNK=${EMU_WIDE_CHUNK}`,
      `-DATTNC_SEL_WIDE_MIN_NK=${EMU_WIDE_MIN_NK}`,
      path,
      '-o',
      exe,
    ]),
    `g++ (emulation of ${k.name})`,
  );
  return exe;
}

export interface SelectCall extends EmuCall {
  /** k (or the `from` capacity) + first + local. */
  readonly K: number;
  /** Quantized K/V caches (`store`): their tensors instead of k / v. */
  readonly caches?: EmuCaches;
  /** k and v's layouts when they are not packed (strided or paged caches). */
  readonly kvLayouts?: { readonly k: KvCacheLayout; readonly v: KvCacheLayout };
}

/** Query rows per scoring round, as select.ts's sel_rows computes them. */
export function roundRows(
  c: Pick<SelectCall, 'B' | 'H' | 'Nq' | 'Nk' | 'K'>,
  G: number,
  vote: boolean,
): {
  rows: number;
  budget: number;
} {
  const { B, H, Nq, Nk, K } = c;
  const per = B * (G * Nk + (vote ? H * Math.ceil(Nk / SEL_SPAN) * 2 : 0));
  const budget = Math.max(EMU_ROUND_FLOATS, 8 * B * G * Nq * K);
  const nq = Math.max(Nq, 1);
  return { rows: Math.max(1, Math.min(nq, per > 0 ? Math.floor(budget / per) : nq)), budget };
}

/** Runs the artifact's passes in launcher order on `c`; returns indices, out, lse and the rounds. */
export async function runSelect(
  exe: string,
  dir: string,
  a: Artifact,
  kern: AttentionKernel,
  c: SelectCall,
): Promise<{
  indices: Int32Array;
  out: Float32Array;
  lse: Float32Array;
  rounds: number;
  /** Scoring rounds ranked by the wide (multi-block) top-k. */
  wideRounds: number;
  /** Scoring rounds whose vote statistics came from sel_vote_kv (select-vote.ts). */
  voteKvRounds: number;
}> {
  mkdirSync(dir, { recursive: true });
  const r = kern.routing!;
  const s = kern.schedule;
  const D = s.headDim;
  const DV = s.valueDim;
  const { B, H, Hkv, Nq, Nk, K } = c;
  const G = { H, Hkv, '1': 1 }[routingGroups(r)];
  const voters = { H: 1, Hkv: H / Hkv, '1': H }[routingGroups(r)];
  const restrict = attendsSelected(r);
  const pooled = pooledSides(r);
  const vote = routingVote(r);
  const from = r.source.kind === 'from';
  const nspan = Math.ceil(Nk / SEL_SPAN);
  const per = r.unit.kind === 'tokens' ? 128 : 2;
  const ns = !restrict || B * H * Nq >= 1024 ? 1 : Math.max(1, Math.min(16, Math.floor(K / per)));
  const { rows, budget } = roundRows(c, G, vote !== undefined);
  const wide = wideTopk(r) && Nk >= EMU_WIDE_MIN_NK && B * G * rows <= 64;
  const wchunks = Math.ceil(Nk / EMU_WIDE_CHUNK);
  // select.ts's sel_keep_aff and select-vote.ts's sel_vparts.
  const keepAff = vote !== undefined && B * H * rows * Nk <= budget;
  const vparts = voters === 1 ? 1 : Math.ceil(voters / (H / Hkv));
  const scratch =
    (pooled.k ? B * Hkv * Nk * D : 0) +
    (pooled.q ? B * H * Nq * D : 0) +
    (from ? 0 : B * G * rows * Nk) +
    (vote ? B * H * rows * nspan * 2 : 0) +
    (keepAff ? B * H * rows * Nk : 0) +
    (ns > 1 ? B * H * Nq * ns * (DV + 2) : 0) +
    (wide ? B * G * rows * (SEL_WIDE_ROUNDS * 256 + 2 * wchunks) : 0);
  const manifest = JSON.parse(a.files![`${kern.name}.json`]!);
  const spec = new EmuSpec(dir);
  const sizes: Record<string, number> = { B, H, Hkv, Nq, Nk, q_offset: c.qOffset, k_offset: c.kOffset };
  let row0At = -1;
  let wideRounds = 0;
  let voteKvRounds = 0;
  for (const f of manifest.args.fields as ArgField[]) {
    if (spec.cacheField(f, c.caches) || spec.kvLayoutField(f, c.kvLayouts)) continue;
    if (spec.commonField(f, c, kern)) continue;
    if (f.role === 'indices') spec.output(f.offset, B * G * Nq * K * 4, 'idx.bin');
    else if (f.role === 'scratch') spec.output(f.offset, scratch * 4, 'scratch.bin');
    else if (f.role === 'round') {
      row0At = f.offset;
      spec.line(`i32 ${f.offset} 0`);
    } else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`selection emulation: unknown args field ${f.field} (${f.role})`);
  }
  spec.qscale(kern, c.scale);
  const entry = (suffix: string): number =>
    a.entryPoints.findIndex((e) =>
      suffix === 'attention' ? e.role === 'attention' : e.name.endsWith(`_sel_${suffix}`),
    );
  const launch = (suffix: string, grid: [number, number, number], threads: number, smem = 0): void => {
    if (grid.every((x) => x > 0)) spec.line(`launch ${entry(suffix)} ${grid.join(' ')} ${threads} ${smem}`);
  };
  if (Nq > 0) {
    spec.summaries(a, kern, c);
    if (pooled.k) launch('pool_k', [Nk, Hkv, B], 128);
    if (pooled.q) launch('pool_q', [Nq, H, B], 128);
    if (!from) {
      const smem = 4 * voters * (D + 2);
      expect(row0At, 'the args have a sel_row0 field').toBeGreaterThanOrEqual(0);
      for (let r0 = 0; r0 < Nq; r0 += rows) {
        const nr = Math.min(rows, Nq - r0);
        spec.line(`i32 ${row0At} ${r0}`);
        if (vote && wide && keepAff && voteKv(kern))
          launch('vote_kv', [nspan * nr * vparts, G, B], SEL_SPAN, smem);
        else if (vote) launch('vote_stats', [nspan * nr, G, B], SEL_SPAN, smem);
        if (vote && wide && keepAff && voteKv(kern)) voteKvRounds++;
        launch('score', [nspan * nr, G, B], SEL_SPAN, smem);
        if (K > 0 && wide) for (const p of WIDE_PASSES) launch(p, [wchunks * nr, G, B], SEL_WIDE_THREADS);
        else if (K > 0) launch('topk', [nr, G, B], 512);
        if (K > 0 && wide) wideRounds++;
      }
    } else if (K > 0) {
      let smem = 4;
      while (smem < 4 * K) smem *= 2;
      launch('from', [Nq, G, B], 256, smem);
    }
    if (restrict) {
      launch('attn', [ns * Nq, H, B], 128);
      if (ns > 1) launch('merge', [Nq, H, B], 128);
    } else launch('attention', [Math.ceil(Nq / s.blockQ), H, B], s.threads, manifest.sharedBytes);
  }
  await spec.run(exe);
  return {
    indices: new Int32Array(spec.read('idx.bin')),
    out: new Float32Array(spec.read('out.bin')),
    lse: new Float32Array(spec.read('lse.bin')),
    rounds: from ? 0 : Math.ceil(Nq / rows),
    wideRounds,
    voteKvRounds,
  };
}
