// CUDA decode mode (split-KV + lse merge, src/codegen/cuda/decode.ts): every non-routed stdlib
// kernel carries it and compiles with nvcc for sm_90a (bf16 D=128, f32 D=64) without spills, and
// the launcher takes it for few queries over a long KV (checked on the host: without a GPU the
// decode path fails at its scratch allocation, the prefill path at its launch).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasCudaDecode } from '../../src/codegen/cuda/decode.js';
import { compile } from '../../src/compile.js';
import {
  expectOk,
  render,
  run,
  ptxasEntries,
  scratchDir,
  writeArtifact,
  hostExecutableFlags,
} from './support.js';
import { staticStdlib } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
// Mask/score kernels; the routing/selection ones build in routing-nvcc and select-nvcc.test.ts.
const stdlib = staticStdlib;
const cudaOf = (file: string, dtype: 'bf16' | 'f32', D: number, decode = true) =>
  compile(readFileSync(join('stdlib', file), 'utf8'), { target: 'cuda', file, headDim: D, dtype, decode });

describe('CUDA decode mode', () => {
  const dir = scratchDir('decode');

  it('every stdlib kernel has a decode path that nvcc compiles (bf16 D=128 without spills, little under the register cap)', async () => {
    const parts: string[] = [];
    const capped = new Map<string, boolean>(); // name -> default MIN_BLOCKS 3
    for (const file of stdlib) {
      for (const [dtype, D] of [
        ['bf16', 128],
        ['f32', 64],
      ] as const) {
        const { kernel } = cudaOf(file, dtype, D);
        expect(hasCudaDecode(kernel), file).toBe(true);
        const name = `${kernel.name}_${dtype}`;
        const code = render({ ...kernel, name }).code;
        expect(code).toContain(`attnc_${name}::dec::launch(a, stream)`);
        parts.push(code);
        capped.set(name, code.includes('#define ATTNC_DEC_MIN_BLOCKS 3'));
      }
    }
    const tu = join(dir, 'decode_all.cu');
    writeFileSync(tu, parts.join('\n'));
    // One translation unit of 24 artifacts; ptxas assembles only the split kernels it reports on
    // (ptxasEntries: the prefill kernels and host launchers build in stdlib-nvcc.test.ts).
    const r = await ptxasEntries(tu, 'sm_90a', (fn) => fn.includes('3dec12split_kernel'), [
      '-std=c++17',
      '-Werror',
      'all-warnings',
    ]);
    expectOk(r, `ptxas ${tu}`);
    const reports = r.stderr
      .split("Compiling entry function '")
      .filter((x) => x.includes('3dec12split_kernel'));
    expect(reports.length).toBe(2 * stdlib.length);
    // bf16, D = 128 must not spill uncapped (MIN_BLOCKS 1). Kernels without a score modifier or
    // element mask take MIN_BLOCKS 3 (170 registers: decode-knobs.ts), measured fastest on the H200
    // even where it spills a little (KIVI int4, 138 bytes): those may spill at most 512 bytes (more
    // is a register regression), the benchmarked full none; f32 may spill a few bytes.
    for (const rep of reports.filter((x) => x.includes('_bf16'))) {
      const name = /attnc_(\w+?_bf16)3dec/.exec(rep)?.[1] ?? '';
      const stores = Number(/ (\d+) bytes spill stores/.exec(rep)?.[1]);
      const cap = name === 'full_bf16' || capped.get(name) !== true ? 0 : 512;
      expect(stores, name).toBeLessThanOrEqual(cap);
    }
    expect(capped.get('full_bf16')).toBe(true);
  }, 1_000_000);

  it('routed kernels, all-empty masks and odd head dims have none', () => {
    const routed = compile('attention r() {\n  route blocks(16) topk(2) by mean(q) . mean(k)\n}', {
      target: 'wgsl',
      headDim: 16,
    });
    expect(hasCudaDecode(routed.kernel)).toBe(false);
    const empty = compile('attention e() {\n  mask false\n}', { target: 'cuda', headDim: 64 });
    expect(hasCudaDecode(empty.kernel)).toBe(false);
    const odd = compile('attention o() {\n  mask causal\n}', { target: 'cuda', headDim: 12, dtype: 'f32' });
    expect(hasCudaDecode(odd.kernel)).toBe(false);
    expect(odd.artifact.code).not.toContain('::dec::');
  });

  it('decode: false leaves the variant out of the artifact on both targets, and refuses a non-boolean', () => {
    const src = readFileSync('stdlib/causal.attn', 'utf8');
    const cuda = compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16', decode: false });
    expect(hasCudaDecode(cuda.kernel)).toBe(false);
    expect(cuda.artifact.code).not.toMatch(/::dec::|split_kernel|merge_kernel/);
    expect(cuda.artifact.code).toContain('attnc_causal_launch');
    // The prefill kernel is the one with the variant, unchanged.
    const withDecode = compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16' }).artifact.code;
    const kernelOf = (c: string): string =>
      c.slice(c.indexOf('__global__'), c.indexOf('\n}\n', c.indexOf('__global__')));
    expect(kernelOf(cuda.artifact.code)).toBe(kernelOf(withDecode));
    const wgsl = compile(src, { target: 'wgsl', headDim: 16, decode: false });
    expect(wgsl.artifact.decode).toBeUndefined();
    expect(compile(src, { target: 'wgsl', headDim: 16 }).artifact.decode).toBeDefined();
    expect(() => compile(src, { target: 'cuda', decode: 'no' as unknown as boolean })).toThrow(
      'option decode: expected a boolean, got `no`',
    );
  });

  it.each([true, false])(
    'the launcher takes decode mode for Nq <= 16 and Nk >= 1024 only (decode: %s)',
    async (decode) => {
      const { artifact } = cudaOf('sliding_window.attn', 'f32', 64, decode);
      const cu = writeArtifact(scratchDir(`decode-launcher-${decode}`), artifact);
      const main = join(cu, '..', 'decode_main.cu');
      writeFileSync(
        main,
        `#include "${cu}"
#include <stdio.h>
static void show(int code) { printf("%d|%s\\n", code, attnc_sliding_window_last_error()); }
int main(void) {
  AttncArgs_sliding_window a;
  static char dev[1 << 12] __attribute__((aligned(64)));
  const int shapes[4][2] = {{1, 2048}, {16, 1024}, {17, 2048}, {1, 1023}};
  for (int i = 0; i < 4; ++i) {
    attnc_sliding_window_args_init(&a, 1, 8, 2, shapes[i][0], shapes[i][1]);
    a.q = dev; a.k = dev; a.v = dev; a.out = dev;
    show(attnc_sliding_window_launch(&a, 0));
  }
  return 0;
}
`,
      );
      const exe = join(cu, '..', 'decode_main');
      expectOk(
        await run(NVCC, [...hostExecutableFlags('sm_90a'), main, '-o', exe]),
        'nvcc (decode launcher test)',
      );
      const r = await run(exe, []);
      expectOk(r, exe);
      const lines = r.stdout.trim().split('\n');
      // No GPU here: decode mode's first CUDA call (its shared-memory opt-in or scratch) fails;
      // without the variant every shape takes the prefill path, which fails at its launch.
      for (const i of [0, 1]) {
        if (decode) expect(lines[i]).toMatch(/^2\|attnc_sliding_window: decode(: cannot reserve| scratch)/);
        else expect(lines[i]).toMatch(/^2\|(?!.*decode)/);
      }
      expect(lines[2]).not.toMatch(/decode/);
      expect(lines[3]).not.toMatch(/decode/);
      expect(lines[2]).toMatch(/^2\|/);
    },
  );
});
