// A generated local the user's expression may never read: `score exp(c0)` ignores `score`, so a
// backward kernel's `score` (or `x`, the scaled q·k) is declared and left unread, which nvcc
// reports as warning #177 — an error under the -Werror builds the tests and engines use.

/** Comments cut off, so `// exp2(score - l)` does not count as a read. */
const code = (line: string): string => line.replace(/\/\/.*$/, '');

/**
 * `lines` with `(void)NAME;` after the declaration at `decl` when no other line reads `name`;
 * unchanged (byte for byte) when one does.
 */
export function voidIfUnread(lines: readonly string[], decl: number, name: string): string[] {
  // Not a member of the same name (`a.q`, `v.x`): those read something else.
  const word = new RegExp(`(?<![\\w.>])${name}\\b`);
  const read = lines.some((l, i) => i !== decl && word.test(code(l)));
  if (read) return [...lines];
  const pad = /^\s*/.exec(lines[decl] ?? '')![0];
  return [...lines.slice(0, decl + 1), `${pad}(void)${name};`, ...lines.slice(decl + 1)];
}
