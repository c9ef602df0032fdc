#!/usr/bin/env node
// Runs a command with a WebGPU adapter available. If the machine already has one (a real GPU),
// the command runs as is; otherwise the project-local Mesa lavapipe is set up (once) and its
// environment exported. Usage: node scripts/with-gpu.mjs <cmd> [args...]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lavapipeEnv, projectRoot } from './gpu-env.mjs';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: with-gpu.mjs <command> [args...]');
  process.exit(2);
}

async function hasNativeAdapter() {
  if (process.env.ATTNC_FORCE_LAVAPIPE) return false;
  const probe = spawnSync(process.execPath, [join(projectRoot, 'scripts/probe-adapter.mjs')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return probe.status === 0;
}

let env = { ...process.env };
if (!(await hasNativeAdapter())) {
  if (!existsSync(join(projectRoot, '.gpu/lvp_icd.json'))) {
    const setup = spawnSync('bash', [join(projectRoot, 'scripts/setup-lavapipe.sh')], { stdio: 'inherit' });
    if (setup.status !== 0) process.exit(setup.status ?? 1);
  }
  env = { ...env, ...lavapipeEnv() };
  // 128-bit LLVM vectors (4-wide subgroups instead of AVX2's 8): lavapipe JIT-compiles each
  // shader at its first dispatch, and the test suite's time on lavapipe is mostly that compile.
  // Narrower vectors halve it (test/wgsl/decode-coop: 303 -> 160 s CPU, docs/TESTING-TIME.md);
  // running the kernels, tiny in tests, is barely slower. An explicit setting wins.
  env.LP_NATIVE_VECTOR_WIDTH ??= '128';
  // And no LLVM optimization passes over those shaders (gallivm's `nopt`): a cold shader cache,
  // as on CI, spends most of its lavapipe time compiling, and the kernels tests dispatch are small
  // (test/property.test.ts + test/wgsl/decode-coop-wide.test.ts, cold: 305 -> 220 s of test time,
  // docs/TESTING-TIME.md); every test passes with it, and an explicit setting wins.
  env.GALLIVM_PERF ??= 'nopt';
}
const binDir = join(projectRoot, 'node_modules/.bin');
env.PATH = `${binDir}:${env.PATH ?? ''}`;
const child = spawnSync(cmd, args, { stdio: 'inherit', env });
process.exit(child.status ?? 1);
