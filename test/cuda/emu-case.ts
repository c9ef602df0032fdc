// Runs one emulated case (emu.ts) of a rendered kernel and compares it with the float64 reference.
// Inputs are multiples of 1/64 in [-2, 2], exact in bf16 and f16, so only the output is rounded.
import { sharedStorage } from '../../src/ir/formats.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Artifact } from '../../src/codegen/artifact.js';
import type { AttentionKernel, StorageDType } from '../../src/ir/kernel.js';
import { runEmulation } from './emu.js';
import { packedStrideLine } from './emu-call.js';
import { dimValue, referenceAttention, type Problem } from './reference.js';
import { rng } from '../../src/runtime/inputs.js';

const f32bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
function f16bits(x: number): number {
  if (x === 0) return 0;
  const s = x < 0 ? 0x8000 : 0;
  const e = Math.floor(Math.log2(Math.abs(x)));
  return s | ((e + 15) << 10) | Math.round((Math.abs(x) / 2 ** e - 1) * 1024);
}
function f16value(b: number): number {
  const e = (b >> 10) & 31;
  const m = b & 1023;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return b & 0x8000 ? -v : v;
}

/** Exactly representable values encoded in the storage dtype. */
function encode(values: Float64Array, dt: StorageDType): Uint8Array {
  if (dt === 'f32') return new Uint8Array(new Float32Array(values).buffer);
  const u = new Uint16Array(values.length);
  values.forEach((v, i) => (u[i] = dt === 'bf16' ? f32bits(v) >>> 16 : f16bits(v)));
  return new Uint8Array(u.buffer);
}
function decode(bytes: Uint8Array, dt: StorageDType): Float64Array {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (dt === 'f32') return Float64Array.from(new Float32Array(buf));
  const u = new Uint16Array(buf);
  if (dt === 'f16') return Float64Array.from(u, f16value);
  return Float64Array.from(new Float32Array(Uint32Array.from(u, (b) => b << 16).buffer));
}

export interface Case {
  readonly label: string;
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly qOffset?: number;
  readonly kOffset?: number;
  readonly params?: Record<string, number>;
}

interface ArgsField {
  field: string;
  name: string;
  role: string;
  ctype: string;
  offset: number;
}

/**
 * Runs case `c`; returns how many rows the reference leaves empty. `refInputs`: the q and k the
 * reference attends with, from the kernel's (qk int8 compares against its dequantized codes).
 */
export async function runCase(
  exe: string,
  dir: string,
  a: Artifact,
  k: AttentionKernel,
  c: Case,
  seed: number,
  refInputs?: (p: Problem) => Pick<Problem, 'q' | 'k'>,
): Promise<number> {
  const s = k.schedule;
  const random = rng(seed);
  const draw = (n: number, lo = -128, hi = 128): Float64Array =>
    Float64Array.from({ length: n }, () => Math.round(lo + random() * (hi - lo)) / 64);
  const tensors: Record<string, number[]> = {};
  const params = Object.fromEntries(k.params.map((p) => [p.name, c.params?.[p.name] ?? p.default ?? 0]));
  const p: Problem = {
    ...c,
    qOffset: c.qOffset ?? c.Nk - c.Nq,
    kOffset: c.kOffset ?? 0,
    scale: 1 / Math.sqrt(s.headDim),
    q: draw(c.B * c.H * c.Nq * s.headDim),
    k: draw(c.B * c.Hkv * c.Nk * s.headDim),
    v: draw(c.B * c.Hkv * c.Nk * s.valueDim),
    params,
    tensors,
  };
  for (const t of k.tensors) {
    const n = t.dims.reduce((acc, d) => acc * dimValue(d, p), 1);
    // i32 tensors: sorted segment ids (document-like runs of 1..12); f32: small values.
    let id = 0;
    let left = 0;
    tensors[t.name] = Array.from({ length: n }, () => {
      if (t.dtype === 'f32') return Math.round(random() * 64) / 64;
      if (left-- <= 0) [id, left] = [id + 1, Math.floor(random() * 12)];
      return id;
    });
  }
  const manifest = JSON.parse(a.files![`${k.name}.json`]!);
  const caseDir = join(dir, `case-${seed}`);
  mkdirSync(caseDir, { recursive: true });
  const spec: string[] = [];
  const file = (name: string, bytes: Uint8Array): string => {
    const path = join(caseDir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const sizeOf: Record<string, number> = {
    out: c.B * c.H * c.Nq * s.valueDim * (sharedStorage(k.formats) === 'f32' ? 4 : 2),
    lse: c.B * c.H * c.Nq * 4,
  };
  for (const f of manifest.args.fields as ArgsField[]) {
    if (f.role === 'q' || f.role === 'k' || f.role === 'v') {
      const bytes = encode(p[f.role], sharedStorage(k.formats));
      spec.push(`in ${f.offset} ${bytes.length} ${file(f.role, bytes)}`);
    } else if (f.role === 'out' || f.role === 'lse') {
      spec.push(`out ${f.offset} ${sizeOf[f.role]} ${join(caseDir, `${f.role}.out`)}`);
    } else if (f.role === 'tensor') {
      const t = k.tensors.find((x) => x.name === f.name)!;
      const arr = t.dtype === 'i32' ? new Int32Array(tensors[f.name]!) : new Float32Array(tensors[f.name]!);
      spec.push(`in ${f.offset} ${arr.byteLength} ${file(f.name, new Uint8Array(arr.buffer))}`);
    } else if (f.role === 'stride' || f.role === 'qo_stride') {
      spec.push(packedStrideLine(f, k, c)!);
    } else if (f.role === 'summary') {
      const t = k.tensors.find((x) => `${x.name}_summary` === f.name)!;
      const blocks = Math.ceil(dimValue(t.dims[0]!, p) / s.summaryBlock);
      spec.push(`out ${f.offset} ${8 * blocks} ${join(caseDir, `${f.name}.out`)}`);
    } else {
      const v =
        f.role === 'param'
          ? params[f.name]!
          : (({ q_offset: p.qOffset, k_offset: p.kOffset, scale: p.scale } as Record<string, number>)[
              f.name
            ] ?? (c as unknown as Record<string, number>)[f.name]!);
      spec.push(`${f.ctype} ${f.offset} ${v}`);
    }
  }
  const identity = k.score.op === 'var' && k.score.arg === 'score';
  spec.push(`qscale ${p.scale * (identity ? Math.LOG2E : 1)}`);
  a.entryPoints.forEach((e, i) => {
    if (e.role === 'summary') {
      const t = k.tensors.find((x) => x.name === e.tensor)!;
      const blocks = Math.ceil(dimValue(t.dims[0]!, p) / s.summaryBlock);
      if (blocks > 0) spec.push(`launch ${i} ${Math.ceil(blocks / 8)} 1 1 256 0`);
    } else if (c.Nq > 0) {
      spec.push(
        `launch ${i} ${Math.ceil(c.Nq / s.blockQ)} ${c.H} ${c.B} ${s.threads} ${manifest.sharedBytes}`,
      );
    }
  });
  const specPath = join(caseDir, 'spec.txt');
  writeFileSync(specPath, spec.join('\n') + '\n');
  await runEmulation(exe, specPath);

  const ref = referenceAttention(k, refInputs ? { ...p, ...refInputs(p) } : p);
  const out = decode(new Uint8Array(readFileSync(join(caseDir, 'out.out'))), sharedStorage(k.formats));
  const lse = new Float32Array(new Uint8Array(readFileSync(join(caseDir, 'lse.out'))).buffer);
  const tol = sharedStorage(k.formats) === 'f32' ? 2e-5 : sharedStorage(k.formats) === 'f16' ? 2e-3 : 1.6e-2;
  let maxOut = 0;
  let maxLse = 0;
  for (let i = 0; i < out.length; i++)
    maxOut = Math.max(maxOut, Math.abs(out[i]! - ref.out[i]!) || (Number.isNaN(out[i]) ? Infinity : 0));
  for (let i = 0; i < lse.length; i++) {
    if (ref.lse[i] === -Infinity) {
      expect(lse[i], `${c.label}: lse of empty row ${i}`).toBe(-Infinity);
      expect(
        out.slice(i * s.valueDim, (i + 1) * s.valueDim).every((x) => x === 0),
        `${c.label}: out of empty row ${i}`,
      ).toBe(true);
    } else
      maxLse = Math.max(maxLse, Math.abs(lse[i]! - ref.lse[i]!) || (Number.isNaN(lse[i]) ? Infinity : 0));
  }
  expect(maxOut, `${c.label}: max |out - ref|`).toBeLessThan(tol);
  expect(maxLse, `${c.label}: max |lse - ref|`).toBeLessThan(5e-5);
  return ref.lse.filter((x) => x === -Infinity).length;
}
