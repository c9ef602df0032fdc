// Shared by the WGSL GPU tests: render a kernel, run it on the process's WebGPU device and
// compare with the dense float64 reference (src/runtime/reference.ts).
import type { TestSchedule } from '../support/hand-kernels.js';
import { afterEach, beforeEach, expect } from 'vitest';
import { renderWgsl } from '../../src/codegen/wgsl/index.js';
import type { Artifact } from '../../src/codegen/artifact.js';
import { Graph, type Node } from '../../src/ir/graph.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { Op } from '../../src/ir/ops.js';
import { compareArrays, type Agreement } from '../../src/runtime/compare.js';
import { fromF16, toF16 } from '../../src/runtime/f16.js';
import { randomNormal, rng } from '../../src/runtime/inputs.js';
import { referenceAttention, type RefPredicates } from '../../src/runtime/reference.js';
import { fullKernel } from '../support/hand-kernels.js';
import {
  createKernel,
  deviceLimits,
  getDevice,
  type RunInputs,
  type RunResult,
} from '../../src/runtime/webgpu.js';

export const meta = { sourceHash: 'test', scheduleHash: 'test' };

export function render(kernel: AttentionKernel): Artifact {
  return renderWgsl(kernel, meta);
}

export function withSchedule(base: TestSchedule, over: Partial<TestSchedule>): TestSchedule {
  return Object.freeze({ ...base, ...over });
}

export interface Case {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly seed?: number;
  /** Inputs: 'normal' N(0, 1); 'int' integers in [-r, r] (exact scores in f32 for small D). */
  readonly values?: { kind: 'normal' } | { kind: 'int'; range: number };
  readonly tensors?: Record<string, Int32Array | Float32Array>;
  readonly params?: Record<string, number | boolean>;
  readonly qOffset?: number;
  readonly kOffset?: number;
  readonly scale?: number;
}

export interface Outcome {
  readonly res: RunResult;
  readonly ref: ReturnType<typeof referenceAttention>;
  readonly out: Agreement;
  readonly lse: Agreement | undefined;
}

function values(n: number, rand: () => number, spec: Case['values']): Float32Array {
  if (spec?.kind === 'int') {
    const r = spec.range;
    return Float32Array.from({ length: n }, () => Math.floor(rand() * (2 * r + 1)) - r);
  }
  return randomNormal(n, rand);
}

export type WgslEngine = 'row' | 'coop';
let engine: WgslEngine = 'row';

/**
 * runCase renders for `e` in each test of the calling describe block, and each test ends back on
 * 'row': with modules shared between the files of a worker (vitest.config.ts), this module outlives
 * the file, so no later test or file may inherit the engine.
 */
export function runOnEngine(e: WgslEngine): void {
  beforeEach(() => {
    engine = e;
  });
  afterEach(() => {
    engine = 'row';
  });
}

/**
 * `kernel` on the current engine. Coop: the same tiles with 4 lanes per row and 2 rows per
 * invocation (8-row tiles become 16: lavapipe compiles those much faster), subgroup reductions
 * where the device has them. Kernels the coop engine does not run (all-empty, routed) stay as
 * they are.
 */
export function onEngine(kernel: AttentionKernel, subgroups: boolean): AttentionKernel {
  const empty = kernel.tiles.kind === 'static' && kernel.tiles.value === 'empty';
  if (engine === 'row' || empty || kernel.routing) return kernel;
  const blockQ = Math.max(16, kernel.schedule.blockQ);
  const schedule = {
    ...kernel.schedule,
    blockQ,
    threads: 2 * blockQ,
    wgslEngine: 'coop' as const,
    subgroups,
  };
  return { ...kernel, schedule: Object.freeze(schedule) };
}

/** Runs `kernel` on `c` (debug mode: outputs poisoned first) and compares with the reference. */
export async function runCase(rowKernel: AttentionKernel, c: Case, pred: RefPredicates): Promise<Outcome> {
  const device = await getDevice();
  const limits = deviceLimits(device);
  const kernel = onEngine(rowKernel, limits.subgroups === true);
  const artifact = renderWgsl(kernel, meta, limits);
  const s = kernel.schedule;
  const rand = rng(c.seed ?? 1);
  let q = values(c.B * c.H * c.Nq * s.headDim, rand, c.values);
  let k = values(c.B * c.Hkv * c.Nk * s.headDim, rand, c.values);
  let v = values(c.B * c.Hkv * c.Nk * s.valueDim, rand, c.values);
  const inputs: RunInputs = { q, k, v, B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
  if (kernel.formats.q.dtype === 'f16') {
    // The reference sees exactly the values the kernel stores.
    [inputs.q, inputs.k, inputs.v] = [toF16(q), toF16(k), toF16(v)];
    [q, k, v] = [fromF16(inputs.q), fromF16(inputs.k), fromF16(inputs.v)];
  }
  if (c.tensors) inputs.tensors = c.tensors;
  if (c.params) inputs.params = c.params;
  if (c.qOffset !== undefined) inputs.qOffset = c.qOffset;
  if (c.kOffset !== undefined) inputs.kOffset = c.kOffset;
  if (c.scale !== undefined) inputs.scale = c.scale;
  const gpu = await createKernel(device, artifact, { debug: true });
  let res: RunResult;
  try {
    res = await gpu.run(inputs);
  } finally {
    gpu.destroy();
  }
  const ref = referenceAttention(
    {
      q,
      k,
      v,
      B: c.B,
      Hq: c.H,
      Hkv: c.Hkv,
      Nq: c.Nq,
      Nk: c.Nk,
      D: s.headDim,
      Dv: s.valueDim,
      ...(c.qOffset !== undefined ? { qOffset: c.qOffset } : {}),
      ...(c.kOffset !== undefined ? { kOffset: c.kOffset } : {}),
      ...(c.scale !== undefined ? { scale: c.scale } : {}),
    },
    pred,
  );
  return {
    res,
    ref,
    out: compareArrays(res.out, ref.out, ref.outScale),
    lse: res.lse ? compareArrays(res.lse, ref.lse, 1) : undefined,
  };
}

/** Asserts agreement within `tol` (norm-wise relative error) and no NaN anywhere. */
export function expectAgreement(o: Outcome, tol: number, what = ''): void {
  expect(o.out.nanCount, `NaN in out ${what}`).toBe(0);
  expect(o.out.relError, `out ${what}`).toBeLessThanOrEqual(tol);
  if (o.lse) {
    expect(o.lse.nanCount, `NaN in lse ${what}`).toBe(0);
    expect(o.lse.relError, `lse ${what}`).toBeLessThanOrEqual(tol);
  }
}

/** Floor division / modulo with x/0 = x%0 = 0 (docs/LANGUAGE.md). */
export const floorDiv = (a: number, b: number): number => (b === 0 ? 0 : Math.floor(a / b) | 0);
export const floorMod = (a: number, b: number): number => (b === 0 ? 0 : a - b * Math.floor(a / b));

/** Sorted random segment ids of length n (documents), `segments` on average. */
export function randomDocs(n: number, segments: number, seed: number): Int32Array {
  const rand = rng(seed);
  const out = new Int32Array(n);
  let id = 0;
  for (let i = 1; i < n; i++) {
    if (rand() < segments / n) id++;
    out[i] = id;
  }
  return out;
}

/** A kernel that uses every op of the graph IR (for validation and compile checks). */
export function everyOpKernel(): AttentionKernel {
  const g = new Graph();
  const [q, k, h, s] = [g.var('q'), g.var('k'), g.var('h'), g.var('score')];
  const i = (op: Op, ...src: Node[]) => g.node(op, 'i32', src);
  const f = (op: Op, ...src: Node[]) => g.node(op, 'f32', src);
  const b = (op: Op, ...src: Node[]) => g.node(op, 'bool', src);
  const ints = [Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MOD, Op.MIN, Op.MAX].map((op) => i(op, q, k));
  const floats = [Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MOD, Op.MIN, Op.MAX].map((op) => f(op, s, g.const(2.5)));
  const unary = [Op.EXP, Op.LOG, Op.EXP2, Op.LOG2, Op.SQRT, Op.TANH, Op.FLOOR, Op.ABS, Op.NEG].map((op) =>
    f(op, s),
  );
  const cmp = [Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE].map((op) => b(op, q, k));
  const allInts = [...ints, i(Op.NEG, q), i(Op.ABS, k), g.const(-2147483648), g.node(Op.CAST, 'i32', [s])];
  const intSum = allInts.reduce((a, x) => i(Op.ADD, a, x));
  const anyCmp = cmp.reduce((a, x) => b(Op.OR, a, b(Op.AND, x, b(Op.NOT, x))));
  const fl = [...floats, ...unary, g.node(Op.CAST, 'f32', [intSum]), g.node(Op.CAST, 'f32', [anyCmp])];
  const extra = [g.const(Infinity, 'f32'), g.const(-0.1), g.node(Op.PARAM, 'f32', [], 'x'), g.var('D')];
  const score = [...fl, ...extra.map((x) => (x.dtype === 'i32' ? g.node(Op.CAST, 'f32', [x]) : x))].reduce(
    (a, x) => f(Op.ADD, a, x),
  );
  const load = g.node(Op.LOAD, 'f32', [h, q], 'bias');
  const kernel: AttentionKernel = {
    ...fullKernel(),
    graph: g,
    score: g.node(Op.SELECT, 'f32', [anyCmp, score, load]),
    mask: b(Op.NE, g.node(Op.PARAM, 'bool', [], 'on'), b(Op.LT, q, g.node(Op.PARAM, 'i32', [], 'n'))),
    tiles: { kind: 'static', value: 'partial' },
    params: [
      { name: 'x', dtype: 'f32', default: 1 },
      { name: 'on', dtype: 'bool', default: 1 },
      { name: 'n', dtype: 'i32', default: 4 },
    ],
    tensors: [
      {
        name: 'bias',
        dtype: 'f32',
        dims: [
          { kind: 'size', name: 'H' },
          { kind: 'param', name: 'n' },
        ],
      },
    ],
  };
  return kernel;
}
