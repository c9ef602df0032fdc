// The tensor-core backwards of one source on every engine, and their dK/dV kernel's text: shared by
// the tests of the dK/dV kernel's permuted orders (backward-residue*.test.ts, backward-patch*.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { compileCudaBackwardMma, compileCudaBackwardWgmma } from '../../src/backward.js';
import { renderCudaBackwardWgmma } from '../../src/codegen/cuda/backward-wgmma.js';
import { compile } from '../../src/index.js';
import { TUNE_ENGINES } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import type { BackwardWgmmaTune } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import type { Shape } from '../support/arbitraries.js';
import type { MmaCheckOptions } from '../backward/mma-check.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { expectOk, run, scratchDir, sassOnly } from './support.js';

/** Stdlib kernel `name` as the CUDA backward takes it (bf16, lse, a Hopper's 227 KiB of shared memory). */
export const stdlibBackwardKernel = (name: string, headDim: number) => {
  const file = `stdlib/${name}.attn`;
  return compile(readFileSync(file, 'utf8'), {
    target: 'cuda',
    file,
    headDim,
    dtype: 'bf16',
    lse: true,
    limits: { maxWorkgroupStorageBytes: 227 * 1024 },
  }).kernel;
};

/** The producer kernel's backward source of stdlib `name` with the tile-body knobs `tune`. */
export const producerBackwardCode = (
  name: string,
  tune?: BackwardWgmmaTune,
  headDim = 128,
  deterministic = false,
): string =>
  renderCudaBackwardWgmma(stdlibBackwardKernel(name, headDim), { producer: true, deterministic, tune }).code;

/** Kernel `name`'s text in `code`, up to the next kernel (or the end). */
const kernelOf = (code: string, name: string): string => {
  const at = code.indexOf(`${name}(const Args a)`);
  return code.slice(at, code.indexOf('__global__', at));
};

/** bwd_dkdv's text (up to the next kernel: bwd_dq_out or bwd_dq). */
export const dkdvOf = (code: string): string => kernelOf(code, 'bwd_dkdv');

/** Every tensor-core engine's bf16 backward of `source`: mma, wgmma without and with the producer, each knob set. */
export function backwardEngines(
  source: string,
  file: string,
  headDim: number,
  deterministic: boolean,
  schedule?: Partial<Schedule>,
): [string, string][] {
  const opts = { file, headDim, dtype: 'bf16', deterministic, ...(schedule ? { schedule } : {}) } as const;
  const wgmma = (producer: boolean, tune?: BackwardWgmmaTune) =>
    compileCudaBackwardWgmma(source, { ...opts, producer, ...(tune ? { tune } : {}) }).backward.code;
  return [
    ['mma', compileCudaBackwardMma(source, opts).backward.code],
    ['wg', wgmma(false)],
    ['ws', wgmma(true)],
    ...Object.entries(TUNE_ENGINES).map(([name, tune]): [string, string] => [name, wgmma(true, tune)]),
  ];
}

/** `check(what, code, dkdv)` on every engine's backward of `source` at D = 128, both modes. */
export function forEveryEngine(
  source: string,
  file: string,
  check: (what: string, code: string, dkdv: string, deterministic: boolean) => void,
  schedule?: Partial<Schedule>,
): void {
  for (const deterministic of [false, true])
    for (const [name, code] of backwardEngines(source, file, 128, deterministic, schedule))
      check(`${name}${deterministic ? ' deterministic' : ''}`, code, dkdvOf(code), deterministic);
}

/** `source`'s mma backward as checkMmaBackward compiles it for `sh`, `opts`. */
function mmaBackwardText(source: string, sh: Shape, opts: MmaCheckOptions): string {
  return compileCudaBackwardMma(source, {
    file: 't.attn',
    headDim: sh.D,
    valueDim: sh.Dv,
    dtype: opts.dtype ?? 'bf16',
    ...(opts.deterministic ? { deterministic: true } : {}),
    ...(opts.schedule ? { schedule: opts.schedule } : {}),
  }).backward.code;
}

/** The dK/dV kernel's text of `source`'s mma backward as checkMmaBackward compiles it for `sh`, `opts`. */
export const mmaDkdvText = (source: string, sh: Shape, opts: MmaCheckOptions): string =>
  dkdvOf(mmaBackwardText(source, sh, opts));

/** The deterministic bwd_dq's text (to the next kernel) of the same backward. */
export const mmaDqText = (source: string, sh: Shape, opts: MmaCheckOptions): string =>
  kernelOf(mmaBackwardText(source, sh, opts), 'bwd_dq');

/** Every engine's backward of stdlib/causal.attn: no text of `marker`, bwd_dkdv over the plain key tiles. */
export function expectPlainOrder(marker: string): void {
  const causal = readFileSync('stdlib/causal.attn', 'utf8');
  for (const [name, code] of backwardEngines(causal, 'causal.attn', 64, false)) {
    expect(code, name).not.toContain(marker);
    expect(code, name).toContain('bwd_dkdv<<<dim3((unsigned)((a->Nk + BN - 1) / BN), (unsigned)a->Hkv');
  }
}

/** `parts` as one translation unit built by nvcc for sm_90a, warnings as errors; ptxas -v in stderr. */
export async function nvccSm90a(scratch: string, parts: readonly string[]): Promise<{ stderr: string }> {
  const dir = scratchDir(scratch);
  const cu = join(dir, 'backward.cu');
  writeFileSync(cu, parts.join('\n'));
  const flags = [...sassOnly('sm_90a'), '-O3', '-cubin', '-Werror', 'all-warnings', '-Xptxas', '-v'];
  const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.cubin')], undefined, 900_000);
  expectOk(r, 'nvcc sm_90a');
  return r;
}
