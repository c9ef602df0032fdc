// The checks after compiling: nvcc on batches of CUDA sources (one translation unit per arch, the
// sources split apart only when a batch fails, to name the culprit), the CUDA CPU emulator
// (test/cuda/emu.ts) on SIMT kernels, and WebGPU (lavapipe) on WGSL kernels, each against the
// repo's dense float64 reference with the tolerances its tests use.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EMU_CXX_FLAGS, emulationSource } from '../../dist/test/cuda/emu.js';
import { runCase } from '../../dist/test/cuda/emu-case.js';
import { makeInputs } from '../../dist/test/support/arbitraries.js';
import {
  expectAgreement,
  expectRoutedRun,
  routingOracle,
  runDense,
} from '../../dist/test/support/oracle-cases.js';
import { rng } from '../../dist/src/runtime/inputs.js';
import { storedRun } from '../../dist/src/runtime/stored-run.js';
import { checkWgslBackward } from '../../dist/test/backward/wgsl-check.js';
import { checkCudaBackward } from '../../dist/test/backward/cuda-check.js';
import { MMA_GRAD_TOL, checkMmaBackward } from '../../dist/test/backward/mma-check.js';
import { pagedLayout, pagedTable, physicalCache, stridedLayout } from '../../dist/test/support/kv-layouts.js';

const exec = promisify(execFile);
const NVCC_FLAGS = ['-std=c++17', '-Xcompiler', '-Wall', '-Werror', 'all-warnings'];

async function tool(cmd, args, cwd) {
  try {
    await exec(cmd, args, { cwd, maxBuffer: 64 << 20, timeout: 900_000 });
    return undefined;
  } catch (e) {
    return `${e.stderr ?? ''}${e.stdout ?? ''}${e.stderr || e.stdout ? '' : e.message}`.slice(0, 4000);
  }
}

/**
 * nvcc -c over `units` (each { key, arch, code, files }) of one arch in one translation unit;
 * returns the failing keys with nvcc's output. Errors name lines of the batch, which map to
 * units; only output with no such line (a ptxas error) recompiles the units alone.
 */
export async function nvccBatch(dir, arch, units) {
  mkdirSync(dir, { recursive: true });
  for (const u of units) for (const [n, t] of Object.entries(u.files)) writeFileSync(join(dir, n), t);
  const tu = join(dir, `batch-${arch}.cu`);
  const starts = [];
  let line = 1;
  for (const u of units) {
    starts.push(line);
    line += u.code.split('\n').length;
  }
  writeFileSync(tu, units.map((u) => u.code).join('\n'));
  const flags = [`-arch=${arch}`, ...NVCC_FLAGS, '-c'];
  const err = await tool('nvcc', [...flags, tu, '-o', `${tu}.o`], dir);
  if (err === undefined) return [];
  const lines = [...err.matchAll(/batch-sm_\w+\.cu\((\d+)\)/g)].map((m) => Number(m[1]));
  if (lines.length > 0) {
    const owner = (l) => starts.findLastIndex((s) => s <= l);
    const hit = [...new Set(lines.map(owner))];
    return hit.map((i) => ({ key: units[i].key, message: `nvcc -arch=${arch}: ${err}` }));
  }
  const failures = [];
  for (const [i, u] of units.entries()) {
    const one = join(dir, `one-${arch}-${i}.cu`);
    writeFileSync(one, u.code);
    const e = await tool('nvcc', [...flags, one, '-o', `${one}.o`], dir);
    if (e !== undefined) failures.push({ key: u.key, message: `nvcc -arch=${arch}: ${e}` });
  }
  return failures;
}

/** Builds and runs the CPU emulation of a SIMT artifact on the case's shape; throws on disagreement. */
export async function emulate(dir, c, compiled) {
  const { artifact, kernel } = compiled;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `${kernel.name}.emu.cpp`);
  writeFileSync(src, emulationSource(artifact, kernel));
  const exe = join(dir, `${kernel.name}.emu`);
  const err = await tool('g++', [...EMU_CXX_FLAGS, src, '-o', exe], dir);
  if (err !== undefined) throw new Error(`g++ (emulation): ${err}`);
  const s = c.shape;
  // The emulator's cases keep positions small: near-limit offsets belong to the WGSL run.
  const small = (o) => (o !== undefined && Math.abs(o) < 1e6 ? o : undefined);
  const kase = {
    label: JSON.stringify({ B: s.B, H: s.Hq, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk }),
    B: s.B,
    H: s.Hq,
    Hkv: s.Hkv,
    Nq: s.Nq,
    Nk: s.Nk,
    ...(small(s.qOffset) !== undefined ? { qOffset: s.qOffset } : {}),
    ...(small(s.kOffset) !== undefined ? { kOffset: s.kOffset } : {}),
    params: c.runParams,
  };
  await runCase(exe, join(dir, kernel.name), artifact, kernel, kase, c.seed);
}

/** Tensor buffers for the campaign's extra tensors (tb: f32[heads, W], bt: i32[batch, kv]). */
function extraTensors(c) {
  const r = rng(c.seed ^ 0x5bd1e995);
  const size = { heads: c.shape.Hq, batch: c.shape.B, kv: c.shape.Nk, kv_heads: c.shape.Hkv };
  // Salient marks: flags (a third of the tokens) or token lists (padding -1 and ids past Nk too).
  const int = {
    flags: () => (r() < 0.3 ? 1 : 0),
    list: () => Math.floor(r() * (c.shape.Nk + 3)) - 1,
  };
  const out = {};
  for (const [name, t] of Object.entries(c.tensors)) {
    const shape = t.dims.map((d) => (typeof d === 'number' ? d : size[d]));
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      t.dtype === 'f32'
        ? Float32Array.from({ length: n }, () => Math.round(r() * 64 - 32) / 64)
        : Int32Array.from({ length: n }, int[t.values] ?? (() => Math.floor(r() * 5)));
    out[name] = { data, shape };
  }
  return out;
}

let device;

/** The runtime's refusal of a module over the device's storage buffers (lavapipe allows 16). */
const OVER_STORAGE_LIMIT = /binds \d+ storage buffers[;,] the device allows/;

/** Near-ties the routed runs met (the oracle then checks the kernel's own valid top-k). */
export const routedTally = { executed: 0, nearTies: 0 };

/** A routing kernel's run against the routing oracle (test/support/oracle-cases.ts's expectRoutedRun). */
async function routed(gpu, compiled, c, inputs, params, where) {
  const s = c.shape;
  const sizes = { B: s.B, H: s.Hq, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk };
  const tensors = Object.fromEntries(compiled.kernel.tensors.map((t) => [t.name, inputs.tensors[t.name]]));
  const offsets = {
    ...(s.qOffset !== undefined ? { qOffset: s.qOffset } : {}),
    ...(s.kOffset !== undefined ? { kOffset: s.kOffset } : {}),
  };
  // Routing ranks key positions from 0 (docs/LANGUAGE.md): the runtime refuses a negative
  // k_offset by name, which a near-limit draw may have.
  if ((s.kOffset ?? 0) < 0) return 'refused';
  const res = await gpu.run({
    q: inputs.q,
    k: inputs.k,
    v: inputs.v,
    ...sizes,
    tensors: Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.data])),
    params,
    ...offsets,
  });
  const env = { params, tensors, sizes: { ...sizes, D: s.D } };
  const inp = { q: inputs.q, k: inputs.k, v: inputs.v, ...sizes, Hq: s.Hq, D: s.D, Dv: s.Dv, ...offsets };
  expectRoutedRun(routingOracle(compiled, env, inp), res, where, routedTally);
}

/**
 * The physical K/V caches and `kvCache` of the case's layout (packed: the logical arrays as they
 * are); unaddressed elements are NaN, so a read outside the addressed rows poisons the output.
 */
function placeKv(c, artifact, inputs) {
  if (c.layout === 'packed') return { k: inputs.k, v: inputs.v };
  const r = rng(c.seed ^ 0x6a09e667);
  const s = c.shape;
  const n = (W) => ({ B: s.B, Hkv: s.Hkv, Nk: s.Nk, W });
  const paged = c.layout.endsWith('pages');
  const table = paged ? pagedTable(s, c.pageSize, r) : undefined;
  const place = (logical, W) => {
    const l = paged
      ? pagedLayout(c.layout, n(W), c.pageSize, table)
      : stridedLayout(c.layout, n(W), r, artifact.kvRows?.align ?? 1);
    return { cache: physicalCache(logical, n(W), l), strides: l.layout.strides };
  };
  const k = place(inputs.k, s.D);
  const v = place(inputs.v, s.Dv);
  const kvCache = {
    k: k.strides,
    v: v.strides,
    ...(table ? { blockTable: table.blockTable, maxPages: table.maxPages } : {}),
  };
  return { k: k.cache, v: v.cache, kvCache };
}

/** Runs a WGSL artifact on WebGPU (lavapipe) against the dense reference; throws on disagreement. */
export async function runWgsl(c, compiled) {
  const { createKernel, getDevice } = await import('../../dist/src/runtime/webgpu.js');
  device ??= await getDevice();
  const inputs = makeInputs(c.shape, c.seed, { magnitude: 1 });
  inputs.tensors = { ...inputs.tensors, ...extraTensors(c) };
  const params = { ...Object.fromEntries(compiled.decl.defaults), ...c.runParams };
  const gpu = await createKernel(device, compiled.artifact, c.decodeMode ? { decode: c.decodeMode } : {});
  try {
    return await runCreated(gpu, c, compiled, inputs, params);
  } catch (e) {
    // Many tensors and quantized caches (decode mode adds its own) may pass lavapipe's 16 storage
    // buffers: the runtime names the limit before any dispatch, a refusal like a compile's.
    if (OVER_STORAGE_LIMIT.test(e?.message)) return 'refused';
    throw e;
  } finally {
    gpu.destroy();
  }
}

async function runCreated(gpu, c, compiled, inputs, params) {
  // runDense passes q/k/v as given: the physical caches replace the logical ones, with their
  // layout; a quantized cache (a `store` draw, packed) replaces the reference's K or V with the
  // values its codes define, and the run binds the codes instead.
  const data = Object.fromEntries(Object.entries(inputs.tensors).map(([n, t]) => [n, t.data]));
  const stored = storedRun(compiled.kernel.formats, c.shape, rng(c.seed ^ 0x3c6ef372), data);
  for (const w of ['k', 'v']) if (stored.values[w]) inputs[w] = stored.values[w];
  const kv = { ...placeKv(c, compiled.artifact, inputs), caches: stored.caches };
  for (const w of ['k', 'v']) if (stored.caches[w]) kv[w] = new Float32Array(0);
  const placed = { run: (i) => gpu.run({ ...i, ...kv }), destroy: () => undefined };
  const where = ` (${JSON.stringify(c.shape)} ${c.layout})`;
  if (compiled.kernel.routing) return await routed(placed, compiled, c, inputs, params, where);
  const { res, ref } = await runDense(placed, compiled, c.shape, inputs, params);
  expectAgreement(res, ref, where, 1e-5);
  return undefined;
}

/** Gradients within this of the reference (test/backward's 2e-5, with room for D up to 128). */
const GRAD_TOL = 5e-5;

function expectGradients(errors, c, tol = GRAD_TOL) {
  const bad = Object.entries(errors).filter(([, e]) => !(e <= tol));
  if (bad.length > 0)
    throw new Error(
      `gradients off (${JSON.stringify(c.shape)}): ${bad.map(([n, e]) => `${n} ${e}`).join(', ')}`,
    );
}

/** The WGSL backward (with the forward it needs) on lavapipe against the gradient reference. */
export async function backwardWgsl(c) {
  const tensors = { ...extraTensors(c) };
  const opts = { tile: c.tile.blockK, params: c.runParams, tensors };
  let errors;
  try {
    errors = await checkWgslBackward(c.source, c.shape, c.seed, opts);
  } catch (e) {
    // The tile is the draw's: at a large head dim it may not fit the device (a positioned refusal).
    if (e?.name === 'CompileError' && /no wgsl schedule fits/.test(e.message)) return 'refused';
    // A program with several tensors may bind more storage buffers than lavapipe's 16: the
    // runtime says so before any dispatch (the device's limit, as for the forward).
    if (OVER_STORAGE_LIMIT.test(e?.message)) return 'refused';
    throw e;
  }
  expectGradients(errors, c);
}

/** The case's shape for the CPU emulator: as the forward emulation, near-limit offsets belong to the WGSL run. */
function emuShape(c) {
  const small = (o) => (o !== undefined && Math.abs(o) < 1e6 ? o : undefined);
  return { ...c.shape, qOffset: small(c.shape.qOffset), kOffset: small(c.shape.kOffset) };
}

/** Half the draws (odd seeds) put a gradient on lse too (Args.dlse), the rest leave it null. */
const withDlse = (c) => (c.seed & 1) === 1;

/** The CUDA SIMT backward on the CPU emulator against the gradient reference. */
export async function backwardEmu(c) {
  const shape = emuShape(c);
  const opts = { params: c.runParams, tensors: extraTensors(c), dlse: withDlse(c) };
  expectGradients(await checkCudaBackward(c.source, shape, c.seed, opts), { ...c, shape });
}

/**
 * The mma.sync backward (bf16 for f32 draws, as its compile job) on the CPU emulator
 * (test/cuda/backward-mma-emu.ts) against the gradient reference, within backward-mma-emu.test.ts's
 * tolerance, in the default or the deterministic mode (dq without atomics, by its own kernel).
 */
export async function backwardMmaEmu(c, deterministic) {
  const shape = emuShape(c);
  const opts = {
    dtype: c.dtype === 'f32' ? 'bf16' : c.dtype,
    arch: c.mmaArch ?? 'sm_80',
    deterministic,
    params: c.runParams,
    tensors: extraTensors(c),
    dlse: withDlse(c),
    // The dK/dV patch order is opt-in (Schedule.patchTweaks 'backward'): take it where it applies.
    ...(c.features.includes('neighbourhood') ? { schedule: { patchTweaks: ['backward'] } } : {}),
  };
  expectGradients(await checkMmaBackward(c.source, shape, c.seed, opts), { ...c, shape }, MMA_GRAD_TOL);
}
