// Runs the CUDA block-routing passes (src/codegen/cuda/routing.ts: route_pool_k, route_pool_q,
// the SIMT route_topk; routing-attn.ts: the routed attention) in the CPU emulator (emu.ts) for one
// call. The launcher's part (grids, dynamic shared memory, scratch size, the order of the passes,
// its argument checks) is restated here from routing.ts and launcher.ts; the emulator gets the few
// intrinsics these kernels use beyond emu.ts's shim. The tensor-core top-k (routing-topk-mma.ts,
// inline PTX) cannot run here: callers compile f32 storage, for which it is never emitted.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact } from '../../src/codegen/artifact.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import type { QuantCache } from '../../src/quant/layout.js';
import type { KvCacheLayout } from '../../src/runtime/kv-cache.js';
import { isRankedBlocks, routingGroups } from '../../src/ir/routing.js';
import { compileEmulation, emulationSource } from './emu.js';
import { EmuSpec, warpIntrinsics, type ArgField, type EmuCall } from './emu-call.js';

const extraShim = String.raw`
template <class T> T atomicOr(T* p, T v) { T o = *p; *p = o | v; return o; }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warps[threadIdx.x / 32].bar.wait(); }
${warpIntrinsics}
#define __align__(n) alignas(n)
`;

/** The kernels' dynamic shared memory declarations, pointed at the emulator's per-launch buffer. */
const dynamicShared: readonly (readonly [string, string])[] = [
  ['extern __shared__ float4 route_smem4[];', 'float4* route_smem4 = emu::dyn_smem;'],
  [
    'extern __shared__ __align__(16) unsigned char route_dyn[];',
    'unsigned char* route_dyn = reinterpret_cast<unsigned char*>(emu::dyn_smem);',
  ],
];

/** The token attention's (src/codegen/cuda/token-attn.ts), for raw-query programs. */
const tokenShared = [
  'extern __shared__ __align__(16) unsigned char tok_smem[];',
  'unsigned char* tok_smem = reinterpret_cast<unsigned char*>(emu::dyn_smem);',
] as const;

function replaceOnce(src: string, from: string, to: string): string {
  const at = src.indexOf(from);
  if (at < 0 || src.indexOf(from, at + from.length) >= 0)
    throw new Error(`routing emulation: expected exactly one "${from}" in the emulated source`);
  return src.slice(0, at) + to + src.slice(at + from.length);
}

/** Reads `constexpr <type> NAME = <int>;` from the emitted device code. */
function constant(code: string, name: string): number {
  const m = new RegExp(`constexpr (?:int|unsigned) ${name} = (\\d+);`).exec(code);
  if (!m) throw new Error(`routing emulation: no constant ${name} in the emitted code`);
  return Number(m[1]);
}

/** Compiles the emulation of a block-routing artifact; returns the executable. */
export async function buildRoutingEmulation(dir: string, a: Artifact, k: AttentionKernel): Promise<string> {
  if (a.entryPoints.some((e) => e.name.endsWith('_route_topk_tc')))
    throw new Error('routing emulation: the tensor-core top-k (inline PTX) cannot run on the CPU');
  let src = emulationSource(a, k);
  const at = src.indexOf(`// attnc kernel "${k.name}"`);
  src = src.slice(0, at) + extraShim + src.slice(at);
  // `io` buffers (read from their file, our own 0xff poison, and written back, so an id the top-k
  // forgets to write reads -1) are emu.ts's own now.
  for (const [from, to] of dynamicShared) src = replaceOnce(src, from, to);
  if (a.entryPoints.some((e) => e.name === `attnc_${k.name}_token_attn`))
    src = replaceOnce(src, tokenShared[0], tokenShared[1]);
  const path = join(dir, `${k.name}.emu.cpp`);
  writeFileSync(path, src);
  const exe = join(dir, `${k.name}.emu`);
  await compileEmulation(path, exe, `g++ (emulation of ${k.name})`);
  return exe;
}

export interface RoutingCall extends EmuCall {
  /** The routing counts k, first, local under `params` (the capacity is their sum). */
  readonly counts: readonly [number, number, number];
  /** Quantized K/V caches (a `store` statement): their tensors instead of k / v. */
  readonly caches?: { readonly k?: QuantCache; readonly v?: QuantCache };
  /** Strided or paged K/V (k / v are then the physical caches): strides, block table. */
  readonly kvLayouts?: { readonly k: KvCacheLayout; readonly v: KvCacheLayout };
}

/** One tensor (codes, scale, …) of a quantized cache as bytes. */
function cachePart(cache: QuantCache | undefined, name: string): ArrayBufferView {
  const held = cache?.[name as keyof QuantCache];
  if (held === undefined) throw new Error(`routing emulation: no cache tensor ${name}`);
  return ArrayBuffer.isView(held) ? held : held.data;
}

export interface RoutingRun {
  readonly indices: Int32Array;
  readonly out: Float32Array;
  readonly lse: Float32Array;
}

/** What `indices` holds before the call: an id no kernel writes (0x5a5a5a5a). */
export const INDICES_POISON = 0x5a5a5a5a;

const cdiv = (x: number, y: number): number => Math.ceil(x / y);
const floorDiv = (x: number, y: number): number => Math.floor(x / y);

/** Runs the artifact's passes in launcher order on `c`; returns indices, out and lse. */
export async function runRouting(
  exe: string,
  dir: string,
  a: Artifact,
  kern: AttentionKernel,
  c: RoutingCall,
): Promise<RoutingRun> {
  mkdirSync(dir, { recursive: true });
  const r = kern.routing!;
  if (!isRankedBlocks(r)) throw new Error('routing emulation: the plan is not ranked blocks');
  const s = kern.schedule;
  const D = s.headDim;
  const { B, H, Hkv, Nq, Nk, qOffset, kOffset } = c;
  // The launcher's argument checks (routingHostChecks): a call it refuses is the test's mistake.
  if (kOffset < 0) throw new Error(`routing emulation: the launcher refuses k_offset = ${kOffset}`);
  for (const n of c.counts)
    if (n < 0 || n > 2 ** 20) throw new Error(`routing emulation: the launcher refuses count ${n}`);
  const RB = constant(a.code, 'RB');
  const UT = constant(a.code, 'ROUTE_UT');
  const smemOff = constant(a.code, 'ROUTE_SMEM_OFF');
  if (RB !== r.unit.size) throw new Error(`routing emulation: RB = ${RB}, the plan says ${r.unit.size}`);
  const pooledQ = r.source.q !== 'raw';
  const G = { H, Hkv, '1': 1 }[routingGroups(r)];
  const cap = c.counts[0] + c.counts[1] + c.counts[2];
  // route_scratch_size: pooled keys, then pooled queries, strides of cdiv(N, RB) + 1 blocks.
  const scratch = B * Hkv * (cdiv(Nk, RB) + 1) * D + (pooledQ ? B * H * (cdiv(Nq, RB) + 1) * D : 0);
  const nkb = Nk > 0 ? floorDiv(kOffset + Nk - 1, RB) - floorDiv(kOffset, RB) + 1 : 0;
  const units = !pooledQ ? Nq : Nq > 0 ? floorDiv(qOffset + Nq - 1, RB) - floorDiv(qOffset, RB) + 1 : 0;
  const manifest = JSON.parse(a.files![`${kern.name}.json`]!);
  const spec = new EmuSpec(dir);
  const sizes: Record<string, number> = { B, H, Hkv, Nq, Nk, q_offset: qOffset, k_offset: kOffset };
  for (const f of manifest.args.fields as ArgField[]) {
    const cache = f.role === 'k' || f.role === 'v' ? c.caches?.[f.role] : undefined;
    if (cache) spec.input(f.role, cache.codes, f.offset);
    else if (spec.kvLayoutField(f, c.kvLayouts)) continue;
    else if (f.role === 'cache') {
      const [which, part] = f.name.split('_') as ['k' | 'v', string];
      spec.input(f.name, cachePart(c.caches?.[which], part), f.offset);
    } else if (spec.commonField(f, c, kern)) continue;
    else if (f.role === 'indices')
      spec.input('idx.bin', new Int32Array(B * G * Nq * cap).fill(INDICES_POISON), f.offset, 'io');
    else if (f.role === 'scratch') spec.output(f.offset, scratch * 4, 'scratch.bin');
    else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`routing emulation: unknown args field ${f.field} (${f.role})`);
  }
  spec.qscale(kern, c.scale);
  const entry = (suffix: string): number => {
    const i = a.entryPoints.findIndex((e) => e.name === `attnc_${kern.name}_${suffix}`);
    if (i < 0) throw new Error(`routing emulation: no entry point ${suffix}`);
    return i;
  };
  const launch = (i: number, grid: readonly number[], threads: number, smem = 0): void => {
    if (grid.every((x) => x > 0)) spec.line(`launch ${i} ${grid.join(' ')} ${threads} ${smem}`);
  };
  // launcherText: nothing for Nq = 0; summaries, pool k, pool q, top-k, attention.
  if (Nq > 0) {
    spec.summaries(a, kern, c);
    launch(entry('route_pool_k'), [nkb, Hkv, B], 128);
    if (pooledQ) launch(entry('route_pool_q'), [units, H, B], 128);
    if (cap > 0) {
      const smem = 4 * (UT * D + UT * nkb * (r.source.vote ? 2 : 1) + 2 * UT);
      launch(entry('route_topk'), [cdiv(units, UT), G, B], 128, smem);
    }
    const token = a.entryPoints.find((e) => e.name === `attnc_${kern.name}_token_attn`);
    if (token) {
      // token-host.ts: rows Nq · H / Hkv in 16-row warps; the SIMT form's shared memory per warp.
      const warps = constant(a.code, 'TOK_WARPS');
      const BK = constant(a.code, 'TOK_BK');
      const DV = s.valueDim;
      const smem = 4 * warps * (16 * D + BK * (D + DV) + 16 * BK);
      launch(entry('token_attn'), [cdiv(Nq * (H / Hkv), 16 * warps), Hkv, B], 32 * warps, smem);
    } else {
      const smem = smemOff + 8 * cdiv(cdiv(Nk, s.blockK), 32);
      launch(entry('attention'), [cdiv(Nq, s.blockQ), H, B], s.threads, smem);
    }
  }
  await spec.run(exe);
  return {
    indices: new Int32Array(spec.read('idx.bin')),
    out: new Float32Array(spec.read('out.bin')),
    lse: new Float32Array(spec.read('lse.bin')),
  };
}
