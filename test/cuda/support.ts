// Shared helpers of the CUDA tests: kernel variants, rendering, and running compilers. CI has two
// cores and vitest runs two test files at once, so each file runs one compiler at a time.
import { uniformFormats, type TensorFormats } from '../../src/ir/formats.js';
import { expect } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Artifact } from '../../src/codegen/artifact.js';
import { renderCuda } from '../../src/codegen/cuda/index.js';
import { cacheDir, isCompiler, logCompile, lookup, planCompile, store } from '../support/compile-cache.js';
import { withPrecompiledShim } from '../support/emu-pch.js';
import type { AttentionKernel, DecodeLean, Schedule, StorageDType } from '../../src/ir/kernel.js';
import {
  documentKernel,
  fullKernel,
  slidingWindowKernel,
  softcapAlibiKernel,
  testSchedule,
  type TestSchedule,
} from '../support/hand-kernels.js';

export const handKernels: Readonly<Record<string, (s?: TestSchedule) => AttentionKernel>> = {
  full: fullKernel,
  sliding_window: slidingWindowKernel,
  document: documentKernel,
  softcap_alibi: softcapAlibiKernel,
};

export const dtypes: readonly StorageDType[] = ['f32', 'f16', 'bf16'];

export const meta = { sourceHash: 'test-source', scheduleHash: 'test-schedule' };

/** A kernel under another name (so several variants can share one C++ translation unit). */
export function renamed(k: AttentionKernel, name: string): AttentionKernel {
  return { ...k, name };
}

export function render(k: AttentionKernel): Artifact {
  return renderCuda(k, meta);
}

export function scratchDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `attnc-cuda-${label}-`));
}

/** Writes the .cu, .h and .json of `a` into `dir`; returns the .cu path. */
export function writeArtifact(dir: string, a: Artifact): string {
  const cu = join(dir, `${a.name}.cu`);
  writeFileSync(cu, a.code);
  for (const [name, text] of Object.entries(a.files ?? {})) writeFileSync(join(dir, name), text);
  return cu;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_PARALLEL = Number(process.env.ATTNC_TEST_JOBS ?? 1);
let running = 0;
const waiting: (() => void)[] = [];

/**
 * Runs a program (queued: at most MAX_PARALLEL at once per test file); never rejects. A compiler
 * run goes through the run's compile cache (test/support/compile-cache.ts) when it has one.
 */
export async function run(
  cmd: string,
  args: readonly string[],
  cwd?: string,
  timeoutMs = 300_000,
): Promise<RunResult> {
  if (!isCompiler(cmd)) return runQueued(cmd, args, cwd, timeoutMs);
  const dir = cacheDir();
  const plan = dir === undefined ? undefined : planCompile(cmd, args, cwd ?? process.cwd());
  const hit = plan && lookup(dir!, plan);
  let ms = 0;
  // The emulator's headers from a precompiled header (test/support/emu-pch.ts) on a miss.
  const miss = () => withPrecompiledShim(cmd, args, cwd ?? process.cwd(), dir);
  const r = hit ?? (await runQueued(cmd, miss(), cwd, timeoutMs, (t) => (ms = t)));
  if (plan && !hit) store(dir!, plan, r);
  logCompile({ cmd, key: plan?.key, hit: hit !== undefined, ms, file: testFile() });
  return r;
}

/** The running test file, or '' outside vitest (scripts/fuzz-campaign.mjs runs these helpers too). */
function testFile(): string {
  try {
    return expect.getState().testPath ?? '';
  } catch {
    return '';
  }
}

async function runQueued(
  cmd: string,
  args: readonly string[],
  cwd: string | undefined,
  timeoutMs: number,
  tookMs: (ms: number) => void = () => {},
): Promise<RunResult> {
  if (running >= MAX_PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  const started = Date.now();
  try {
    return await new Promise<RunResult>((resolve) => {
      execFile(cmd, [...args], { cwd, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err ? String(err.message) : '') });
      });
    });
  } finally {
    tookMs(Date.now() - started);
    running--;
    waiting.shift()?.();
  }
}

/** Throws with the tool's own output when it failed. */
export function expectOk(r: RunResult, what: string): void {
  if (r.code !== 0)
    throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`.slice(0, 20_000));
}

/**
 * nvcc's flags for `arch`'s SASS alone (through ptxas: spills, resource and PTX errors).
 * `-arch=sm_90a` also builds compute_90 PTX for GPUs without sm_90a's features: a second cicc pass
 * over the whole translation unit, a quarter of the build's time, whose code differs from sm_90a's
 * only where ATTNC_SM90A guards wgmma (the wgmma engines' trap fallbacks). That fallback is built by
 * the tests that keep `-arch=sm_90a`: stdlib-nvcc.test.ts (the forward engines, as a user builds
 * them), int8qk-wgmma.test.ts, backward-wgmma.test.ts and backward-wgmma-ws.test.ts (the backward
 * engines). sm_80 takes one cicc pass either way.
 */
export const sassOnly = (arch: string): string[] => [
  '-gencode',
  `arch=${arch.replace(/^sm_/, 'compute_')},code=${arch}`,
];

/**
 * `ptxas -v` over only the entries of `tu` that `keep` selects: nvcc -ptx (NVVM at -O3, the PTX an
 * nvcc -cubin build hands ptxas), then ptxas -e. For spill checks of one kind of kernel in a unit
 * of whole artifacts, whose other kernels build in their own tests: ptxas otherwise assembles them
 * all (a decode artifact at D = 128: 0.85 s of ptxas, 0.22 s for its checked split kernel alone).
 * The result's stderr is ptxas's report; `entries` the entries assembled.
 */
export async function ptxasEntries(
  tu: string,
  arch: string,
  keep: (entry: string) => boolean,
  nvccArgs: readonly string[] = [],
  timeoutMs = 900_000,
): Promise<RunResult & { readonly entries: readonly string[] }> {
  const ptx = `${tu}.ptx`;
  expectOk(
    await run('nvcc', [...sassOnly(arch), ...nvccArgs, '-ptx', tu, '-o', ptx], undefined, timeoutMs),
    `nvcc -ptx ${tu}`,
  );
  const all = [...readFileSync(ptx, 'utf8').matchAll(/^\.visible \.entry (\w+)\(/gm)].map((m) => m[1]!);
  const entries = all.filter(keep);
  expect(entries.length, `entries of ${tu} to assemble`).toBeGreaterThan(0);
  const args = [`-arch=${arch}`, '-v', '-e', entries.join(','), ptx, '-o', `${tu}.cubin`];
  return { ...(await run('ptxas', args, undefined, timeoutMs)), entries };
}

/**
 * `arch`'s SASS alone (sassOnly), C++17, NVVM and ptxas at their defaults (-O3), warnings as errors
 * in device and host code (with `-c`, g++ -Wall too). For tests that read ptxas's report of the
 * optimized code (`-Xptxas -v`: spills, registers).
 */
export const strictFlags = (arch: string): string[] => [
  ...sassOnly(arch),
  '-std=c++17',
  '-Xcompiler',
  '-Wall',
  '-Werror',
  'all-warnings',
];

/** NVVM at -O1 and ptxas at -O0: device code built to be checked, not run. */
const unoptimizedDevice = ['-Xcicc', '-O1', '-Xptxas', '-O0'];

/**
 * strictFlags for a test that asks only whether the code is valid CUDA: the front end's errors and
 * warnings, the PTX and its inline assembly through ptxas, ptxas's resource checks. NVVM runs at
 * -O1 instead of -O3 (less inlining and unrolling): arch.test.ts's sm_80 unit builds in 52 CPU s
 * instead of 122 (cicc 114 → 46 s, ptxas 84 → 41 s). The optimized build stays checked where it
 * matters: stdlib-nvcc.test.ts builds the stdlib as users do, and every test that reads ptxas -v
 * uses strictFlags. ptxas runs at -O0 too: it still parses and assembles every instruction and
 * checks the resources, without register allocation's optimizations (select-nvcc's wgmma unit:
 * ptxas 8.1 → 4.4 s, the nvcc run 16.0 → 13.6 s). test/cuda/quick-check.test.ts shows these flags
 * still fail on bad PTX, on a warning, and on an sm_90a instruction built for sm_80.
 */
export const quickCheckFlags = (arch: string): string[] => [...strictFlags(arch), ...unoptimizedDevice];

/**
 * nvcc's flags for a host-side test executable (a launcher's argument checks, its manifest): no GPU
 * runs its kernels, so their code is only compiled, never read — `arch`'s SASS alone with NVVM at
 * -O1 and ptxas at -O0, as quickCheckFlags (the launcher tests' builds 30–60% faster).
 */
export const hostExecutableFlags = (arch: string): string[] => [
  ...sassOnly(arch),
  '-std=c++17',
  ...unoptimizedDevice,
];

export const CUDA_INCLUDE = process.env.CUDA_HOME
  ? join(process.env.CUDA_HOME, 'include')
  : '/usr/local/cuda/include';
export const testScheduleWith = (over: Partial<TestSchedule>): TestSchedule =>
  Object.freeze({ ...testSchedule, ...over });

/** testScheduleWith split as the backend takes it: the schedule and the storage formats. */
export function scheduleAndFormats(over: Partial<TestSchedule>): [Schedule, TensorFormats] {
  const { dtype, ...schedule } = testScheduleWith(over);
  return [schedule, uniformFormats(dtype)];
}

/**
 * ptxas -v's spill report per function: `Function properties for NAME` followed by the line with
 * its spill stores and loads (bytes).
 */
export function spillsByFunction(stderr: string): Map<string, { stores: number; loads: number }> {
  const lines = stderr.split('\n');
  const out = new Map<string, { stores: number; loads: number }>();
  lines.forEach((l, i) => {
    const name = /Function properties for (\S+)/.exec(l)?.[1];
    const m = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(lines[i + 1] ?? '');
    if (name && m) out.set(name, { stores: Number(m[1]), loads: Number(m[2]) });
  });
  return out;
}

/**
 * Every function of a ptxas -v report spills nothing, except those matching `known` (each a
 * measured, explained exception), which must spill at most `knownBytes` — or the bytes paired with
 * the pattern, for an exception measured apart (the first matching entry decides).
 */
export function expectNoSpills(
  stderr: string,
  minFunctions: number,
  known: readonly (RegExp | readonly [RegExp, number])[] = [],
  knownBytes = 128,
): void {
  const spills = spillsByFunction(stderr);
  expect(spills.size).toBeGreaterThanOrEqual(minFunctions);
  const bound = (name: string): number => {
    for (const k of known) {
      const [re, bytes] = k instanceof RegExp ? [k, knownBytes] : k;
      if (re.test(name)) return bytes;
    }
    return 0;
  };
  for (const [name, s] of spills) {
    const limit = bound(name);
    expect(s.stores, `${name} spill stores`).toBeLessThanOrEqual(limit);
    expect(s.loads, `${name} spill loads`).toBeLessThanOrEqual(limit);
  }
}

/**
 * Schedule.decodeLean of a test build: the tensor-core decode's lean code (decode-mma-lean.ts) as a
 * knob when `knob` (the MMA_LEAN variants), else the kernel without it ('off', the code the
 * emulator tests were written against, also for quantized caches whose default is 'on').
 */
export const leanKnob = (knob: boolean): DecodeLean => (knob ? 'knob' : 'off');
