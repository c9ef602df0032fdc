// Emitted-code snapshot for refactors that must not change output: compiles every stdlib entry
// under a grid of targets, engines, dtypes and head dims, and writes one SHA-256 per case (the
// artifact code, its extra files, the decode variant and the emitted TS module) to a JSON file.
// Compare two snapshots with --compare. Needs a build (`npx tsc -p tsconfig.json`).
//
//   node scripts/emit-sample.mjs --out /tmp/before.json
//   node scripts/emit-sample.mjs --out /tmp/after.json --compare /tmp/before.json
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { reportSample } from './sample-report.mjs';
import { compile } from '../dist/src/compile.js';
import { emitKernelModule } from '../dist/src/codegen/emit-ts.js';
import { frontend } from '../dist/src/dsl/index.js';

const { values } = parseArgs({
  options: { out: { type: 'string' }, compare: { type: 'string' }, dir: { type: 'string' } },
});
const dir = values.dir ?? 'stdlib';

const configs = [
  { target: 'wgsl', dtype: 'f32' },
  { target: 'wgsl', dtype: 'f16', limits: { shaderF16: true } },
  { target: 'wgsl', dtype: 'f32', wgslEngine: 'coop' },
  { target: 'cuda', dtype: 'f32', schedule: { engine: 'simt' } },
  { target: 'cuda', dtype: 'bf16', schedule: { engine: 'simt' } },
  { target: 'cuda', dtype: 'f16', schedule: { engine: 'mma' } },
  { target: 'cuda', dtype: 'bf16', schedule: { engine: 'wgmma' } },
  { target: 'cuda', dtype: 'bf16' },
  { target: 'cuda', dtype: 'f16', arch: 'sm_80' },
];
const headDims = [64, 128, 6];

const sha = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16);

function artifactText(a) {
  const files = Object.entries(a.files ?? {}).map(([k, v]) => `\n// file ${k}\n${v}`);
  const decode = a.decode ? `\n// decode\n${artifactText(a.decode.artifact)}` : '';
  return a.code + files.join('') + decode;
}

function moduleText(a) {
  let files;
  try {
    files = emitKernelModule(a).files;
  } catch (e) {
    return `module refused: ${e.message}`;
  }
  return Object.keys(files)
    .sort()
    .map((k) => `// ${k}\n${files[k]}`)
    .join('\n');
}

const result = {};
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.attn'))
  .sort()) {
  const source = readFileSync(join(dir, file), 'utf8');
  const entries = frontend(source, file).decls.map((d) => d.decl.name);
  for (const entry of entries)
    for (const cfg of configs)
      for (const headDim of headDims) {
        const key = `${file}:${entry}:${JSON.stringify(cfg)}:D${headDim}`;
        try {
          const { artifact } = compile(source, { ...cfg, file, entry, headDim });
          let text = artifactText(artifact);
          if (artifact.target === 'wgsl') text += `\n// module\n${moduleText(artifact)}`;
          result[key] = sha(text);
        } catch (e) {
          result[key] = `error: ${String(e.message).split('\n')[0]}`;
        }
      }
}
reportSample(result, values, 'compiled');
