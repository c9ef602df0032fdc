// What the selection and routing emulations (select-emu.ts, routing-emu.ts) share: the warp
// intrinsics their kernels use beyond emu.ts's shim, the call they run, and a writer for the
// driver's spec file (args fields, inputs, outputs and launches; format in emu.ts's driver).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Artifact } from '../../src/codegen/artifact.js';
import type { Compiled } from '../../src/compile.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import type { QuantCache } from '../../src/quant/layout.js';
import type { KvCacheLayout } from '../../src/runtime/kv-cache.js';
import { runEmulation } from './emu.js';

/** Warp votes, bit counts and blockDim (the fiber count of the launch) for the emulated C++. */
export const warpIntrinsics = String.raw`
inline unsigned __ballot_sync(unsigned, bool pred) {
  const unsigned me = threadIdx.x;
  auto& w = emu::warps[me / 32];
  w.slot[me % 32][0] = pred ? 1 : 0;
  w.bar.wait();
  unsigned r = 0;
  for (unsigned i = 0; i < w.bar.n; ++i) if (w.slot[i][0]) r |= 1u << i;
  w.bar.wait();
  return r;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline dim3 emu_block_dim() { dim3 d; d.x = (unsigned)emu::fibers->size(); return d; }
#define blockDim emu_block_dim()
`;

/** One call of an artifact: sizes, offsets, f32 inputs, params and int tensors. */
export interface EmuCall {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset: number;
  readonly kOffset: number;
  readonly scale: number;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly params: Readonly<Record<string, number>>;
  readonly tensors: Readonly<Record<string, Int32Array>>;
}

/** Quantized K/V caches of a call (`store` statements): their tensors stand in for k / v. */
export interface EmuCaches {
  readonly k?: QuantCache;
  readonly v?: QuantCache;
}

/** One tensor (codes, scale, …) of a quantized cache as bytes. */
function cachePart(cache: QuantCache | undefined, name: string): ArrayBufferView {
  const held = cache?.[name as keyof QuantCache];
  if (held === undefined) throw new Error(`emulation: no cache tensor ${name}`);
  return ArrayBuffer.isView(held) ? held : held.data;
}

/** A field of the manifest's args struct. */
export interface ArgField {
  field: string;
  name: string;
  role: string;
  ctype: string;
  offset: number;
}

/**
 * The spec line of a K/V stride field (src/codegen/cuda/kv-rows.ts) for packed [B, Hkv, Nk, W]
 * K/V, or of a q/out stride field (qo-rows.ts) for packed [B, H, Nq, W], as args_init sets them;
 * undefined for other fields.
 */
export function packedStrideLine(
  f: { name: string; role: string; offset: number },
  kern: AttentionKernel,
  c: { H: number; Nq: number; Hkv: number; Nk: number },
): string | undefined {
  if (f.role === 'qo_stride') {
    const w = f.name.startsWith('q_') ? kern.schedule.headDim : kern.schedule.valueDim;
    const value = { n: w, h: c.Nq * w, b: c.H * c.Nq * w }[f.name.at(-1)!];
    if (value === undefined) throw new Error(`emulation: unknown stride field ${f.name}`);
    return `i64 ${f.offset} ${value}`;
  }
  if (f.role !== 'stride') return undefined;
  const w = f.name.startsWith('k_') ? kern.schedule.headDim : kern.schedule.valueDim;
  const value = { n: w, h: c.Nk * w, b: c.Hkv * c.Nk * w }[f.name.at(-1)!];
  if (value === undefined) throw new Error(`emulation: unknown stride field ${f.name}`);
  return `i64 ${f.offset} ${value}`;
}

/** C++ statements giving `args` (an Args lvalue whose sizes are set) packed K/V, q and out strides. */
export function packedStridesCpp(kern: AttentionKernel, args: string): string {
  const lines: string[] = [];
  for (const t of ['k', 'v'] as const) {
    if (kern.formats[t].kind !== 'float') continue;
    const w = t === 'k' ? kern.schedule.headDim : kern.schedule.valueDim;
    lines.push(
      `${args}.${t}_stride_n = ${w}; ${args}.${t}_stride_h = (long long)${args}.Nk * ${w}; ${args}.${t}_stride_b = (long long)${args}.Hkv * ${args}.Nk * ${w};`,
    );
  }
  for (const t of ['q', 'out'] as const) {
    const w = t === 'q' ? kern.schedule.headDim : kern.schedule.valueDim;
    lines.push(
      `${args}.${t}_stride_n = ${w}; ${args}.${t}_stride_h = (long long)${args}.Nq * ${w}; ${args}.${t}_stride_b = (long long)${args}.H * ${args}.Nq * ${w};`,
    );
  }
  return lines.join(' ');
}

/** Summary blocks of a (1-D) tensor of the call. */
const summaryBlocks = (c: EmuCall, kern: AttentionKernel, tensor: string): number =>
  Math.ceil((c.tensors[tensor]?.length ?? 0) / kern.schedule.summaryBlock);

/** The spec file of one emulated call, written into `dir` with its input files. */
export class EmuSpec {
  private readonly lines: string[] = [];
  constructor(private readonly dir: string) {}

  /** An input buffer (`io`: read from the file and written back to it). */
  input(name: string, data: ArrayBufferView, off: number, kind: 'in' | 'io' = 'in'): void {
    const path = join(this.dir, name);
    writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.lines.push(`${kind} ${off} ${data.byteLength} ${path}`);
  }

  /** An output buffer of `bytes`, poisoned by the driver, saved to `name`. */
  output(off: number, bytes: number, name: string): void {
    this.lines.push(`out ${off} ${bytes} ${join(this.dir, name)}`);
  }

  line(s: string): void {
    this.lines.push(s);
  }

  /**
   * The k / v codes and side tensors (`cache` fields, named `<k|v>_<part>`) of the quantized
   * caches; false for any other field (a float k or v included).
   */
  cacheField(f: ArgField, caches: EmuCaches | undefined): boolean {
    const stored = f.role === 'k' || f.role === 'v' ? caches?.[f.role] : undefined;
    if (stored) this.input(f.role, stored.codes, f.offset);
    else if (f.role === 'cache') {
      const [which, part] = f.name.split('_') as ['k' | 'v', string];
      this.input(f.name, cachePart(caches?.[which], part), f.offset);
    } else return false;
    return true;
  }

  /**
   * The K/V stride fields, block table and max_pages of caches laid out as `layouts` (k and v
   * share a paged layout's table); false for any other field or when `layouts` is absent.
   */
  kvLayoutField(f: ArgField, layouts: { k: KvCacheLayout; v: KvCacheLayout } | undefined): boolean {
    if (!layouts) return false;
    const { k } = layouts;
    if (f.role === 'stride') {
      const l = f.name.startsWith('k_') ? layouts.k : layouts.v;
      const value = { b: l.strides.batch, h: l.strides.head, n: l.strides.row }[f.name.at(-1)!];
      if (value === undefined) throw new Error(`emulation: unknown stride field ${f.name}`);
      this.line(`i64 ${f.offset} ${value}`);
    } else if (f.role === 'block_table' && k.kind === 'paged')
      this.input('table.bin', k.blockTable, f.offset);
    else if (f.role === 'max_pages' && k.kind === 'paged') this.line(`i32 ${f.offset} ${k.maxPages}`);
    else return false;
    return true;
  }

  /**
   * The fields every artifact has — q, k, v, out, lse, scale, params, int tensors and their tile
   * summaries — false for a field the caller must place itself.
   */
  commonField(f: ArgField, c: EmuCall, kern: AttentionKernel): boolean {
    const { B, H, Nq } = c;
    if (f.role === 'q' || f.role === 'k' || f.role === 'v') this.input(f.role, c[f.role], f.offset);
    else if (f.role === 'out') this.output(f.offset, B * H * Nq * kern.schedule.valueDim * 4, 'out.bin');
    else if (f.role === 'lse') this.output(f.offset, B * H * Nq * 4, 'lse.bin');
    else if (f.role === 'tensor') this.input(f.name, c.tensors[f.name]!, f.offset);
    else if (f.role === 'summary') {
      const blocks = summaryBlocks(c, kern, f.name.replace(/_summary$/, ''));
      this.output(f.offset, 8 * blocks, `${f.name}.bin`); // [min, max] i32 per block
    } else if (f.role === 'param') this.line(`${f.ctype} ${f.offset} ${c.params[f.name]}`);
    else if (f.role === 'scale') this.line(`f32 ${f.offset} ${c.scale}`);
    else if (f.role === 'stride' || f.role === 'qo_stride') this.line(packedStrideLine(f, kern, c)!);
    else return false;
    return true;
  }

  /** The launcher's first launches: a summary kernel per summarized tensor, a warp per block. */
  summaries(a: Artifact, kern: AttentionKernel, c: EmuCall): void {
    for (const { tensor } of kern.summaries) {
      const i = a.entryPoints.findIndex((e) => e.name === `attnc_${kern.name}_summary_${tensor}`);
      if (i < 0) throw new Error(`emulation: no summary entry point for ${tensor}`);
      const blocks = summaryBlocks(c, kern, tensor);
      if (blocks > 0) this.line(`launch ${i} ${Math.ceil(blocks / 8)} 1 1 256 0`);
    }
  }

  /** The scale the launcher passes the attention: log2(e) folded in unless a modifier needs natural units. */
  qscale(kern: AttentionKernel, scale: number): void {
    const identity = kern.score.op === 'var' && kern.score.arg === 'score';
    this.lines.push(`qscale ${scale * (identity ? Math.LOG2E : 1)}`);
  }

  /** Writes the spec and runs `exe` on it. */
  async run(exe: string): Promise<void> {
    const specPath = join(this.dir, 'spec.txt');
    writeFileSync(specPath, this.lines.join('\n') + '\n');
    await runEmulation(exe, specPath);
  }

  /** An output file's bytes after `run`. */
  read(name: string): ArrayBuffer {
    const u = new Uint8Array(readFileSync(join(this.dir, name)));
    return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
  }
}

/**
 * Program i's compiled kernel and emulator executable, built once per test file, each in its own
 * directory `<dir>/p<i>` (every test program's kernel is named `p`).
 */
export function emulatedPrograms(
  dir: string,
  compileProgram: (i: number) => Compiled,
  build: (dir: string, a: Artifact, k: AttentionKernel) => Promise<string>,
): (i: number) => Promise<{ c: Compiled; exe: string }> {
  const built = new Map<number, Promise<{ c: Compiled; exe: string }>>();
  return (i) => {
    const hit = built.get(i);
    if (hit) return hit;
    const d = join(dir, `p${i}`);
    mkdirSync(d, { recursive: true });
    const c = compileProgram(i);
    const p = build(d, c.artifact, c.kernel).then((exe) => ({ c, exe }));
    built.set(i, p);
    return p;
  };
}
