// The emulator's precompiled standard headers (emu-pch.ts): a build through run() uses the .gch,
// computes the same program, and reports errors at the source's own file and line.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from './compile-cache.js';
import { EMU_SHIM_INCLUDES, withPrecompiledShim } from './emu-pch.js';
import { shim } from '../cuda/emu.js';
import { run } from '../cuda/support.js';

const FLAGS = ['-std=c++20', '-O1', '-w'];

describe('precompiled emulator headers', () => {
  it('are the head of the emulator shim', () => {
    expect(shim.startsWith(EMU_SHIM_INCLUDES)).toBe(true);
  });

  it('serve a build that starts with them: same program, the .gch is valid and read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-pch-test-'));
    const src = join(dir, 'p.emu.cpp');
    const body = `std::vector<int> v{1, 2, 3};\nint main() { printf("%d %d\\n", (int)v.size(), SALT); }\n`;
    writeFileSync(src, EMU_SHIM_INCLUDES + body);
    const salt = Date.now() % 100_000; // a fresh cache key
    const r = await run('g++', [...FLAGS, `-DSALT=${salt}`, src, '-o', join(dir, 'p')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await run(join(dir, 'p'), [])).stdout).toBe(`3 ${salt}\n`);
    // The rewritten copy: -H lists the .gch ("!") when g++ takes it, -Winvalid-pch says why not.
    const args = withPrecompiledShim(
      'g++',
      [...FLAGS, '-DSALT=1', src, '-o', join(dir, 'q')],
      dir,
      cacheDir(),
    );
    expect(args).not.toContain(src);
    const report = execFileSync('sh', ['-c', 'g++ "$@" -H -Winvalid-pch 2>&1 >/dev/null', 'sh', ...args], {
      encoding: 'utf8',
    });
    expect(report).toMatch(/^! \S+emu-shim-\w+\.h\.gch$/m);
    expect(report).not.toMatch(/invalid|not using/);
  });

  it('leave other sources alone and report errors at the source line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-pch-test-'));
    const other = join(dir, 'other.cpp');
    writeFileSync(other, '#include <vector>\nint main() {}\n');
    expect(withPrecompiledShim('g++', [other, '-o', join(dir, 'o')], dir, cacheDir())).toContain(other);
    const bad = join(dir, 'bad.emu.cpp');
    writeFileSync(bad, `${EMU_SHIM_INCLUDES}int main() {\n  return undefined_name;\n}\n`);
    const r = await run('g++', [...FLAGS, bad, '-o', join(dir, 'bad')]);
    expect(r.code).not.toBe(0);
    const line = EMU_SHIM_INCLUDES.split('\n').length + 1;
    expect(r.stderr).toContain(`${bad}:${line}:`);
  });
});
