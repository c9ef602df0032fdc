// The front-end code only some programs need, reached through one record so that an entry point
// decides how it is loaded, like the WGSL code generators (codegen/wgsl/features.ts):
// front-eager.ts fills it with static imports (`compile`, the CLI), front-lazy.ts with import()
// (attnc/wgsl/async's `compileAsync`). The grammar stays whole: after parsing, the statements the
// CST holds say which builders, checkers and lowerings to load; the wording of mistakes loads
// only when there is one. This module imports them as types only: it is in every static graph.
import type { CstNode } from 'chevrotain';
import type { DeclCh, ProgramCh, StmtCh } from './cst-children.js';
import type * as Messages from './front-messages.js';
import type * as OperandQuant from './front-operand-quant.js';
import type * as Sparsity from './front-sparsity.js';
import type * as Storage from './front-storage.js';

export interface FrontFeatures {
  /** `route`, `select`, `emit`: builder, checker and the routing lowering (front-sparsity.ts). */
  readonly sparsity: typeof Sparsity;
  /** `store`, `importance`, `cache`: builders and checkers (front-storage.ts). */
  readonly storage: typeof Storage;
  /** `qk`, `pv`: builders and checkers (front-operand-quant.ts). */
  readonly operandQuant: typeof OperandQuant;
  /** Parse error messages and "did you mean" hints (front-messages.ts). */
  readonly messages: typeof Messages;
}

export type FrontFeature = keyof FrontFeatures;
export type StatementFeature = Exclude<FrontFeature, 'messages'>;

/** What each feature is, for messages. */
export const frontFeatureTitles: Readonly<Record<FrontFeature, string>> = {
  sparsity: 'routing/selection statements',
  storage: 'K/V storage statements',
  operandQuant: 'qk/pv statements',
  messages: 'error messages',
};

/** The feature that builds and checks each statement (by its CST child), in the order checks run. */
const statementFeature: Readonly<Partial<Record<keyof StmtCh, StatementFeature>>> = {
  sparsityStmt: 'sparsity',
  storageStmt: 'storage',
  importanceStmt: 'storage',
  cacheStmt: 'storage',
  qkStmt: 'operandQuant',
  pvStmt: 'operandQuant',
};

/** The statement features the parsed program (a CST, maybe recovered) holds statements of. */
export function statementFeaturesOfCst(cst: CstNode): StatementFeature[] {
  const decls = (cst.children as ProgramCh).attentionDecl ?? [];
  const stmts = decls.flatMap((d) => (d.children as DeclCh).statement ?? []);
  const children = stmts.flatMap((s) => Object.keys(s.children) as (keyof StmtCh)[]);
  return [...new Set(children.flatMap((c) => statementFeature[c] ?? []))];
}

/**
 * The statement checkers loaded, in the order they run. Each checks only statements of its own,
 * and a declaration has statements only of features loaded (their builders made them).
 */
export const statementCheckers = (features: Partial<FrontFeatures>): FrontFeatures[StatementFeature][] =>
  [features.sparsity, features.storage, features.operandQuant].flatMap((f) => f ?? []);

/** The feature from `features`, or an error saying it was not loaded (built before loading). */
export function frontFeature<F extends FrontFeature>(
  features: Partial<FrontFeatures>,
  name: F,
): FrontFeatures[F] {
  const found = features[name];
  // Terse: this message is in every bundle of `compile`, which cannot reach it.
  if (found === undefined) throw new Error(`front end: feature '${name}' is not loaded`);
  return found;
}

/** The hints of mistakes; none before the messages are loaded (compileAsync then loads them and checks again). */
export type Hints = Pick<
  FrontFeatures['messages'],
  'didYouMean' | 'foreignHint' | 'foreignFunctionHint' | 'undeclaredHint'
>;

const none = (): undefined => undefined;
export const hintsOf = (features: Partial<FrontFeatures>): Hints =>
  features.messages ?? {
    didYouMean: none,
    foreignHint: none,
    foreignFunctionHint: none,
    undeclaredHint: none,
  };
