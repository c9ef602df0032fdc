// CLI-output snapshot for refactors that must not change output: runs `attnc compile` on every
// entry of every stdlib/*.attn for --target cuda and wgsl, --emit ts, and --backward (cuda with
// each --backward-engine, and wgsl with --emit ts), in this process, and writes one SHA-256 per case (the exit status, every
// file written into --out, and stderr) to a JSON file. Complements emit-sample.mjs, which calls
// compile() directly and so misses what the command adds (manifests, the backward files, the
// module's coop alternates). Compare two snapshots with --compare. Needs a build (`npx tsc`).
//
//   node scripts/cli-sample.mjs --out /tmp/before.json
//   node scripts/cli-sample.mjs --out /tmp/after.json --compare /tmp/before.json
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from '../dist/src/cli/cli.js';
import { frontend } from '../dist/src/dsl/index.js';

const { values } = parseArgs({
  options: { out: { type: 'string' }, compare: { type: 'string' }, dir: { type: 'string' } },
});
const dir = values.dir ?? 'stdlib';

const variants = {
  cuda: ['--target', 'cuda'],
  'cuda-backward': ['--target', 'cuda', '--backward'],
  'cuda-backward-mma': ['--target', 'cuda', '--backward', '--backward-engine', 'mma'],
  'cuda-backward-wgmma': ['--target', 'cuda', '--backward', '--backward-engine', 'wgmma'],
  wgsl: ['--target', 'wgsl'],
  'wgsl-ts': ['--target', 'wgsl', '--emit', 'ts'],
  'wgsl-ts-backward': ['--target', 'wgsl', '--emit', 'ts', '--backward'],
};

const sha = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/**
 * Runs the CLI with stdout dropped (it names the temporary --out) and stderr captured; an internal
 * error keeps its first line (a stack's line numbers move with any edit).
 */
async function runCaptured(argv) {
  const [out, err] = [process.stdout.write, process.stderr.write];
  let stderr = '';
  process.stdout.write = () => true;
  process.stderr.write = (chunk) => ((stderr += String(chunk)), true);
  try {
    const code = await runCli(argv);
    return { code, stderr: stderr.includes('internal error') ? stderr.split('\n')[0] : stderr };
  } finally {
    [process.stdout.write, process.stderr.write] = [out, err];
  }
}

/** The files under --out, by name (sorted), as one text. */
function outText(out) {
  return readdirSync(out)
    .sort()
    .map((name) => `// ${name}\n${readFileSync(join(out, name), 'utf8')}`)
    .join('\n');
}

const root = mkdtempSync(join(tmpdir(), 'cli-sample-'));
const result = {};
let failed = 0;
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.attn'))
  .sort()) {
  const path = join(dir, file);
  const entries = frontend(readFileSync(path, 'utf8'), file).decls.map((d) => d.decl.name);
  for (const entry of entries) {
    for (const [variant, flags] of Object.entries(variants)) {
      const out = join(root, `${file}-${entry}-${variant}`);
      const { code, stderr } = await runCaptured(['compile', path, '--entry', entry, ...flags, '--out', out]);
      if (code !== 0) failed++;
      let files = '';
      try {
        files = outText(out);
      } catch {
        // A refused compile writes no directory.
      }
      result[`${file}:${entry}:${variant}`] = sha(`exit ${code}\n${stderr}\n${files}`);
    }
  }
}
rmSync(root, { recursive: true, force: true });

const cases = Object.keys(result).length;
process.stdout.write(`${cases} cases, ${cases - failed} compiled, ${failed} refused\n`);
if (values.out) writeFileSync(values.out, JSON.stringify(result, null, 1) + '\n');
if (values.compare) {
  const before = JSON.parse(readFileSync(values.compare, 'utf8'));
  const keys = [...new Set([...Object.keys(before), ...Object.keys(result)])].sort();
  const changed = keys.filter((k) => before[k] !== result[k]);
  for (const k of changed) process.stdout.write(`changed: ${k}\n`);
  process.stdout.write(changed.length === 0 ? 'identical\n' : `${changed.length} changed\n`);
  process.exitCode = changed.length === 0 ? 0 : 1;
}
