// Property tests of the backward's math, no GPU: random score expressions and masks (the forward
// property test's generator) with
//  1. the compiler's symbolic derivatives (ir/derive.ts, evaluated in f32 by the IR interpreter)
//     against the float64 dual-number reference (reference-grad-ast.ts) and against central
//     finite differences of the reference's score value, at random points;
//  2. the dense gradient reference (dq, dk, dv, d params, d tensors) against finite differences
//     of L = Σ dO·O through the float64 forward reference.
// Points near a kink (min/max/abs/select switching branch within the step) are skipped: there
// the one-sided differences disagree, and so may f32 and float64 about the branch.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate, type InterpEnv } from '../../src/ir/interp.js';
import type { Partials } from '../../src/runtime/reference-grad-ast.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { rng } from '../../src/runtime/inputs.js';
import { arbProgram, makeInputs, type Shape } from '../support/arbitraries.js';
import { derived, evalEnv, f32TensorLengths, gradPredicates, type Derived } from './support.js';

const runs = Number(process.env.ATTNC_BACKWARD_PROPERTY_RUNS ?? 150);

const arbSmallShape: fc.Arbitrary<Shape> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    ratio: fc.integer({ min: 1, max: 2 }),
    Nq: fc.integer({ min: 1, max: 9 }),
    Nk: fc.integer({ min: 1, max: 9 }),
    qOffset: fc.option(fc.integer({ min: -4, max: 12 }), { nil: undefined }),
  })
  .map(({ ratio, ...s }) => ({ ...s, Hq: s.Hkv * ratio, D: 8, Dv: 8 }));

/** The IR's partials at one point, keyed as the dual reference keys them. */
function irPartials(d: Derived, env: InterpEnv): Map<string, number> {
  const out = new Map<string, number>([['score', evaluate(d.grad.dScore, env) as number]]);
  for (const p of d.grad.params) out.set(`$${p.name}`, evaluate(p.d, env) as number);
  for (const l of d.grad.loads) {
    const t = env.tensors![l.tensor]!;
    const idx = l.load.src.map((s) => evaluate(s, env) as number);
    if (idx.some((x, i) => x < 0 || x >= t.shape[i]!)) continue; // an out-of-range read is a constant 0
    const flat = idx.reduce((acc, x, i) => acc * t.shape[i]! + x, 0);
    const key = `${l.tensor}#${flat}`;
    out.set(key, (out.get(key) ?? 0) + (evaluate(l.d, env) as number));
  }
  return out;
}

const close = (a: number, b: number, tol: number): boolean => Math.abs(a - b) <= tol * (1 + Math.abs(b));

function samePartials(a: Partials, b: Partials, tol: number): boolean {
  for (const key of new Set([...a.keys(), ...b.keys()]))
    if (!close(a.get(key) ?? 0, b.get(key) ?? 0, tol)) return false;
  return true;
}

describe('the derived score derivatives', () => {
  it('agree with the float64 dual-number reference and with finite differences', () => {
    let compared = 0;
    fc.assert(
      fc.property(arbProgram(), arbSmallShape, fc.integer(), (decl, shape, seed) => {
        const d = derived(decl);
        const inputs = makeInputs(shape, seed);
        const env = evalEnv(d.decl, d.defaults, shape, inputs);
        const dual = gradPredicates(d.decl, env).score;
        const r = rng(seed ^ 0x5bd1e995);
        for (let n = 0; n < 12; n++) {
          const b = Math.floor(r() * shape.B);
          const h = Math.floor(r() * shape.Hq);
          const q = Math.floor(r() * shape.Nq) + (shape.qOffset ?? shape.Nk - shape.Nq);
          const k = Math.floor(r() * shape.Nk);
          const s = Math.fround(r() * 12 - 6);
          const ref = dual ? dual(s, b, h, q, k) : { value: s, partials: new Map([['score', 1]]) };
          // Skip kinks: the partials a small step either side must match the centre's.
          const eps = 1e-4;
          if (dual && !samePartials(dual(s - eps, b, h, q, k).partials, ref.partials, 1e-2)) continue;
          if (dual && !samePartials(dual(s + eps, b, h, q, k).partials, ref.partials, 1e-2)) continue;
          const ienv: InterpEnv = {
            vars: { ...env.sizes, b, h, q, k, score: s },
            params: env.params,
            tensors: env.tensors,
          };
          const where = `\n${d.source}\nat b=${b} h=${h} q=${q} k=${k} score=${s}`;
          const value = evaluate(d.score, ienv) as number;
          if (!close(value, ref.value, 1e-4)) continue; // f32 and float64 took different branches
          const got = irPartials(d, ienv);
          for (const key of new Set([...got.keys(), ...ref.partials.keys()]))
            expect(got.get(key) ?? 0, `∂/∂${key}${where}`).toBeCloseTo(ref.partials.get(key) ?? 0, 3);
          // Finite differences of the float64 value (h = 1e-5: error ~1e-10 on smooth f).
          if (dual) {
            const fd = (dual(s + 1e-5, b, h, q, k).value - dual(s - 1e-5, b, h, q, k).value) / 2e-5;
            expect(
              close(got.get('score')!, fd, 1e-3),
              `∂/∂score ${got.get('score')} vs FD ${fd}${where}`,
            ).toBe(true);
          }
          compared++;
        }
      }),
      { numRuns: runs },
    );
    expect(compared).toBeGreaterThan(runs * 4);
  });
});

describe('the dense gradient reference', () => {
  it('matches finite differences of Σ dO·O (+ Σ dLse·lse) for q, k, v, params and tensors', () => {
    fc.assert(
      fc.property(arbProgram({ depth: 2 }), arbSmallShape, fc.integer(), (decl, shape, seed) => {
        const d = derived(decl);
        const inputs = makeInputs(shape, seed);
        const r = rng(seed ^ 0x1234567);
        const dO = Float64Array.from({ length: shape.B * shape.Hq * shape.Nq * shape.Dv }, () => r() * 2 - 1);
        // Half the draws also put a gradient on lse (rows with no allowed key: lse −∞, no gradient).
        const dLse =
          seed & 1
            ? Float64Array.from({ length: shape.B * shape.Hq * shape.Nq }, () => r() * 2 - 1)
            : undefined;
        const lossWith = (edit: (x: ReturnType<typeof clone>) => void): number => {
          const x = clone();
          edit(x);
          const env = evalEnv(d.decl, x.params, shape, x.inputs);
          const pr = gradPredicates(d.decl, env);
          const score = pr.score;
          const fwd = referenceAttention(
            { ...shape, q: x.inputs.q, k: x.inputs.k, v: x.inputs.v },
            {
              ...(pr.mask ? { mask: pr.mask } : {}),
              ...(score ? { score: (s, ...a) => score(s, ...a).value } : {}),
            },
          );
          const viaOut = fwd.out.reduce((acc, o, i) => acc + o * dO[i]!, 0);
          if (!dLse) return viaOut;
          return fwd.lse.reduce((acc, l, i) => acc + (l === -Infinity ? 0 : l * dLse[i]!), viaOut);
        };
        // Float64 copies, so a step of 1e-6 is not rounded away.
        const clone = () => ({
          params: { ...d.defaults },
          inputs: {
            q: Float64Array.from(inputs.q),
            k: Float64Array.from(inputs.k),
            v: Float64Array.from(inputs.v),
            tensors: Object.fromEntries(
              Object.entries(inputs.tensors).map(([n, t]) => [
                n,
                { data: t.data instanceof Int32Array ? t.data : Float64Array.from(t.data), shape: t.shape },
              ]),
            ),
          } as unknown as typeof inputs,
        });
        const env = evalEnv(d.decl, d.defaults, shape, inputs);
        const grads = referenceGradients(
          { ...shape, q: inputs.q, k: inputs.k, v: inputs.v },
          gradPredicates(d.decl, env),
          dO,
          f32TensorLengths(d.decl, env),
          dLse,
        );
        const stepH = 1e-6;
        const check = (
          label: string,
          analytic: number,
          edit: (x: ReturnType<typeof clone>, by: number) => void,
        ) => {
          const up = lossWith((x) => edit(x, stepH));
          const down = lossWith((x) => edit(x, -stepH));
          const mid = lossWith(() => {});
          const fwdD = (up - mid) / stepH;
          const bwdD = (mid - down) / stepH;
          // A kink within the step: the one-sided slopes differ. Central FD then averages them, off
          // the one-sided derivative by half their gap, so a gap above the assertion's 1e-5 is a kink
          // even where both slopes are small (max(c0, 1) at c0 = 1, slope 2.4e-5 on one side only).
          if (!close(fwdD, bwdD, 1e-3) || Math.abs(fwdD - bwdD) > 1e-5) return;
          const fd = (up - down) / (2 * stepH);
          expect(Math.abs(analytic - fd), `${label}: ${analytic} vs FD ${fd}\n${d.source}`).toBeLessThan(
            1e-5 * (1 + Math.abs(fd)),
          );
        };
        for (const [name, arr] of [
          ['q', grads.dq],
          ['k', grads.dk],
          ['v', grads.dv],
        ] as const) {
          if (arr.length === 0) continue;
          const i = Math.floor(r() * arr.length);
          check(`d${name}[${i}]`, arr[i]!, (x, by) => {
            (x.inputs[name] as unknown as Float64Array)[i]! += by;
          });
        }
        for (const p of d.params.filter((x) => x.dtype === 'f32'))
          check(`d$${p.name}`, grads.dParams.get(p.name) ?? 0, (x, by) => {
            x.params[p.name] = (x.params[p.name] as number) + by;
          });
        for (const [name, g] of grads.dTensors) {
          const i = Math.floor(r() * g.length);
          check(`d${name}[${i}]`, g[i]!, (x, by) => {
            (x.inputs.tensors[name as 'slopes'].data as unknown as Float64Array)[i]! += by;
          });
        }
      }),
      { numRuns: Math.ceil(runs / 2) },
    );
  });
});
