// Very long REPL lines (issue 9, item 6: a 47 KB line gave an internal error and a stack trace).
// Whatever the line, the session answers with diagnostics, a definition or one `error:` line, and
// goes on; tmux cannot type 47 KB, so these go to the session directly.
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/repl/commands.js';
import { Session } from '../../src/cli/repl/session.js';

function session(): { s: Session; type: (line: string) => Promise<string> } {
  let text = '';
  const s = new Session({ write: (t) => void (text += t), columns: 100, rows: 40, color: false }, dispatch);
  const type = async (line: string): Promise<string> => {
    const start = text.length;
    expect(await s.input(line)).toBe(false);
    return text.slice(start);
  };
  return { s, type };
}

const KB47 = 47 * 1024;
const lines: Record<string, string> = {
  'nested parentheses': `attention p() { mask ${'('.repeat(KB47 / 2 - 20)}causal${')'.repeat(KB47 / 2 - 20)} }`,
  'a chain of &&': `attention c() { mask ${Array(Math.floor(KB47 / 12))
    .fill('q >= k')
    .join(' && ')} }`,
  'unary operators': `attention u() { mask ${'!'.repeat(KB47 - 40)}causal }`,
  'a statement': `mask ${'-'.repeat(KB47 - 20)}q < k`,
  'a :set': `:set window=${'9'.repeat(KB47)}`,
  'a :mask': `:mask ${'9'.repeat(KB47)} 8`,
  'a :run': `:run --nq ${'1'.repeat(KB47)}`,
  'a :load': `:load ${'a/'.repeat(KB47 / 2)}`,
};

describe('47 KB REPL lines', () => {
  for (const [what, line] of Object.entries(lines))
    it(`${what}: answered without an internal error, and the session goes on`, async () => {
      const { type } = session();
      expect(line.length).toBeGreaterThan(40_000);
      await type('attention base() { mask causal }');
      const out = await type(line);
      expect(out).not.toMatch(/internal error|\n\s+at /);
      expect(out).toMatch(/^(error|defined|redefined|\(|[a-z]+ =)|\n(error|defined)/m);
      expect(await type(':list')).toMatch(/base/);
    });
});
