// Shared by the oracle tests (routing-*.test.ts, cuda/select.test.ts, decode-check.ts,
// property.test.ts): compiling and caching a WGSL kernel per program, the random case shape of
// the routing tests, judging a kernel's routing indices against the float64 oracle (exact, or a
// valid top-k at an f32 near-tie, DESIGN §2), and comparing out/lse with the reference.
import fc from 'fast-check';
import { expect } from 'vitest';
import { compile, type Compiled } from '../../src/compile.js';
import { verify } from '../../src/ir/verify.js';
import { declPredicates, declRouting, type EvalEnv } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { referenceAttention, type RefInputs, type RefPredicates } from '../../src/runtime/reference.js';
import {
  checkSelection,
  nearTieGap,
  referenceRouting,
  type RoutingResult,
  type RoutingSpec,
} from '../../src/runtime/reference-routing.js';
import {
  createKernel,
  deviceLimits,
  getDevice,
  type GpuKernel,
  type RunResult,
} from '../../src/runtime/webgpu.js';
import type { Inputs, Shape } from './arbitraries.js';

/** [source, head dim, tile]: each compiles once; shapes and counts vary per case. */
export type WgslProgram = readonly [string, number, number];

export interface WgslEntry {
  readonly c: Compiled;
  readonly gpu: GpuKernel;
}

/** Compiles program `i` for WGSL on first use (verifying the IR after every pass) and caches it. */
export function wgslKernels(
  programs: readonly WgslProgram[],
  file: string,
  engine: 'row' | 'coop' = 'row',
): { kernelFor: (i: number) => Promise<WgslEntry>; destroy: () => void } {
  const compiled = new Map<number, WgslEntry>();
  return {
    async kernelFor(i: number): Promise<WgslEntry> {
      const hit = compiled.get(i);
      if (hit) return hit;
      const [source, D, tile] = programs[i]!;
      const device = await getDevice();
      const c = compile(source, {
        target: 'wgsl',
        file,
        headDim: D,
        limits: deviceLimits(device),
        schedule: { blockQ: tile, threads: tile, blockK: tile },
        wgslEngine: engine,
        observe: (pass, ir) => expect(verify(ir), `IR after ${pass}`).toEqual([]),
      });
      const entry = { c, gpu: await createKernel(device, c.artifact, { debug: true }) };
      compiled.set(i, entry);
      return entry;
    },
    destroy(): void {
      for (const { gpu } of compiled.values()) gpu.destroy();
    },
  };
}

/** The fields every random routing case has. */
export interface BaseCase {
  readonly program: number;
  readonly B: number;
  readonly Hkv: number;
  readonly group: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly top: number;
  readonly f: number;
  readonly l: number;
  readonly seed: number;
}

/** A case with free query/key offsets (qOffset undefined: the runtime's default). */
export interface OffsetCase extends BaseCase {
  readonly qOffset: number | undefined;
  readonly kOffset: number;
}

export interface CaseBounds {
  readonly programs: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly top: readonly number[];
  readonly f: readonly number[];
  readonly l: readonly number[];
}

/** Random cases; `extra` fields are drawn between Nk and top. */
export function arbCase<E extends object>(
  o: CaseBounds,
  extra: { [K in keyof E]: fc.Arbitrary<E[K]> },
): fc.Arbitrary<BaseCase & E> {
  return fc.record({
    program: fc.integer({ min: 0, max: o.programs - 1 }),
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    group: fc.constantFrom(1, 1, 2, 3),
    Nq: fc.integer({ min: 1, max: o.Nq }),
    Nk: fc.integer({ min: 1, max: o.Nk }),
    ...extra,
    top: fc.constantFrom(...o.top),
    f: fc.constantFrom(...o.f),
    l: fc.constantFrom(...o.l),
    seed: fc.integer(),
  }) as unknown as fc.Arbitrary<BaseCase & E>;
}

/** The count params and force clause the routing tests' programs declare; the cases draw top, f, l. */
export const COUNT_PARAMS = 'top: int = 2, f: int = 0, l: int = 0';
export const FORCE_CLAUSE = 'force first(f) local(l)';

/** Random cases with query offsets in [−6, 40] or the default, and key offsets 0, 3 or 13. */
export function arbOffsetCase(o: CaseBounds): fc.Arbitrary<OffsetCase> {
  return arbCase<Pick<OffsetCase, 'qOffset' | 'kOffset'>>(o, {
    qOffset: fc.option(fc.integer({ min: -6, max: 40 }), { nil: undefined }),
    kOffset: fc.constantFrom(0, 0, 3, 13),
  });
}

const I32_MAX = 2147483647;

/**
 * One case in eight moved to the top of the positions: its queries and keys end within 20 of
 * `last` (2^31 − 1; CUDA's launcher keeps 1024 below it), where a block end (id + 1) · size or
 * k_offset + Nk is 2^31, a scan stepping past 2^31 − 1 wraps, and I32_MAX is a real id.
 */
export function sometimesAtTheTop(arb: fc.Arbitrary<OffsetCase>, last = I32_MAX): fc.Arbitrary<OffsetCase> {
  return arb.chain((t) =>
    fc.oneof(
      { weight: 7, arbitrary: fc.constant(t) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }))
          .map(([dq, dk]): OffsetCase => ({
            ...t,
            qOffset: last - t.Nq + 1 - dq,
            kOffset: last - t.Nk + 1 - dk,
          })),
      },
    ),
  );
}

/** Runs `check` on `runs` cases; the environment variable `seedVar` fixes fast-check's seed. */
export async function assertCases<T>(
  arb: fc.Arbitrary<T>,
  check: (t: T) => Promise<void>,
  runs: number,
  seedVar: string,
): Promise<void> {
  const seed = process.env[seedVar];
  await fc.assert(
    fc.asyncProperty(arb, (t) => check(t)),
    { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) },
  );
}

type TensorSlot = Compiled['kernel']['tensors'][number];

/** The shape of a kernel tensor slot under the call's sizes and params. */
export function slotShape(
  slot: TensorSlot,
  ps: Record<string, number>,
  sizes: { B: number; H: number; Hkv: number; Nq: number; Nk: number },
): number[] {
  return slot.dims.map((d) =>
    d.kind === 'literal' ? d.value : d.kind === 'param' ? ps[d.name]! : sizes[d.name],
  );
}

/** Cases executed against the oracle, and those whose indices were judged at a near-tie. */
export interface Tally {
  executed: number;
  nearTies: number;
}

export function logNearTies(name: string, tally: Tally): void {
  if (tally.nearTies > 0)
    console.log(`${name}: ${tally.nearTies} near-tie case(s) checked with checkSelection`);
}

export interface RoutingOracle {
  readonly inp: RefInputs;
  readonly pred: Required<RefPredicates>;
  readonly spec: RoutingSpec;
  readonly routing: RoutingResult;
}

/** The float64 oracle's predicates and routing of `decl` under `env`. */
export function routingOracle(c: Compiled, env: EvalEnv, inp: RefInputs): RoutingOracle {
  const pred = declPredicates(c.decl.decl, env);
  const spec = declRouting(c.decl.decl, env)!;
  return { inp, pred, spec, routing: referenceRouting(inp, spec, pred.mask) };
}

export interface RoutedRun {
  readonly indices?: Int32Array;
  readonly out: Float32Array;
  readonly lse?: Float32Array;
}

/**
 * The kernel's indices must equal the oracle's, except at an f32 near-tie, where every row must
 * still be a valid top-k (checkSelection) and the attention is compared with the oracle run on
 * the kernel's own selection (`own` overrides fields of that spec). Then out and lse must agree
 * to 1e-5.
 */
export function expectRoutedRun(
  o: RoutingOracle,
  res: RoutedRun,
  where: string,
  tally: Tally,
  opts: { own?: Partial<RoutingSpec>; onMismatch?: (got: Int32Array, routing: RoutingResult) => void } = {},
): void {
  const { inp, pred, spec, routing } = o;
  const got = res.indices!;
  expect(got.length, `indices length${where}`).toBe(routing.indices.length);
  let mask = routing.mask;
  if (!got.every((x, i) => x === routing.indices[i])) {
    // Only an f32 near-tie may reorder the top-k: the kernel's pick must still be a valid top-k.
    opts.onMismatch?.(got, routing);
    const gap = nearTieGap(routing);
    expect(
      gap.relative,
      `indices differ without a near-tie: got ${got.slice(0, 16)}, want ${routing.indices.slice(0, 16)}${where}`,
    ).toBeLessThan(1e-4);
    tally.nearTies++;
    for (let b = 0; b < inp.B; b++)
      for (let g = 0; g < routing.G; g++)
        for (let i = 0; i < inp.Nq; i++) {
          const at = ((b * routing.G + g) * inp.Nq + i) * routing.K;
          const row = got.subarray(at, at + routing.K);
          expect(checkSelection(routing, b, g, i, row, 1e-4), `row ${b},${g},${i}${where}`).toBeUndefined();
        }
    const own = { kind: 'from', indices: got, groups: routing.G, capacity: routing.K } as const;
    mask = referenceRouting(inp, { ...spec, source: own, ...opts.own }, pred.mask).mask;
  }
  const ref = referenceAttention(inp, { mask, score: pred.score });
  expectAgreement(res, ref, where, 1e-5, () => tally.executed++);
}

/** out (NaN-free) and lse (floor 1) within `tol` of the reference; `compared` runs once both are compared. */
export function expectAgreement(
  res: { readonly out: Float32Array; readonly lse?: Float32Array },
  ref: { readonly out: ArrayLike<number>; readonly lse: ArrayLike<number>; readonly outScale: number },
  where: string,
  tol: number,
  compared?: () => void,
): void {
  const out = compareArrays(res.out, ref.out, ref.outScale);
  const lse = compareArrays(res.lse!, ref.lse, 1);
  compared?.();
  expect(out.nanCount, `NaN in out${where}`).toBe(0);
  expect(out.relError, `out${where}`).toBeLessThanOrEqual(tol);
  expect(lse.relError, `lse${where}`).toBeLessThanOrEqual(tol);
}

/**
 * Runs `gpu` (compiled from `c`) on `inputs` at `shape` and evaluates the dense float64 reference
 * on the same inputs; `store` converts q/k/v to the kernel's storage type.
 */
export async function runDense(
  gpu: GpuKernel,
  c: Pick<Compiled, 'kernel' | 'decl'>,
  shape: Shape,
  inputs: Inputs,
  params: Record<string, number | boolean>,
  store: (x: Float32Array) => Float32Array | Uint16Array = (x) => x,
): Promise<{ res: RunResult; ref: ReturnType<typeof referenceAttention> }> {
  const tensors = Object.fromEntries(c.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name as 'doc']]));
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
  const res = await gpu.run({
    q: store(inputs.q),
    k: store(inputs.k),
    v: store(inputs.v),
    ...sizes,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.data])),
    params,
    ...(shape.qOffset !== undefined ? { qOffset: shape.qOffset } : {}),
    ...(shape.kOffset !== undefined ? { kOffset: shape.kOffset } : {}),
  });
  const pred = declPredicates(c.decl.decl, { params, tensors, sizes: { ...sizes, D: shape.D } });
  const ref = referenceAttention(
    {
      ...inputs,
      ...sizes,
      Hq: shape.Hq,
      D: shape.D,
      Dv: shape.Dv,
      qOffset: shape.qOffset,
      kOffset: shape.kOffset,
    },
    pred,
  );
  return { res, ref };
}
