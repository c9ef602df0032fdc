// The Node examples run and pass their own reference checks (they use the built CLI and dist/:
// `npm test` builds first). The browser example has its own test in test/browser.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const node = (...args: string[]) => {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('examples/', () => {
  it('is built', () => expect(existsSync('dist/src/cli/main.js'), 'run `npm run build` first').toBe(true));

  it('engine-loop.mjs: 4 layers (GQA, different masks/params) on the GPU, every layer checked', () => {
    const r = node('examples/engine-loop.mjs', '--steps', '2', '--tokens', '96');
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^step 1: [\d.]+ ms \(4 layers, 1 submit\)$/m);
    expect(r.out.match(/agrees with the reference/g)).toHaveLength(4);
  });

  it('engine-loop.mjs: a bad --tokens/--steps is a one-line usage error, before any GPU work', () => {
    // --tokens 0 used to run, then die in compareArrays (a 16-byte buffer against 0 floats);
    // --steps 0 died on `undefined.toFixed`; --tokens abc was a KernelInputError about NaN sizes.
    for (const [flag, value] of [
      ['--tokens', '0'],
      ['--tokens', 'abc'],
      ['--steps', '0'],
    ] as const) {
      const r = node('examples/engine-loop.mjs', flag, value);
      expect(r.code, r.out + r.err).toBe(2);
      expect(r.err.trim()).toBe(`engine-loop: ${flag} expects a positive integer, got \`${value}\``);
    }
    const r = node('examples/engine-loop.mjs', '--tokens', '-5');
    expect([r.code, r.err.split('\n').length]).toEqual([2, 2]);
  });

  it('browser/build.mjs: a misspelt flag is a usage error, not a build that does not serve', () => {
    // `--serv` built the example and exited without serving, and `--help` built it too.
    for (const flag of ['--serv', '--help']) {
      const r = node('examples/browser/build.mjs', flag);
      expect([r.code, r.out]).toEqual([2, '']);
      expect(r.err.trim()).toMatch(
        /^browser\/build\.mjs: .*\(usage: node examples\/browser\/build\.mjs \[--serve\]\)$/,
      );
    }
  });

  it('custom-mask.mjs: it takes no flags, and says so instead of ignoring one', () => {
    // `--window 16` ran the example with its own window and no word.
    const r = node('examples/custom-mask.mjs', '--window', '16');
    expect([r.code, r.out]).toEqual([2, '']);
    expect(r.err.trim()).toBe(
      "custom-mask.mjs: Unknown option '--window' (usage: node examples/custom-mask.mjs; edit its source to try another mask)",
    );
  });

  it('custom-mask.mjs: compile a mask from a string and run it', () => {
    const r = node('examples/custom-mask.mjs');
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/strided_local: relative error/);
  });
});
