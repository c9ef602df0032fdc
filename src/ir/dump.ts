// Human-readable IR dumps (`attnc compile --dump-ir=<pass>`, the REPL's `:ir`): SSA-style lines so
// sharing is visible, one block per expression.
import { dumpStages } from './stages.js';
import { constText, show, toposort, type Node } from './graph.js';
import { Op } from './ops.js';
import type { TensorFormat } from './formats.js';
import type { AttentionIR } from './program.js';
import { dumpRouting } from './routing-check.js';
import { dumpGradient } from './derive-dump.js';

function ssa(roots: readonly [string, Node][]): string[] {
  const names = new Map<number, string>();
  const lines: string[] = [];
  let next = 0;
  const ref = (n: Node): string => names.get(n.id) ?? '?';
  for (const n of toposort(roots.map(([, r]) => r))) {
    if (n.op === Op.CONST) names.set(n.id, constText(n));
    else if (n.op === Op.VAR) names.set(n.id, String(n.arg));
    else if (n.op === Op.PARAM) names.set(n.id, `$${String(n.arg)}`);
    else {
      const name = `%${next++}`;
      names.set(n.id, name);
      const arg = n.arg === null ? '' : ` ${String(n.arg)}`;
      lines.push(`  ${name}: ${n.dtype} = ${n.op}${arg}(${n.src.map(ref).join(', ')})`);
    }
  }
  for (const [label, r] of roots) lines.push(`  ${label} = ${ref(r)}`);
  return lines;
}

export function dumpIR(ir: AttentionIR, after: string): string {
  const out: string[] = [`; ${ir.name} after ${after}`];
  const params = ir.params.map(
    (p) => `${p.name}: ${p.dtype}${p.default === undefined ? '' : ` = ${p.default}`}`,
  );
  const tensors = ir.tensors.map(
    (t) =>
      `${t.name}: ${t.dtype}[${t.dims.map((d) => (d.kind === 'literal' ? d.value : d.name)).join(', ')}]`,
  );
  out.push(`params: ${[...params, ...tensors].join(', ') || '(none)'}`);
  out.push(`outputs: out${ir.outputs.lse ? ', lse' : ''}${ir.routing ? ', indices' : ''}`);
  const f = ir.formats;
  // A quantized cache shows its code element (its `store` statement has the rest).
  const format = (t: TensorFormat): string => (t.kind === 'quant' ? `${t.format.elem} (store)` : t.dtype);
  out.push(`formats: q ${format(f.q)}, k ${format(f.k)}, v ${format(f.v)}, out ${format(f.out)}`);
  const roots: [string, Node][] = [
    ['mask', ir.mask],
    ['score', ir.score],
  ];
  if (ir.tiles?.kind === 'dynamic')
    roots.push(['can_be_true', ir.tiles.canBeTrue], ['can_be_false', ir.tiles.canBeFalse]);
  out.push('exprs:', ...ssa(roots));
  out.push(...dumpGradient(ir, ssa));
  if (ir.tiles)
    out.push(`tiles: ${ir.tiles.kind === 'static' ? `static ${ir.tiles.value}` : 'dynamic (per tile)'}`);
  if (ir.residue) {
    const r = ir.residue;
    const t = r.tiles.kind === 'static' ? `static ${r.tiles.value}` : 'dynamic (per tile)';
    out.push(
      `residue classes: q % d == k % d with d = ${show(r.modulus)}; per class mask ${show(r.mask)}, tiles ${t}`,
    );
  }
  if (ir.neighbourhood) {
    const n = ir.neighbourhood;
    out.push(
      `neighbourhood patches: image width W = ${show(n.width)}, radii ${show(n.rowRadius)} (rows), ${show(n.colRadius)} (columns)`,
    );
  }
  if (ir.summaries?.length) out.push(`summaries: ${ir.summaries.map((s) => s.tensor).join(', ')}`);
  if (ir.hoists?.row.length) out.push(`row-invariant: ${ir.hoists.row.length} subexpression(s) hoisted`);
  if (ir.hoists?.key.length) out.push(`key-invariant: ${ir.hoists.key.length} subexpression(s) hoisted`);
  if (ir.routing) out.push(...dumpRouting(ir.routing));
  if (ir.schedule) out.push(`schedule: ${JSON.stringify(ir.schedule)}`);
  if (ir.stages) out.push(dumpStages(ir.stages));
  return out.join('\n') + '\n';
}
