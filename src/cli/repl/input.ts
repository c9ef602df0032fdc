// Multi-line input for the REPL: when a typed chunk is complete, and how a bare statement is
// spliced into the current declaration.

/** The text with comments blanked out (braces inside comments must not count). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/**
 * Keep reading while braces or parentheses are open, or while an `attention` header has not
 * reached its `{` yet (an empty line ends that wait, so a header missing its `{` still gets a
 * diagnostic instead of an endless prompt). Over-closed input is complete: the parser says why.
 */
export function needsMore(text: string, lastLine: string): boolean {
  const c = code(text);
  let braces = 0;
  let parens = 0;
  for (const ch of c) {
    if (ch === '{') braces++;
    else if (ch === '}') braces--;
    else if (ch === '(' || ch === '[') parens++;
    else if (ch === ')' || ch === ']') parens--;
  }
  if (braces < 0 || parens < 0) return false;
  if (braces > 0 || parens > 0) return true;
  const header = /^\s*attention\b/.test(c) && !c.includes('{');
  return header && lastLine.trim() !== '';
}

/** A bare `mask …` / `score …` / `let …` typed at the prompt (added to the current kernel). */
export function isStatement(text: string): boolean {
  return /^\s*(mask|score|let)\b/.test(code(text));
}

/** `source` (one declaration) with `statement` added as the last line of its body. */
export function appendStatement(source: string, statement: string): string {
  const end = source.lastIndexOf('}');
  if (end < 0) return `${source}\n${statement.trim()}`;
  const body = source.slice(0, end).replace(/\s*$/, '');
  return `${body}\n  ${statement.trim()}\n}${source.slice(end + 1)}`;
}
