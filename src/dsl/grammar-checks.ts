// Whether chevrotain validates the grammar when the lexer and parser are built. Always, except in
// the bundled executable (scripts/build-cli.mjs defines ATTNC_SKIP_GRAMMAR_CHECKS): the checks
// cost a quarter of `attnc check`'s startup, and every other load — the tests first — still runs
// them on the same grammar.
declare const ATTNC_SKIP_GRAMMAR_CHECKS: boolean | undefined;

export const skipGrammarChecks: boolean =
  typeof ATTNC_SKIP_GRAMMAR_CHECKS !== 'undefined' && ATTNC_SKIP_GRAMMAR_CHECKS;
