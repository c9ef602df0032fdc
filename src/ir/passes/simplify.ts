// simplify: rewrite every expression of the program bottom-up with the rule table to a fixpoint.
import { rewrite, type Graph, type Node } from '../graph.js';
import { applyRules, type Rule } from '../pattern.js';
import { simplifyRules } from './simplify-rules.js';

// A rule may build new inner nodes (reassociation) that other rules can then fold, so whole-tree
// sweeps repeat until nothing changes; hash-consing makes "nothing changed" a pointer compare.
export function simplifyExpr(g: Graph, root: Node, rules: readonly Rule[] = simplifyRules): Node {
  let cur = root;
  for (let sweep = 0; sweep < 8; sweep++) {
    const next = rewrite(cur, (n, src) => {
      const rebuilt = src.every((s, i) => s === n.src[i]) ? n : g.node(n.op, n.dtype, src, n.arg, n.span);
      return applyRules(rules, g, rebuilt);
    });
    if (next === cur) return cur;
    cur = next;
  }
  return cur;
}
