// verify: structural invariants of the IR, checked after every pass in tests. Returns messages
// (empty = valid) rather than throwing, so a test can show all of them.
import { show, toposort, type Node } from './graph.js';
import { Op, binaryArith, comparisons, unaryFloat, varNames } from './ops.js';
import type { AttentionIR } from './program.js';
import { verifyRouting } from './routing-check.js';
import { verifyResidue } from './passes/residue-classes.js';
import { verifyNeighbourhood } from './passes/neighbourhood.js';

const elementVars = new Set(['b', 'h', 'q', 'k', 'B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);
const tileVars = new Set(['b', 'h', 'q_lo', 'q_hi', 'k_lo', 'k_hi', 'B', 'H', 'Hkv', 'Nq', 'Nk', 'D']);

function checkNode(n: Node, ir: AttentionIR, allowedVars: ReadonlySet<string>, where: string): string[] {
  const errs: string[] = [];
  const bad = (msg: string): void => void errs.push(`${where}: ${msg} in ${show(n)}`);
  const srcTypes = n.src.map((s) => s.dtype);
  const same = srcTypes.every((t) => t === srcTypes[0]);
  if (binaryArith.has(n.op) || n.op === Op.NEG || n.op === Op.ABS) {
    if (n.dtype === 'bool' || !srcTypes.every((t) => t === n.dtype))
      bad('arithmetic operand/result dtypes differ');
  } else if (comparisons.has(n.op)) {
    if (n.dtype !== 'bool' || n.src.length !== 2 || !same)
      bad('comparison needs two operands of one dtype → bool');
  } else if (n.op === Op.AND || n.op === Op.OR || n.op === Op.NOT) {
    if (n.dtype !== 'bool' || srcTypes.some((t) => t !== 'bool')) bad('logic on non-bool');
  } else if (n.op === Op.SELECT) {
    if (srcTypes[0] !== 'bool' || srcTypes[1] !== n.dtype || srcTypes[2] !== n.dtype) bad('select typing');
  } else if (n.op === Op.IS_FINITE) {
    if (n.dtype !== 'bool' || srcTypes.length !== 1 || srcTypes[0] !== 'f32')
      bad('is_finite needs one f32 → bool');
  } else if (unaryFloat.has(n.op)) {
    if (n.dtype !== 'f32' || srcTypes[0] !== 'f32') bad('float math on non-f32');
  } else if (n.op === Op.VAR) {
    if (!(varNames as readonly string[]).includes(String(n.arg))) bad('unknown var');
    else if (!allowedVars.has(String(n.arg))) bad(`var ${String(n.arg)} not available here`);
  } else if (n.op === Op.PARAM) {
    const p = ir.params.find((x) => x.name === n.arg);
    if (!p || p.dtype !== n.dtype) bad('undeclared or mistyped param');
  } else if (n.op === Op.LOAD) {
    const t = ir.tensors.find((x) => x.name === n.arg);
    if (!t || t.dtype !== n.dtype || t.dims.length !== n.src.length)
      bad('load of unknown tensor or wrong rank');
    if (srcTypes.some((x) => x !== 'i32')) bad('non-int index');
  } else if (n.op === Op.RANGE_MIN || n.op === Op.RANGE_MAX) {
    if (!ir.summaries?.some((s) => s.tensor === n.arg)) bad('range of a tensor with no summary');
  }
  return errs;
}

export function verify(ir: AttentionIR): string[] {
  const errs: string[] = [];
  const exprs: [string, Node, ReadonlySet<string>][] = [
    ['mask', ir.mask, elementVars],
    ['score', ir.score, new Set([...elementVars, 'score'])],
  ];
  if (ir.tiles?.kind === 'dynamic') {
    exprs.push(
      ['tiles.canBeTrue', ir.tiles.canBeTrue, tileVars],
      ['tiles.canBeFalse', ir.tiles.canBeFalse, tileVars],
    );
  }
  if (ir.mask.dtype !== 'bool') errs.push('mask is not bool');
  if (ir.score.dtype !== 'f32') errs.push('score is not f32');
  for (const [where, root, vars] of exprs)
    for (const n of toposort([root])) errs.push(...checkNode(n, ir, vars, where));
  if (ir.residue) {
    const r = ir.residue;
    const more: [string, Node, ReadonlySet<string>][] = [['residue.mask', r.mask, elementVars]];
    if (r.tiles.kind === 'dynamic')
      more.push(
        ['residue.canBeTrue', r.tiles.canBeTrue, tileVars],
        ['residue.canBeFalse', r.tiles.canBeFalse, tileVars],
      );
    for (const [where, root, vars] of more)
      for (const n of toposort([root])) errs.push(...checkNode(n, ir, vars, where));
    errs.push(...verifyResidue(ir));
  }
  errs.push(...verifyNeighbourhood(ir));
  if (ir.routing)
    errs.push(
      ...verifyRouting(
        ir.routing,
        (name) => ir.params.find((p) => p.name === name)?.dtype,
        (name) => ir.tensors.find((t) => t.name === name),
      ),
    );
  const s = ir.schedule;
  if (s && (s.blockQ < 1 || s.blockK < 1 || s.threads < 1 || s.headDim < 1 || s.valueDim < 1))
    errs.push('schedule has a non-positive size');
  return errs;
}
