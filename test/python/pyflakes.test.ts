// Static check of the Python package with pyflakes (Debian's python3-pyflakes, which
// scripts/setup-system.sh installs). CI has no torch, so the torch-side modules (the custom op, its
// autograd wiring, python/gpu_tests) never run there: an undefined name in them shows only on a GPU
// machine (round 19's `indices` in setup_context did). pyflakes reads the code without importing it.
// bench/ is left out: its scripts use names in lambdas that a later `del` unbinds, which pyflakes
// reports as undefined (a known false positive of its deferred function bodies).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const python = process.env.ATTNC_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

function pyflakes(...paths: string[]): { status: number | null; output: string } {
  const r = spawnSync(python, ['-m', 'pyflakes', ...paths], { encoding: 'utf8' });
  const output = `${r.error?.message ?? ''}${r.stdout}${r.stderr}`;
  expect(output, 'python3-pyflakes is missing: run scripts/setup-system.sh').not.toContain(
    'No module named pyflakes',
  );
  return { status: r.status, output };
}

describe('python/ and examples/ (pyflakes)', () => {
  it('have no undefined or unused names', () => {
    const { status, output } = pyflakes('python', 'examples');
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('reports an undefined name in a function body (what it is here for)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-pyflakes-'));
    const file = join(dir, 'setup.py');
    writeFileSync(
      file,
      'def setup_context(ctx, output):\n    out, lse, _ = output\n    ctx.save(out, lse, indices)\n',
    );
    const { status, output } = pyflakes(file);
    expect(status).toBe(1);
    expect(output).toContain("undefined name 'indices'");
  });
});
