#!/usr/bin/env node
// A known failure the fuzz campaign found (round 14), kept out of the test suite: the SIMT (and
// wgmma) forward kernel declares a per-row hoist array (hq0[ROWS]) that the element expression
// never reads, so nvcc -Werror all-warnings refuses it (#550 "set but never used"). Plain nvcc
// compiles it (a warning). The hoisting plan (pass fuse) keeps a row-invariant node whose uses
// the rendered element expression no longer contains: `-c0` under min(), `doc[w0]` under a let.
// Usage (after npx tsc -p tsconfig.json): node scripts/fuzz/repro-row-hoist.mjs; exit 1 = reproduced.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../../dist/src/compile.js';

const programs = [
  'attention hoist_min(c0: f32 = 1.5) {\n  score min(-c0, float(k % 64) * -1.0)\n}',
  'attention hoist_let(w0: int = 28, doc: i32[kv], keep: i32[kv]) {\n  let d0 = doc[w0]\n  mask k < d0 ? keep[k] != 0 : true\n}',
];
const dir = mkdtempSync(join(tmpdir(), 'attnc-row-hoist-'));
const codes = programs.map((s) => {
  const { artifact } = compile(s, { target: 'cuda', headDim: 16, dtype: 'bf16' });
  for (const [n, t] of Object.entries(artifact.files ?? {})) writeFileSync(join(dir, n), t);
  return artifact.code;
});
const tu = join(dir, 'repro.cu');
writeFileSync(tu, codes.join('\n'));
const flags = ['-arch=sm_90a', '-std=c++17', '-Xcompiler', '-Wall', '-Werror', 'all-warnings', '-c'];
try {
  execFileSync('nvcc', [...flags, tu, '-o', `${tu}.o`], { stdio: 'pipe' });
  console.log('not reproduced: nvcc -Werror accepts both kernels');
} catch (e) {
  console.log(
    String(e.stderr)
      .split('\n')
      .filter((l) => /error #/.test(l))
      .join('\n'),
  );
  process.exit(1);
}
