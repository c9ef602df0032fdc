// Golden files: the emitted WGSL and CUDA of every static stdlib kernel, so code changes show up
// as reviewable diffs (the routing kernels' CUDA goldens are test/golden/routing-*.cu, written by
// test/cuda/routing-nvcc.test.ts). Regenerate with `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import {
  compileOffered,
  offeredTitle,
  pagedStdlib,
  readStdlib,
  staticStdlib as stdlib,
  storedStdlib,
  stdlibPath,
} from './support/stdlib.js';

const update = process.env.UPDATE_GOLDEN === '1';
/** The H200's WebGPU adapter (48 KiB workgroup memory, subgroups): the coop engine's target. */
const gpuLimits = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups: true };
const targets = [
  { target: 'wgsl', ext: 'wgsl', dtype: 'f32', dir: '' },
  { target: 'cuda', ext: 'cu', dtype: 'bf16', dir: '' },
  // Paged K/V caches (`cache paged N`): a block table and address functions on both targets.
  { target: 'cuda', ext: 'cu', dtype: 'bf16', dir: '', files: pagedStdlib },
  { target: 'wgsl', ext: 'wgsl', dtype: 'f32', dir: '', files: pagedStdlib },
  // The coop WGSL engine (test/golden/coop/): D = 128 on a GPU adapter's limits.
  {
    target: 'wgsl',
    ext: 'wgsl',
    dtype: 'f32',
    dir: 'coop/',
    engine: 'coop',
    limits: gpuLimits,
    headDim: 128,
  },
] as const;

describe.each(targets)('golden $target $dir', (t) => {
  const { target, ext, dtype, dir } = t;
  it.each('files' in t ? t.files : stdlib)('%s', (file) => {
    const source = readStdlib(file);
    const { artifact } = compile(source, {
      target,
      file: stdlibPath(file),
      headDim: 'headDim' in t ? t.headDim : 64,
      dtype,
      ...('engine' in t ? { wgslEngine: t.engine, limits: t.limits } : {}),
    });
    const path = `test/golden/${dir}${file.replace(/\.attn$/, '')}.${ext}`;
    if (update || (!existsSync(path) && !process.env.CI)) writeFileSync(path, artifact.code);
    expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
    expect(artifact.code).toBe(readFileSync(path, 'utf8'));
  });
});

// Quantized-cache kernels (`store`): a golden where the target's schedule offers an engine for the
// format, and where it does not, the title says so and no golden file is kept.
describe.each(targets)('golden $target $dir (quantized K/V caches)', (t) => {
  const { target, ext, dtype, dir } = t;
  const opts = {
    target,
    headDim: 'headDim' in t ? t.headDim : 64,
    dtype,
    ...('engine' in t ? { wgslEngine: t.engine, limits: t.limits } : {}),
  } as const;
  const cases = storedStdlib.map((file) => ({ file, offered: compileOffered(file, opts) }));
  it.each(cases.map((c) => ({ ...c, title: offeredTitle(c.file, `${target} ${dtype}`, c.offered) })))(
    '$title',
    ({ file, offered }) => {
      const path = `test/golden/${dir}${file.replace(/\.attn$/, '')}.${ext}`;
      if (offered.kind === 'not offered') {
        expect(existsSync(path), `${path}: stale golden of a kernel the target no longer offers`).toBe(false);
        return;
      }
      const code = offered.compiled.artifact.code;
      if (update || (!existsSync(path) && !process.env.CI)) writeFileSync(path, code);
      expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
      expect(code).toBe(readFileSync(path, 'utf8'));
    },
  );
});
