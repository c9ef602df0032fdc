// A tiny pattern language for rewrite rules, so rules are data (pattern → replacement) rather
// than nested ifs. A pattern matches a node's op and, recursively, its sources; named captures
// bind nodes, and a name used twice must bind the same (hash-consed, so structurally equal) node.
import type { Graph, Node } from './graph.js';
import { Op } from './ops.js';

export type Pattern =
  | { readonly kind: 'any'; readonly name?: string; readonly where?: (n: Node) => boolean }
  | { readonly kind: 'const'; readonly name?: string; readonly value?: number | boolean }
  | {
      readonly kind: 'op';
      readonly ops: readonly Op[];
      readonly src: readonly Pattern[];
      readonly name?: string;
    };

export type Bindings = Record<string, Node>;

/** Any node, captured as `name`. */
export const X = (name: string, where?: (n: Node) => boolean): Pattern =>
  where ? { kind: 'any', name, where } : { kind: 'any', name };
/** A constant (optionally a specific value), captured as `name`. */
export const C = (name?: string, value?: number | boolean): Pattern => ({
  kind: 'const',
  ...(name === undefined ? {} : { name }),
  ...(value === undefined ? {} : { value }),
});
/** An op (or any of several) with source patterns. */
export const P = (op: Op | readonly Op[], ...src: Pattern[]): Pattern => ({
  kind: 'op',
  ops: typeof op === 'string' ? [op] : op,
  src,
});

function bind(b: Bindings, name: string | undefined, n: Node): boolean {
  if (name === undefined) return true;
  const prev = b[name];
  if (prev) return prev === n;
  b[name] = n;
  return true;
}

export function match(p: Pattern, n: Node, b: Bindings = {}): Bindings | undefined {
  switch (p.kind) {
    case 'any':
      if (p.where && !p.where(n)) return undefined;
      return bind(b, p.name, n) ? b : undefined;
    case 'const':
      if (n.op !== Op.CONST) return undefined;
      if (p.value !== undefined && n.arg !== p.value) return undefined;
      return bind(b, p.name, n) ? b : undefined;
    case 'op':
      if (!p.ops.includes(n.op) || p.src.length !== n.src.length) return undefined;
      for (let i = 0; i < p.src.length; i++) if (!match(p.src[i]!, n.src[i]!, b)) return undefined;
      return bind(b, p.name, n) ? b : undefined;
  }
}

export interface Rule {
  readonly name: string;
  readonly pattern: Pattern;
  /** Returns the replacement, or undefined when a side condition fails. */
  readonly rewrite: (b: Bindings, g: Graph, n: Node) => Node | undefined;
}

export const rule = (name: string, pattern: Pattern, rewrite: Rule['rewrite']): Rule => ({
  name,
  pattern,
  rewrite,
});

/** Applies the first matching rule, repeatedly, until none matches (a local fixpoint). */
export function applyRules(rules: readonly Rule[], g: Graph, n: Node, limit = 64): Node {
  let cur = n;
  for (let step = 0; step < limit; step++) {
    let next: Node | undefined;
    for (const r of rules) {
      const b = match(r.pattern, cur);
      if (b && (next = r.rewrite(b, g, cur)) !== undefined && next !== cur) break;
      next = undefined;
    }
    if (!next) return cur;
    cur = next;
  }
  return cur;
}
