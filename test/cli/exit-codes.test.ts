// Exit statuses as documented (README, `attnc --help`): 0 ok, 1 usage/input error, 2 internal
// error, 3 `attnc run` disagrees with the reference. In-process, with the GPU run stubbed so a
// disagreement can be produced on demand.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunReport } from '../../src/cli/run-kernel.js';

const report = vi.hoisted(() => ({ current: undefined as unknown }));
vi.mock('../../src/cli/run-kernel.js', () => ({ runKernel: async () => report.current }));

const { runCli } = await import('../../src/cli/cli.js');
const { EXIT } = await import('../../src/cli/exit.js');

function fakeReport(outError: number): RunReport {
  const agreement = { maxAbsError: outError, relError: outError, nanCount: 0 };
  return {
    name: 'causal',
    out: agreement as RunReport['out'],
    lse: undefined,
    density: 0.5,
    tiles: { empty: 1, full: 1, partial: 1 },
    compileMs: 1,
    pipelineMs: 1,
    gpuMs: 1,
    referenceMs: 1,
    bytes: { q: 4, k: 4, v: 4, tensors: 0, out: 4, lse: 0, indices: 0, total: 16 },
    tolerance: 1e-5,
  };
}

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await runCli(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => {
  report.current = undefined;
});

describe('exit statuses', () => {
  it('the codes are distinct and documented in --help', async () => {
    expect(new Set(Object.values(EXIT)).size).toBe(4);
    const help = await capture(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/exit status: 0 success; 1 usage or input error/);
    expect(help.out).toMatch(/2 internal error/);
    expect(help.out).toMatch(/3 `attnc run`: the kernel\s+disagrees with the reference/);
  });

  it('run: 0 when the kernel agrees, 3 (not 1) when it disagrees', async () => {
    report.current = fakeReport(0);
    expect((await capture(['run', 'stdlib/causal.attn'])).code).toBe(EXIT.ok);
    report.current = fakeReport(0.5);
    const bad = await capture(['run', 'stdlib/causal.attn']);
    expect(bad.out).toContain('DISAGREES with the reference');
    expect(bad.code).toBe(3);
  });

  it('user errors are 1 with one line; an internal error is 2 with its stack', async () => {
    const usage = await capture(['compile', 'stdlib/causal.attn', '--target', 'metal']);
    expect(usage.code).toBe(1);
    expect(usage.err).toBe('attnc: --target expects wgsl or cuda, got `metal`\n');
    report.current = Promise.reject(new TypeError('boom'));
    const internal = await capture(['run', 'stdlib/causal.attn']);
    expect(internal.code).toBe(2);
    expect(internal.err).toMatch(/^attnc: internal error: TypeError: boom\n\s+at /);
  });
});

describe('user errors are one line', () => {
  it('an InputError with several problems is joined onto one line', async () => {
    const { InputError } = await import('../../src/runtime/validate.js');
    const { userErrorMessage } = await import('../../src/cli/exit.js');
    const e = new InputError([
      'size Nq: expected an integer ≥ 0, got -1',
      'qOffset: expected an i32 (integer), got NaN',
    ]);
    expect(e.message).toContain('\n');
    expect(userErrorMessage(e)).toBe(
      'invalid inputs: size Nq: expected an integer ≥ 0, got -1; qOffset: expected an i32 (integer), got NaN',
    );
    const kernelInput = Object.assign(new Error('a\nb'), { name: 'KernelInputError', issues: ['a', 'b'] });
    expect(userErrorMessage(kernelInput)).toBe('invalid inputs: a; b');
    expect(userErrorMessage(new TypeError('x'))).toBeUndefined();
    const { MissingDependencyError } = await import('../../src/optional.js');
    expect(userErrorMessage(new MissingDependencyError('webgpu', 'running kernels'))).toBe(
      'running kernels needs the optional package `webgpu`: install it with `npm install webgpu`',
    );
  });
});
