// The browser example (bundled by build.mjs with esbuild). On the page's own navigator.gpu it runs
// 1. a kernel module generated at build time (`attnc compile stdlib/document.attn --emit ts`), and
// 2. a mask compiled in the page with attnc's compile() for the adapter's real limits, run by
//    attnc's runtime,
// and checks both against the dense float64 reference (bundled too). The outcome goes into
// <pre id="result"> with data-status="pass|fail|error" and the numbers as JSON in data-result.
import { checkSource, compile } from '../../src/index.js';
import { wgslWorkgroupBytes } from '../../src/codegen/wgsl/limits.js';
import { declPredicates } from '../../src/runtime/ast-eval.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { randomNormal, randomTensor, rng } from '../../src/runtime/inputs.js';
import { referenceAttention } from '../../src/runtime/reference.js';
import { createKernel as createRuntimeKernel, deviceLimits } from '../../src/runtime/webgpu.js';
import * as generated from './build/generated/document.js';

const TOL = 1e-5;
const sizes = { B: 1, H: 4, Hkv: 2, Nq: 96, Nk: 128 };

/** Compiled in the page: causal attention over a local window plus every 16th token. */
const pageSource = `attention strided_local(window: int = 32, stride: int = 16) {
  mask causal && (q - k < window || k % stride == 0)
}`;

interface Outcome {
  name: string;
  how: string;
  relError: number;
  lseRelError: number;
  maxAbsError: number;
  pipelineMs: number;
  runMs: number;
  ok: boolean;
}

type Inputs = { q: Float32Array; k: Float32Array; v: Float32Array };

function inputs(D: number, seed: number): Inputs {
  const rand = rng(seed);
  const { B, H, Hkv, Nq, Nk } = sizes;
  return {
    q: randomNormal(B * H * Nq * D, rand),
    k: randomNormal(B * Hkv * Nk * D, rand),
    v: randomNormal(B * Hkv * Nk * D, rand),
  };
}

/** The reference of `source` in JS: the AST interpreter's predicates over a dense softmax. */
function reference(source: string, x: Inputs, D: number, params: Record<string, number>, doc?: Int32Array) {
  const { decl } = checkSource(source);
  const tensors: Record<string, { data: Int32Array; shape: number[] }> = {};
  if (doc) tensors.doc = { data: doc, shape: [sizes.Nk] };
  const pred = declPredicates(decl.decl, { params, tensors, sizes: { ...sizes, D } });
  return referenceAttention({ ...x, ...sizes, Hq: sizes.H, D, Dv: D }, pred);
}

function outcome(
  name: string,
  how: string,
  res: { out: Float32Array; lse?: Float32Array },
  ref: { out: Float64Array; lse: Float64Array; outScale: number },
  pipelineMs: number,
  runMs: number,
): Outcome {
  const out = compareArrays(res.out, ref.out, ref.outScale);
  const lse = res.lse ? compareArrays(res.lse, ref.lse, 1) : { relError: 0, nanCount: 0 };
  const ok = out.nanCount + lse.nanCount === 0 && out.relError <= TOL && lse.relError <= TOL;
  return {
    name,
    how,
    relError: out.relError,
    lseRelError: lse.relError,
    maxAbsError: out.maxAbsError,
    pipelineMs,
    runMs,
    ok,
  };
}

/** 1. The module generated at build time: no attnc code on this path but the reference. */
async function runGenerated(device: GPUDevice): Promise<Outcome> {
  const D = generated.schedule.headDim;
  const x = inputs(D, 1);
  const doc = randomTensor({ name: 'doc', dtype: 'i32', dims: [] }, sizes.Nk, rng(2)) as Int32Array;
  const t0 = performance.now();
  const kernel = await generated.createKernel(device);
  const t1 = performance.now();
  const res = await kernel.dispatch({ ...x, doc, sizes });
  const t2 = performance.now();
  kernel.destroy();
  const ref = reference(generated.source, x, D, {}, doc);
  return outcome(generated.kernelName, 'generated module (build time)', res, ref, t1 - t0, t2 - t1);
}

/** 2. compile() in the page, for this device's limits, run by attnc's runtime. */
async function runCompiled(device: GPUDevice): Promise<Outcome> {
  const D = 32;
  const params = { window: 24, stride: 16 };
  const { artifact } = compile(pageSource, { target: 'wgsl', headDim: D, limits: deviceLimits(device) });
  const s = artifact.schedule;
  const x = inputs(D, 3);
  const t0 = performance.now();
  const kernel = await createRuntimeKernel(device, artifact);
  const t1 = performance.now();
  const res = await kernel.run({ ...x, ...sizes, params: { window: params.window } });
  const t2 = performance.now();
  kernel.destroy();
  // compile() picks the engine from the adapter: coop on a GPU, row on a CPU adapter.
  const engine = s.wgslEngine ?? 'row';
  const how = `compile() in this page (${engine} engine, blockQ ${s.blockQ}, blockK ${s.blockK}, ${wgslWorkgroupBytes(s)} B workgroup memory)`;
  return outcome(artifact.name, how, res, reference(pageSource, x, D, params), t1 - t0, t2 - t1);
}

function describeAdapter(adapter: GPUAdapter, device: GPUDevice): string {
  const info = adapter.info;
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || 'unknown';
  const l = deviceLimits(device);
  return `adapter: ${name}\ndevice limits: ${l.maxWorkgroupStorageBytes} B workgroup storage, ${l.maxInvocations} invocations, shader-f16 ${l.shaderF16 ? 'yes' : 'no'}, ${l.softwareAdapter ? 'CPU' : 'GPU'} adapter`;
}

const fmt = (x: number): string => x.toExponential(2);

function report(header: string, outcomes: Outcome[]): string {
  const lines = [
    header,
    `sizes: B=${sizes.B} H=${sizes.H} Hkv=${sizes.Hkv} (GQA) Nq=${sizes.Nq} Nk=${sizes.Nk}`,
    '',
  ];
  for (const o of outcomes) {
    lines.push(
      `${o.name}: ${o.how}`,
      `  ${o.ok ? 'agrees with' : 'DISAGREES with'} the reference (tolerance ${fmt(TOL)})`,
      `  out relative error ${fmt(o.relError)} (max abs ${fmt(o.maxAbsError)}), lse relative error ${fmt(o.lseRelError)}`,
      `  time: pipeline ${o.pipelineMs.toFixed(1)} ms, run ${o.runMs.toFixed(1)} ms`,
      '',
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const result = document.querySelector<HTMLPreElement>('#result')!;
  const verdict = document.querySelector<HTMLParagraphElement>('#verdict')!;
  try {
    if (!navigator.gpu) throw new Error('navigator.gpu is undefined: this browser has no WebGPU');
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null: no WebGPU adapter');
    // Default limits (16 KiB of workgroup storage): modest tiles compile fast on software adapters.
    const device = await adapter.requestDevice();
    const outcomes = [await runGenerated(device), await runCompiled(device)];
    const ok = outcomes.every((o) => o.ok);
    result.textContent = report(describeAdapter(adapter, device), outcomes);
    result.dataset.result = JSON.stringify(outcomes);
    result.dataset.status = ok ? 'pass' : 'fail';
    verdict.textContent = ok ? 'PASS: both kernels match the reference.' : 'FAIL: see below.';
  } catch (e) {
    result.textContent = `error: ${(e as Error).message}`;
    result.dataset.status = 'error';
    verdict.textContent = 'ERROR';
  }
}

void main();
