// Programs exactly at each limit of docs/LANGUAGE.md ("Limits"), shaped to make every recursive
// phase as deep as the limits allow, and programs just past them.
import { limits } from '../../src/dsl/limits.js';

const { nesting, operators, depth, masks } = limits;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** `nesting` calls deep with the rest of the operators as prefix `-` at the bottom (parser depth). */
export function nestedCalls(extraNesting = 0): string {
  const n = nesting + extraNesting;
  const unary = operators - n;
  return `attention nested() {\n  score ${'abs('.repeat(n)}${'-'.repeat(unary)}score${')'.repeat(n)}\n}\n`;
}

/** A right-nested `?:` chain of `operators` conditionals. */
export function ternaryChain(extra = 0): string {
  const arms = range(operators + extra).map(() => 'true ? false : ');
  return `attention chain() {\n  mask ${arms.join('')}true\n}\n`;
}

/** A left-nested chain of `operators` binary operators (distinct at every level). */
export function binaryChain(extra = 0): string {
  return `attention chain() {\n  score score${' - score'.repeat(operators + extra)}\n}\n`;
}

/**
 * `let`s written out to exactly `depth` levels, used by `masks` distinct masks and by the score:
 * lowering's deepest IR (the && of all masks over the deepest let).
 */
export function letChainAndMasks(extraDepth = 0, extraMasks = 0): string {
  const lets = range(depth - 1 + extraDepth).map((i) => `  let a${i + 1} = a${i} + q`);
  const last = `a${depth - 1 + extraDepth}`;
  const maskLines = range(masks + extraMasks).map((i) => `  mask ${last} != ${i}`);
  return [
    'attention deep() {',
    '  let a0 = k',
    ...lets,
    ...maskLines.slice(0, -1),
    // The last mask is `depth` deep itself: one more operator over the deepest let.
    `  mask ${last} > 0`,
    `  score score + float(a${depth - 3} % 7)`,
    '}',
    '',
  ].join('\n');
}
