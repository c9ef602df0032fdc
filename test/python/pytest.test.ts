// The Python package's pure tests (python/tests: manifests -> ctypes args, call checks and their
// messages, build caching) run with Debian's python3 + python3-pytest, so `npm test` covers them.
// A missing pytest fails here (scripts/setup-system.sh installs it), never skips.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Debian's python3, which scripts/setup-system.sh gives pytest (a pyenv python3 earlier on PATH
// may lack it); ATTNC_PYTHON overrides.
const python = process.env.ATTNC_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

describe('python/tests (pytest)', () => {
  it('passes', () => {
    const r = spawnSync(python, ['-m', 'pytest', 'python/tests', '-q', '-p', 'no:cacheprovider'], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    const output = `${r.error?.message ?? ''}${r.stdout}${r.stderr}`;
    expect(r.error, output).toBeUndefined();
    expect(output, 'python3-pytest is missing: run scripts/setup-system.sh').not.toContain(
      'No module named pytest',
    );
    expect(r.status, output).toBe(0);
    expect(output).toMatch(/\d+ passed/);
  });
});
