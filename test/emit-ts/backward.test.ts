// An emitted module's backward() (emit-ts-backward.ts, issue #14) on lavapipe: the module's own
// forward dispatch gives out and lse, its backward() gives dq, dk, dv and the param/tensor
// gradients, equal bit for bit to runWgslBackward over the same WGSL and within 1e-4 of the
// float64 gradient reference; bad arguments are KernelInputErrors naming them.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/cli.js';
import { compileBackward } from '../../src/backward.js';
import { emitKernelModule } from '../../src/codegen/emit-ts.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { runWgslBackward } from '../../src/runtime/backward-webgpu.js';
import { rng } from '../../src/runtime/inputs.js';
import { referenceGradients } from '../../src/runtime/reference-grad.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import { makeInputs, type Shape } from '../support/arbitraries.js';
import { drawDlse, evalEnv, f32TensorLengths, gradPredicates } from '../backward/support.js';
import { importTs, typecheck } from './support.js';

interface BackwardModule {
  createKernel(device: GPUDevice): Promise<{
    dispatch(args: object): Promise<{ out: Float32Array; lse: Float32Array }>;
    destroy(): void;
  }>;
  backward(
    device: GPUDevice,
    args: object,
  ): Promise<{
    dq: Float32Array;
    dk: Float32Array;
    dv: Float32Array;
    dParams: Record<string, number>;
    dTensors: Record<string, Float32Array>;
  }>;
  KernelInputError: new (issues: readonly string[]) => Error;
}

const shape: Shape = { B: 2, Hq: 4, Hkv: 2, Nq: 19, Nk: 33, D: 16, Dv: 16 };

async function check(
  source: string,
  name: string,
  params: Record<string, number>,
  withDlse = false,
): Promise<void> {
  const device = await getDevice();
  const c = compileBackward(source, { headDim: 16 });
  const { files } = emitKernelModule(c.artifact, { backward: c.backward });
  const mod = await importTs<BackwardModule>(`${name}_bwd`, files[`${name}.ts`]!);
  // The f32 tensor of these programs is a per-head gain (positive: the score takes its log).
  const gain = { data: Float32Array.from({ length: shape.Hq }, (_, h) => 0.5 + 0.75 * h), shape: [shape.Hq] };
  const made0 = makeInputs(shape, 5);
  const made = { ...made0, tensors: { ...made0.tensors, gain } } as typeof made0;
  const tensors = Object.fromEntries(
    c.kernel.tensors.map((t) => [
      t.name,
      (made.tensors as Record<string, { data: Float32Array | Int32Array }>)[t.name]!.data,
    ]),
  );
  const sizes = { B: shape.B, H: shape.Hq, Hkv: shape.Hkv, Nq: shape.Nq, Nk: shape.Nk };
  const kernel = await mod.createKernel(device);
  const fwd = await kernel.dispatch({ q: made.q, k: made.k, v: made.v, sizes, params, ...tensors });
  kernel.destroy();
  const r = rng(9);
  const dout = Float32Array.from({ length: shape.B * shape.Hq * shape.Nq * shape.Dv }, () => r() * 2 - 1);
  // withDlse: a gradient flows into lse too.
  const dlse = drawDlse(withDlse, shape, r);
  const base = {
    q: made.q,
    k: made.k,
    v: made.v,
    out: fwd.out,
    lse: fwd.lse,
    dout,
    ...(dlse ? { dlse } : {}),
  };
  const got = await mod.backward(device, { ...base, ...tensors, sizes, params });
  const runtime = await runWgslBackward(device, c.backward, { ...base, ...sizes, params, tensors });
  // dq, dk and dv have one writer per element: bit-equal to the runtime's. Param and tensor
  // gradients accumulate through f32 atomics, order-dependent in the last bits (docs/BACKWARD.md).
  expect([got.dq, got.dk, got.dv]).toEqual([runtime.dq, runtime.dk, runtime.dv]);
  expect(Object.keys(got.dParams).sort()).toEqual(Object.keys(runtime.dParams).sort());
  expect(Object.keys(got.dTensors).sort()).toEqual(Object.keys(runtime.dTensors).sort());
  for (const p of Object.keys(runtime.dParams))
    expect(
      compareArrays([got.dParams[p]!], [runtime.dParams[p]!], 1e-3).relError,
      `d${p}`,
    ).toBeLessThanOrEqual(1e-6);
  for (const t of Object.keys(runtime.dTensors))
    expect(compareArrays(got.dTensors[t]!, runtime.dTensors[t]!, 1e-3).relError, `d${t}`).toBeLessThanOrEqual(
      1e-6,
    );
  const all = { ...Object.fromEntries(c.decl.defaults), ...params };
  const env = evalEnv(c.decl.decl, all, shape, made);
  const ref = referenceGradients(
    { ...shape, q: made.q, k: made.k, v: made.v },
    gradPredicates(c.decl.decl, env),
    dout,
    f32TensorLengths(c.decl.decl, env),
    dlse,
  );
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => {
    let floor = 1e-3;
    for (let i = 0; i < b.length; i++) floor = Math.max(floor, Math.abs(b[i]!));
    expect(compareArrays(a, b, floor).relError, what).toBeLessThanOrEqual(1e-4);
  };
  close(got.dq, ref.dq, 'dq');
  close(got.dk, ref.dk, 'dk');
  close(got.dv, ref.dv, 'dv');
  for (const p of c.backward.gradParams) close([got.dParams[p]!], [ref.dParams.get(p) ?? 0], `d${p}`);
  for (const t of c.backward.gradTensors) close(got.dTensors[t]!, ref.dTensors.get(t)!, `d${t}`);
  // Bad arguments: named, before the GPU.
  const err = await mod
    .backward(device, { ...base, dout: dout.subarray(1), sizes, params: { ...params, nope: 1 } })
    .then(
      () => undefined,
      (x: unknown) => x,
    );
  expect(err).toBeInstanceOf(mod.KernelInputError);
  expect(String((err as Error).message)).toContain('input "dout"');
  expect(String((err as Error).message)).toContain('param "nope"');
  if (!dlse) return;
  const short = await mod.backward(device, { ...base, dlse: dlse.subarray(1), sizes, params }).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(String((short as Error).message)).toContain(
    `input "dlse": expected [B, H, Nq] (${dlse.length} elements`,
  );
}

describe('emitted backward()', () => {
  it('a score with an f32 param: dq, dk, dv and d(cap)', async () => {
    await check(
      'attention softcapped(cap: f32 = 5.0) {\n  score cap * tanh(score / cap)\n  mask causal\n}\n',
      'softcapped',
      {
        cap: 4,
      },
    );
  }, 120_000);

  it('a score reading an f32 tensor, a gradient into lse too: d(gain) per head', async () => {
    await check(
      'attention sinkcal(sinks: int = 1, gain: f32[heads]) {\n  score k < sinks ? score + log(gain[h]) : score\n  mask causal\n}\n',
      'sinkcal',
      {},
      true,
    );
  }, 120_000);

  it('type-checks under strict settings, as .ts and as .js + .d.ts', () => {
    const c = compileBackward('attention sc(cap: f32 = 5.0) {\n  score cap * tanh(score / cap)\n}\n', {
      headDim: 16,
    });
    const ts = emitKernelModule(c.artifact, { backward: c.backward }).files;
    const js = emitKernelModule(c.artifact, { backward: c.backward, lang: 'js' }).files;
    const use = [
      "import { backward } from './sc.js';",
      'export async function grads(device: GPUDevice, q: Float32Array) {',
      '  const sizes = { B: 1, H: 1, Hkv: 1, Nq: 1, Nk: 1 };',
      '  const g = await backward(device, { q, k: q, v: q, out: q, lse: q, dout: q, sizes, params: { cap: 2 } });',
      '  return g.dParams.cap;',
      '}',
    ].join('\n');
    expect(typecheck({ ...ts, 'use.ts': use })).toEqual([]);
    expect(typecheck({ 'sc.d.ts': js['sc.d.ts']!, 'use.ts': use })).toEqual([]);
  }, 120_000);

  it('attnc compile --emit ts --backward writes it; a kernel without a backward is a one-line error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-'));
    const err: string[] = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((x) => (err.push(String(x)), true));
    try {
      const args = ['--target', 'wgsl', '--emit', 'ts', '--backward', '--dim', '16'];
      expect(await runCli(['compile', 'stdlib/softcap.attn', ...args, '--out', dir])).toBe(0);
      expect(readFileSync(join(dir, 'softcap.ts'), 'utf8')).toContain('export async function backward(');
      expect(await runCli(['compile', 'stdlib/biformer.attn', ...args])).toBe(1);
      expect(err.join('')).toContain(
        '--backward: the WGSL backward pass does not take routing/selection kernels; the CUDA SIMT backward takes them',
      );
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  });
});
