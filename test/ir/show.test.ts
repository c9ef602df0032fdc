// show() prints the IR as an s-expression for headers and diagnostics. The IR is a DAG whose tree
// can be exponentially larger (a product of 11 factors of q - k: tile predicates grow ~4x per
// factor): the printer stops at SHOW_LIMIT characters instead of walking the tree (that took 11 s
// and a 130 MB artifact).
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { Graph } from '../../src/ir/graph.js';
import { show, showAtMost, SHOW_LIMIT } from '../../src/ir/graph.js';
import { Op } from '../../src/ir/ops.js';

const factors = Array.from({ length: 11 }, (_, i) => `(q - k + ${i})`).join(' * ');
const source = `attention m() { mask ${factors} > 0 }`;

describe('show', () => {
  it('prints small expressions whole', () => {
    const g = new Graph();
    const q = g.node(Op.VAR, 'i32', [], 'q');
    const k = g.node(Op.VAR, 'i32', [], 'k');
    expect(show(g.node(Op.GE, 'bool', [q, k]))).toBe('(ge q k)');
  });

  it('cuts a DAG whose tree is huge at its limit', () => {
    const g = new Graph();
    let x = g.node(Op.VAR, 'i32', [], 'q');
    for (let i = 0; i < 40; i++) x = g.node(Op.ADD, 'i32', [x, x]); // a tree of 2^40 leaves
    const text = show(x);
    expect(text.length).toBeLessThanOrEqual(SHOW_LIMIT + 2);
    expect(text.endsWith(' …')).toBe(true);
    expect(showAtMost(x, 20)).toBe('(add (add (add (add  …');
  });

  it.each(['wgsl', 'cuda'] as const)(
    'a mask with an exponential tile predicate compiles to a small %s artifact',
    (target) => {
      const { artifact } = compile(source, { target });
      expect(artifact.code.length).toBeLessThan(400_000);
      expect(artifact.code).toContain('…');
    },
  );
});
