// Before moving to another chevrotain (a smaller major, bench/bundle-size.mjs --chevrotain): does
// the front end behave the same? Bundles src/wgsl.ts twice, with our chevrotain and with the one
// DIR resolves, and compiles every stdlib entry plus broken variants of each (a character deleted,
// or `@)` inserted, every 37 characters: error recovery and messages) with both. Compares the
// artifact and program (hashed) or the rendered diagnostics; prints the first differences.
//   node bench/chevrotain-parity.mjs DIR
//   node bench/chevrotain-parity.mjs --lodash-lite   (ours against ours with lodash-es replaced by
//     src/vendor/lodash-es-lite.ts, as the browser build has it: scripts/build-browser.mjs)
// chevrotain >= 12 calls Object.groupBy in its grammar checks (Node >= 21); on older Node the
// checks are skipped here for the other copy (ATTNC_SKIP_GRAMMAR_CHECKS, src/dsl/grammar-checks.ts).
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { lodashLite } from '../scripts/build-browser.mjs';

const lite = process.argv[2] === '--lodash-lite';
const dir = lite ? undefined : process.argv[2];
if (!dir && !lite)
  throw new Error(
    'usage: node bench/chevrotain-parity.mjs DIR|--lodash-lite (DIR: a project with chevrotain installed)',
  );
const out = mkdtempSync(join(tmpdir(), 'attnc-parity-'));

async function compilerWith(chevrotainDir, file, extraPlugins = []) {
  const plugin = {
    name: 'other-chevrotain',
    setup(b) {
      b.onResolve({ filter: /^chevrotain$/ }, (a) =>
        a.pluginData === 'other'
          ? undefined
          : b.resolve('chevrotain', { kind: a.kind, resolveDir: chevrotainDir, pluginData: 'other' }),
      );
    },
  };
  const noGroupBy = typeof Object.groupBy !== 'function';
  await build({
    entryPoints: ['src/wgsl.ts'],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: join(out, file),
    logLevel: 'silent',
    plugins: [...(chevrotainDir ? [plugin] : []), ...extraPlugins],
    define: chevrotainDir && noGroupBy ? { ATTNC_SKIP_GRAMMAR_CHECKS: 'true' } : {},
  });
  return import(pathToFileURL(join(out, file)).href);
}

const ours = await compilerWith(undefined, 'ours.mjs');
const other = lite
  ? await compilerWith(undefined, 'lite.mjs', [lodashLite])
  : await compilerWith(dir, 'other.mjs');
const sha = (x) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

function outcome(m, source, file) {
  try {
    const c = m.compile(source, { target: 'wgsl', file });
    return `ok ${sha(c.artifact)} ${sha(c.program)}`;
  } catch (e) {
    if (!(e instanceof m.CompileError)) return `threw ${e}`;
    return m.renderDiagnostics(e.diagnostics, source);
  }
}

const cases = [];
for (const f of readdirSync('stdlib').filter((x) => x.endsWith('.attn'))) {
  const s = readFileSync(join('stdlib', f), 'utf8');
  cases.push([f, s]);
  for (let i = 0; i < s.length; i += 37) {
    cases.push([`${f} without char ${i}`, s.slice(0, i) + s.slice(i + 1)]);
    cases.push([`${f} with "@)" at ${i}`, s.slice(0, i) + '@)' + s.slice(i)]);
  }
}
let differ = 0;
let rejected = 0;
for (const [name, source] of cases) {
  const a = outcome(ours, source, name);
  const b = outcome(other, source, name);
  if (!a.startsWith('ok ')) rejected++;
  if (a === b) continue;
  if (++differ <= 3) console.log(`differs: ${name}\n--- ours\n${a}\n--- other\n${b}\n`);
}
console.log(`${cases.length} cases (${rejected} with diagnostics), ${differ} differ`);
process.exitCode = differ === 0 ? 0 : 1;
