// Random programs whose masks have one-sided parts: subexpressions that depend on the key only
// (`doc[k]`, `flags[b, k]`, `k / w`, f32 `ks[k] * c`) or on the query only (`qt[b, h, q]`,
// `float(q % 5) * 0.25`, `b != h`), which fuse's hoisting plan lifts out of the element loop and
// the tensor-core backward's dK/dV kernels keep in shared memory (codegen/cuda/backward-mask-
// hoists.ts). The forms cover what arbProgram rarely draws there: f32 and bool parts, parts reading
// 1-, 2- and 3-D tensors and params, parts nested in each other, a query part inside a key part
// (`k / max(w, 1)`), key parts reading h (left per element), parts that read neither position.
import fc from 'fast-check';
import { rng } from '../../src/runtime/inputs.js';
import type { Shape, TensorValue } from './arbitraries.js';

type Arb = fc.Arbitrary<string>;

const div = fc.constantFrom('2', '3', '-3', '5', 'w', 'max(w, 1)');
const mod = fc.constantFrom('2', '3', '4', '7', 'w');

/** Int parts over the key only; some read h or a query-only part inside them. */
const keyInt: Arb = fc.oneof(
  fc.constant('doc[k]'),
  fc.constant('keep[k]'),
  fc.constant('flags[b, k]'),
  div.map((d) => `k / ${d}`),
  mod.map((m) => `k % ${m}`),
  fc.constant('(k + h) % 3'),
  fc.constant('doc[k / 2]'),
  fc.constant('doc[clamp(k - doc[k], 0, 40)]'),
  fc.constant('int(ks[k] * 2.0)'),
  fc.constant('doc[k] + b * 2'),
);

/** f32 parts over the key only (the last reads h: per element). */
const keyF32: Arb = fc.constantFrom('ks[k]', 'float(k % 7) * 0.5', 'ks[k] * c', 'table[h, k % 16]');

/** Int parts over the query only; the last ones do not read q at all. */
const queryInt: Arb = fc.oneof(
  fc.constant('doc[q]'),
  fc.constant('qt[b, h, q]'),
  div.map((d) => `q / ${d}`),
  mod.map((m) => `q % ${m}`),
  fc.constant('qt[b, h, q] + h'),
  fc.constant('b + h'),
  fc.constant('w + 1'),
);

const queryF32: Arb = fc.constantFrom('float(q % 5) * 0.25', 'slopes[h] * float(q % 3) * 8.0', 'c * 0.5');

const cmp = fc.constantFrom('<', '<=', '>', '>=', '==', '!=');
const small = fc.integer({ min: -2, max: 6 });

/** A comparison with one-sided parts on one or both sides, or a plain relative-position one. */
const atom: Arb = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(queryInt, cmp, keyInt).map(([a, o, b]) => `${a} ${o} ${b}`) },
  {
    weight: 2,
    arbitrary: fc.tuple(queryInt, keyInt, cmp, small).map(([a, b, o, n]) => `${a} - ${b} ${o} ${n}`),
  },
  { weight: 2, arbitrary: fc.tuple(queryF32, cmp, keyF32).map(([a, o, b]) => `${a} ${o} ${b}`) },
  { weight: 1, arbitrary: fc.tuple(keyInt, cmp, small).map(([a, o, n]) => `${a} ${o} ${n}`) },
  { weight: 1, arbitrary: fc.tuple(queryInt, cmp, small).map(([a, o, n]) => `${a} ${o} ${n}`) },
  { weight: 1, arbitrary: fc.tuple(keyF32, cmp).map(([a, o]) => `${a} ${o} 0.25`) },
  { weight: 1, arbitrary: fc.constantFrom('causal', 'q - k < 20', 'q - k >= -3', 'on') },
);

/** Atoms joined by && || ! and ?: to depth 2 (so tiles are partial, empty and full). */
const maskExpr: Arb = fc.oneof(
  atom,
  fc.tuple(atom, fc.constantFrom('&&', '||'), atom).map(([a, o, b]) => `(${a}) ${o} (${b})`),
  fc.tuple(atom, atom, atom).map(([c, a, b]) => `(${c}) ? (${a}) : (${b})`),
  atom.map((a) => `!(${a})`),
);

/** A score some programs carry: learnable params and tensors give the param/tensor gradient slots. */
const score = fc.constantFrom(
  'score * c',
  'score + slopes[h] * float(k - q) * 0.0625',
  'score + ks[k] * 0.125',
  'score + table[h, clamp(q - k, 0, 15)]',
);

const declarations: readonly (readonly [string, string])[] = [
  ['w', 'w: int = W'],
  ['c', 'c: f32 = C'],
  ['on', 'on: bool = ON'],
  ['doc', 'doc: i32[kv]'],
  ['keep', 'keep: i32[kv]'],
  ['flags', 'flags: i32[batch, kv]'],
  ['slopes', 'slopes: f32[heads]'],
  ['table', 'table: f32[heads, 16]'],
  ['ks', 'ks: f32[kv]'],
  ['qt', 'qt: i32[batch, heads, queries]'],
];

/** A program of one or two such masks and maybe a score; it declares only what it reads. */
export function arbSidedProgram(): fc.Arbitrary<string> {
  return fc
    .record({
      masks: fc.array(maskExpr, { minLength: 1, maxLength: 2 }),
      score: fc.option(score, { nil: undefined }),
      w: fc.integer({ min: -3, max: 9 }),
      c: fc.integer({ min: 1, max: 8 }),
      on: fc.boolean(),
    })
    .map((p) => {
      const body = [...(p.score ? [`score ${p.score}`] : []), ...p.masks.map((m) => `mask ${m}`)];
      const text = body.join('\n');
      const values: Record<string, string> = { W: String(p.w), C: (p.c / 4).toFixed(2), ON: String(p.on) };
      const params = declarations
        .filter(([name]) => new RegExp(`\\b${name}\\b`).test(text))
        .map(([, d]) => d.replace(/\b(W|C|ON)$/, (v) => values[v]!));
      return `attention sided(${params.join(', ')}) {\n${body.map((l) => `  ${l}`).join('\n')}\n}\n`;
    });
}

/**
 * Buffers for the tensors makeInputs has no values for: `ks: f32[kv]` (multiples of 1/8 in
 * [-1, 1]) and `qt: i32[batch, heads, queries]` (0..4).
 */
export function sidedTensors(sh: Shape, seed: number): Record<string, TensorValue> {
  const r = rng(seed ^ 0x2545f491);
  return {
    ks: { data: Float32Array.from({ length: sh.Nk }, () => Math.floor(r() * 17 - 8) / 8), shape: [sh.Nk] },
    qt: {
      data: Int32Array.from({ length: sh.B * sh.Hq * sh.Nq }, () => Math.floor(r() * 5)),
      shape: [sh.B, sh.Hq, sh.Nq],
    },
  };
}
