// The children of each CST rule of the core grammar, named as in parser.ts (token names or
// labels); cst-to-ast.ts reads them. Every child is optional: recovery leaves partial nodes.
import type { CstNode, IToken } from 'chevrotain';

type Tok = IToken[] | undefined;
type Node = CstNode[] | undefined;

export interface ProgramCh {
  attentionDecl?: Node;
}
export interface DeclCh {
  Attention?: Tok;
  Identifier?: Tok;
  param?: Node;
  statement?: Node;
  RBrace?: Tok;
}
export interface ParamCh {
  Identifier?: Tok;
  Colon?: Tok;
  typeSpec?: Node;
  Equals?: Tok;
  expression?: Node;
}
export interface TypeCh {
  IntKw?: Tok;
  BoolKw?: Tok;
  I32Kw?: Tok;
  F32Kw?: Tok;
  dims?: Node;
}
export interface DimsCh {
  LBracket?: Tok;
  dim?: Node;
  RBracket?: Tok;
}
export interface DimCh {
  Identifier?: Tok;
  IntLit?: Tok;
}
export interface StmtCh {
  Let?: Tok;
  Mask?: Tok;
  Score?: Tok;
  Identifier?: Tok;
  Equals?: Tok;
  expression?: Node;
  sparsityStmt?: Node;
  storageStmt?: Node;
  importanceStmt?: Node;
  cacheStmt?: Node;
  qkStmt?: Node;
  pvStmt?: Node;
}
export interface ExprCh {
  cond?: Node;
  Question?: Tok;
  then?: Node;
  Colon?: Tok;
  otherwise?: Node;
}
export interface BinaryCh {
  operands?: Node;
  operators?: Tok;
}
export interface UnaryCh {
  op?: Tok;
  operand?: Node;
  atom?: Node;
}
export interface AtomCh {
  FloatLit?: Tok;
  IntLit?: Tok;
  True?: Tok;
  False?: Tok;
  Score?: Tok;
  Identifier?: Tok;
  IntKw?: Tok;
  callArgs?: Node;
  indexArgs?: Node;
  LParen?: Tok;
  expression?: Node;
  RParen?: Tok;
}
export interface ArgsCh {
  LParen?: Tok;
  LBracket?: Tok;
  expression?: Node;
  RParen?: Tok;
  RBracket?: Tok;
}
