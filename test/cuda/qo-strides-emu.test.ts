// q and out strides (src/codegen/cuda/qo-rows.ts) on the CUDA CPU emulator: the SIMT prefill engine
// reading q from, and writing out into, random layouts whose last dim is contiguous — BNHD views,
// heads-first permutations, a capacity along tokens, padded rows — gives bit for bit the result of
// the packed BHND call. Every q element the layout does not address is NaN (a read outside poisons
// the output) and every out element it does not address holds a sentinel that must survive.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, type Compiled } from '../../src/compile.js';
import { rng } from '../../src/runtime/inputs.js';
import { buildEmulation } from './emu.js';
import { EmuSpec, type ArgField } from './emu-call.js';
import { scratchDir } from './support.js';

const D = 16;
const SENTINEL = 777.25;
const dir = scratchDir('qo-strides-emu');
const seed0 = process.env.CI ? 20261203 : Math.floor(Math.random() * 2 ** 31);

type Kind = 'packed' | 'bnhd' | 'hbnd' | 'capacity' | 'padded';
const KINDS: readonly Kind[] = ['packed', 'bnhd', 'hbnd', 'capacity', 'padded'];

interface Shape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
}

/** Element strides [batch, head, row] and buffer length of a [B, H, N, W] tensor of this kind. */
interface Layout {
  readonly strides: readonly [number, number, number];
  readonly length: number;
}

function layoutOf(kind: Kind, B: number, H: number, N: number, W: number, r: () => number): Layout {
  switch (kind) {
    case 'packed':
      return { strides: [H * N * W, N * W, W], length: B * H * N * W };
    case 'bnhd':
      return { strides: [N * H * W, W, H * W], length: B * N * H * W };
    case 'hbnd':
      return { strides: [N * W, B * N * W, W], length: H * B * N * W };
    case 'capacity': {
      const C = N + 1 + Math.floor(r() * 5);
      return { strides: [H * C * W, C * W, W], length: B * H * C * W };
    }
    case 'padded': {
      const R = W + 4 * (1 + Math.floor(r() * 2)); // rows W + 4 or W + 8 apart: still 16-byte aligned
      return { strides: [H * N * R, N * R, R], length: B * H * N * R };
    }
  }
}

/** Every element index of the [B, H, N, W] tensor in a layout, in logical (row-major) order. */
function* addressed(l: Layout, B: number, H: number, N: number, W: number): Generator<number> {
  const [sb, sh, sn] = l.strides;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let n = 0; n < N; n++) for (let w = 0; w < W; w++) yield b * sb + h * sh + n * sn + w;
}

interface Run {
  readonly out: Float32Array; // logical [B, H, Nq, D]
  readonly lse: Float32Array;
  readonly untouched: boolean; // every out element outside the layout kept the sentinel
}

async function prefill(
  c: Compiled,
  exe: string,
  caseDir: string,
  s: Shape,
  inputs: { q: Float32Array; k: Float32Array; v: Float32Array },
  qLayout: Layout,
  outLayout: Layout,
): Promise<Run> {
  const k = c.kernel;
  const manifest = JSON.parse(c.artifact.files![`${k.name}.json`]!);
  const spec = new EmuSpec(caseDir);
  const qPhys = new Float32Array(qLayout.length).fill(Number.NaN);
  let i = 0;
  for (const at of addressed(qLayout, s.B, s.H, s.Nq, D)) qPhys[at] = inputs.q[i++]!;
  const outPhys = new Float32Array(outLayout.length).fill(SENTINEL);
  const sizes: Record<string, number> = { ...s, q_offset: s.Nk - s.Nq, k_offset: 0 };
  const call = {
    ...s,
    qOffset: s.Nk - s.Nq,
    kOffset: 0,
    scale: Math.fround(1 / Math.sqrt(D)),
    q: qPhys,
    k: inputs.k,
    v: inputs.v,
    params: {},
    tensors: {},
  };
  for (const f of manifest.args.fields as ArgField[]) {
    if (f.role === 'qo_stride') {
      const l = f.name.startsWith('q_') ? qLayout : outLayout;
      spec.line(`i64 ${f.offset} ${l.strides['bhn'.indexOf(f.name.at(-1)!)]!}`);
    } else if (f.role === 'out') spec.input('out.bin', outPhys, f.offset, 'io');
    else if (spec.commonField(f, call, k)) continue;
    else if (f.name in sizes) spec.line(`i32 ${f.offset} ${sizes[f.name]}`);
    else throw new Error(`q/out strides emulation: unknown args field ${f.field} (${f.role})`);
  }
  spec.qscale(k, call.scale);
  const entry = c.artifact.entryPoints.findIndex((e) => e.role === 'attention');
  spec.line(
    `launch ${entry} ${Math.ceil(s.Nq / k.schedule.blockQ)} ${s.H} ${s.B} ${k.schedule.threads} ${manifest.sharedBytes}`,
  );
  await spec.run(exe);
  const written = new Float32Array(spec.read('out.bin'));
  const out = new Float32Array(s.B * s.H * s.Nq * D);
  const mine = new Set<number>();
  let j = 0;
  for (const at of addressed(outLayout, s.B, s.H, s.Nq, D)) {
    out[j++] = written[at]!;
    mine.add(at);
  }
  const untouched = written.every((x, at) => mine.has(at) || x === SENTINEL);
  return { out, lse: new Float32Array(spec.read('lse.bin')), untouched };
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

describe(`q and out strides on the CUDA emulator (seed ${seed0})`, () => {
  it('SIMT prefill: random q/out layouts equal the packed call bit for bit', async () => {
    const c = compile('attention qo_strided() {\n  mask causal && q - k < 40\n}', {
      target: 'cuda',
      headDim: D,
      dtype: 'f32',
      schedule: { engine: 'simt', blockQ: 8, blockK: 16, threads: 16 },
    });
    const kdir = join(dir, c.kernel.name);
    mkdirSync(kdir, { recursive: true });
    const exe = await buildEmulation(kdir, c.artifact, c.kernel);
    const r = rng(seed0);
    for (let n = 0; n < 6; n++) {
      const Hkv = 1 + Math.floor(r() * 2);
      const s: Shape = {
        B: 1 + Math.floor(r() * 2),
        H: Hkv * (1 + Math.floor(r() * 2)),
        Hkv,
        Nk: 1 + Math.floor(r() * 60),
        Nq: 0,
      };
      const shape = { ...s, Nq: 1 + Math.floor(r() * s.Nk) };
      const fill = (len: number) =>
        Float32Array.from({ length: len }, () => (Math.floor(r() * 257) - 128) / 128);
      const inputs = {
        q: fill(shape.B * shape.H * shape.Nq * D),
        k: fill(shape.B * shape.Hkv * shape.Nk * D),
        v: fill(shape.B * shape.Hkv * shape.Nk * D),
      };
      const packed = layoutOf('packed', shape.B, shape.H, shape.Nq, D, r);
      const caseDir = (name: string) => {
        const d = join(kdir, `case-${n}-${name}`);
        mkdirSync(d, { recursive: true });
        return d;
      };
      const base = await prefill(c, exe, caseDir('packed'), shape, inputs, packed, packed);
      expect(base.out.some(Number.isNaN), 'the packed call reads no NaN').toBe(false);
      // Cases 0..4 give q and out every kind once (never both packed); the last is drawn.
      const pick = (shift: number) => KINDS[n < 5 ? (n + shift) % 5 : Math.floor(r() * 5)]!;
      const qKind = pick(1);
      const outKind = pick(3);
      const where = `${JSON.stringify(shape)} q ${qKind}, out ${outKind}`;
      const got = await prefill(
        c,
        exe,
        caseDir(`${qKind}-${outKind}`),
        shape,
        inputs,
        layoutOf(qKind, shape.B, shape.H, shape.Nq, D, r),
        layoutOf(outKind, shape.B, shape.H, shape.Nq, D, r),
      );
      expect(got.untouched, `${where}: out elements outside the layout are untouched`).toBe(true);
      expect(Array.from(bits(got.out)), `${where}: out`).toEqual(Array.from(bits(base.out)));
      expect(Array.from(bits(got.lse)), `${where}: lse`).toEqual(Array.from(bits(base.lse)));
    }
  }, 600_000);
});
