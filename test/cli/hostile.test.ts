// Hostile paths and sizes against the built CLI (issue 9, items 6 and 8): each is one line on
// stderr naming what is wrong, exit 1, no stack trace, and it ends promptly — never a hang on a
// pseudo file system, an allocation crash or an unbounded wait for the reference.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = 'dist/src/cli/main.js';
/** A hang guard, not a timing assertion: each case takes a second or two. */
const BOUND_MS = 30_000;

function attnc(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: BOUND_MS });
  return { code: r.status, out: r.stdout, err: r.stderr, timedOut: r.error !== undefined };
}

/** Exit 1 with exactly one line, `attnc: …` matching `what`, and no stack trace. */
function expectOneLineError(r: ReturnType<typeof attnc>, what: RegExp): void {
  expect(r.timedOut, 'ended within the bound').toBe(false);
  const lines = r.err.split('\n').filter((l) => l && !/^Warning: /.test(l)); // Dawn's start-up notes
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^attnc: /);
  expect(lines[0]).toMatch(what);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(1);
}

const dir = mkdtempSync(join(tmpdir(), 'attnc-hostile-'));
const aFile = join(dir, 'afile');
writeFileSync(aFile, 'not a directory\n');
const src = 'stdlib/causal.attn';

describe('--out onto paths that cannot be written', () => {
  it('compile --out: an existing file, /dev/null, below a file, under /proc, under /sys', () => {
    expectOneLineError(
      attnc('compile', src, '--out', aFile),
      /^attnc: cannot write .*afile: it exists and is not a directory$/,
    );
    expectOneLineError(attnc('compile', src, '--out', '/dev/null'), /cannot write \/dev\/null: /);
    expectOneLineError(
      attnc('compile', src, '--out', join(aFile, 'sub')),
      /cannot write .*afile\/sub: .*\(ENOTDIR\)$/,
    );
    // Node 20's recursive mkdir loops forever here: this used to hang.
    expectOneLineError(attnc('compile', src, '--out', '/proc/x'), /cannot write \/proc\/x: .*\(ENOENT\)$/);
    expectOneLineError(attnc('compile', src, '--out', '/proc/x/y/z'), /cannot write \/proc\/x\/y\/z: /);
    expectOneLineError(attnc('compile', src, '--emit', 'js', '--out', '/proc/x'), /cannot write \/proc\/x: /);
    expectOneLineError(
      attnc('compile', src, '--out', '/sys/attnc-test'),
      /cannot write \/sys\/attnc-test: .*\(E[A-Z]+\)$/,
    );
  });

  it('viz --out: under /proc, below a file, onto a directory', () => {
    expectOneLineError(
      attnc('viz', src, '--nq', '64', '--out', '/proc/x/m.svg'),
      /cannot write \/proc\/x\/m\.svg: .*\(ENOENT\)$/,
    );
    expectOneLineError(attnc('viz', src, '--nq', '64', '--out', join(aFile, 'm.png')), /\(ENOTDIR\)$/);
    const asDir = join(dir, 'd.svg');
    mkdirSync(asDir);
    expectOneLineError(
      attnc('viz', src, '--nq', '64', '--out', asDir),
      /cannot write .*d\.svg: it is a directory \(EISDIR\)$/,
    );
  });

  it('viz --out onto a FIFO: refused instead of waiting for a reader forever', () => {
    const fifo = join(dir, 'fifo.svg');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectOneLineError(
      attnc('viz', src, '--nq', '64', '--out', fifo),
      /cannot write .*fifo\.svg: it is a FIFO or socket/,
    );
  });

  it('compile --out into a new nested directory still works', () => {
    const out = join(dir, 'a', 'b', 'c');
    const r = attnc('compile', src, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(join(out, 'causal.wgsl'));
  });
});

describe('sources that are not regular files', () => {
  it('/dev/zero, a directory: one line instead of reading forever', () => {
    expectOneLineError(attnc('check', '/dev/zero'), /^attnc: cannot read \/dev\/zero: not a regular file$/);
    expectOneLineError(attnc('check', dir), /cannot read .*: it is a directory$/);
    expectOneLineError(
      attnc('check', join(dir, 'none.attn')),
      /cannot read .*none\.attn: no such file \(ENOENT\)$/,
    );
  });
});

describe('source encodings', () => {
  it('a UTF-8 byte-order mark is not part of the source (it was "unexpected character U+FEFF")', () => {
    const bom = join(dir, 'bom.attn');
    writeFileSync(bom, '\ufeffattention w() {\n  mask causal\n}\n');
    const r = attnc('check', bom);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('bytes that are not UTF-8: one line naming the file and the line', () => {
    const latin1 = join(dir, 'latin1.attn');
    writeFileSync(latin1, Buffer.from('attention w() {\n  // caf\xe9\n}\n', 'latin1'));
    expectOneLineError(
      attnc('check', latin1),
      /^attnc: cannot read .*latin1\.attn: not UTF-8 text \(the first invalid byte is on line 2\); save it as UTF-8$/,
    );
  });
});

describe('flags: one line naming the flag and what it got', () => {
  // parseArgs refused these as "ambiguous" in three lines that never showed the value.
  it("a negative number after a flag is that flag's value, checked by the flag", () => {
    expectOneLineError(attnc('run', src, '--nq', '-5'), /^attnc: --nq expects a positive integer, got `-5`$/);
    expectOneLineError(
      attnc('run', src, '--seed', '-1'),
      /^attnc: --seed expects an integer in \[0, 4294967295\], got `-1`$/,
    );
    expectOneLineError(
      attnc('compile', src, '--dim', '-64'),
      /^attnc: --dim expects a positive integer, got `-64`$/,
    );
  });

  it('a head dim no schedule fits names --dim, not the declaration', () => {
    // It was a diagnostic at the attention's name, which says nothing of the flag.
    const fits = 'no wgsl schedule fits: head dim 100000/100000 needs';
    for (const command of ['compile', 'viz']) {
      const out = join(dir, command === 'viz' ? 'm.svg' : 'dim-out');
      expectOneLineError(
        attnc(command, src, '--dim', '100000', '--out', out),
        new RegExp(`^attnc: --dim 100000: ${fits} .*: use a smaller --dim$`),
      );
    }
    expectOneLineError(
      attnc('compile', src, '--target', 'cuda', '--dim', '100000', '--value-dim', '64', '--out', dir),
      /^attnc: --dim 100000 --value-dim 64: no cuda schedule fits: head dim 100000\/64 /,
    );
  });

  it('a flag where a value belongs: the value is missing', () => {
    expectOneLineError(
      attnc('run', src, '--nq', '--nk', '5'),
      /^attnc: --nq expects a value, got the flag `--nk` \(write --nq=VALUE for a value that starts with -\)$/,
    );
  });

  it('an empty or missing value is refused (`--out=` wrote into the working directory)', () => {
    expectOneLineError(
      attnc('compile', src, '--out='),
      /^attnc: --out expects a value, got an empty string$/,
    );
    expectOneLineError(
      attnc('compile', src, '--entry', ''),
      /^attnc: --entry expects a value, got an empty string$/,
    );
    expectOneLineError(attnc('run', src, '--param'), /^attnc: --param expects a value$/);
  });

  it('a required param left out names the flag to add', () => {
    const required = join(dir, 'required.attn');
    writeFileSync(required, 'attention w(window: int) {\n  mask causal && q - k < window\n}\n');
    expectOneLineError(
      attnc('run', required, '--nq', '8', '--nk', '8'),
      /^attnc: --param window=VALUE is needed: w's `window` \(i32\) has no default$/,
    );
  });

  it('a param given twice is refused instead of the later one winning', () => {
    expectOneLineError(
      attnc('run', 'stdlib/sliding_window.attn', '--param', 'window=4', '--param', 'window=5'),
      /^attnc: --param window is given twice$/,
    );
  });

  it('any other value flag given twice is refused too, naming both values', () => {
    // `--nq 3 --nq 4` ran with 4, `--dtype f16 --dtype f32` with f32: the --param rule above.
    expectOneLineError(
      attnc('run', 'stdlib/sliding_window.attn', '--nq', '3', '--nk', '8', '--nq=4'),
      /^attnc: --nq is given twice \(`3` and `4`\)$/,
    );
    expectOneLineError(
      attnc('compile', 'stdlib/causal.attn', '--target', 'wgsl', '--target', 'cuda'),
      /^attnc: --target is given twice \(`wgsl` and `cuda`\)$/,
    );
  });

  it('an unknown flag names itself, the closest flag and the help to read', () => {
    // `--targt` and nvcc's `-o` named no flag to write instead.
    expectOneLineError(
      attnc('check', src, '--nqq', '5'),
      /^attnc: unknown option `--nqq` \(did you mean `--nq`\? see attnc check --help\)$/,
    );
    expectOneLineError(
      attnc('compile', src, '--targt', 'cuda'),
      /^attnc: unknown option `--targt` \(did you mean `--target`\? see attnc compile --help\)$/,
    );
    expectOneLineError(
      attnc('compile', src, '-o', 'build'),
      /^attnc: unknown option `-o` \(did you mean `--out`\? see attnc compile --help\)$/,
    );
    expectOneLineError(attnc('--bogus'), /^attnc: unknown option `--bogus` \(see attnc --help\)$/);
  });
});

describe('run: sizes the device or the reference cannot hold', () => {
  it('--nq 100000 --nk 100000 --dim 128 names the buffer and the device limit', () => {
    expectOneLineError(
      attnc('run', src, '--nq', '100000', '--nk', '100000', '--dim', '128'),
      /--nq 100000 --nk 100000 --dim 128: needs .* of buffers, "q" \[1, 4, 100000, 128\] alone 205 MB; the device allows .* per buffer \((maxStorageBufferBindingSize|maxBufferSize)\)$/,
    );
  });

  it('--repeat is bounded', () => {
    expectOneLineError(attnc('run', src, '--repeat', '99999999'), /^attnc: --repeat 99999999: at most 100$/);
  });

  it('--batch 99999999999 is not an int32', () => {
    expectOneLineError(
      attnc('run', src, '--batch', '99999999999'),
      /--batch 99999999999: sizes are int32, at most 2147483647$/,
    );
  });

  it('sizes whose float64 reference would run for minutes are refused up front', () => {
    expectOneLineError(
      attnc('run', src, '--nq', '65536', '--nk', '65536', '--heads', '1', '--dim', '8'),
      /--nq 65536 --nk 65536 --dim 8: the dense reference keeps a B·H·Nq·Nk mask of 4\.29 GB/,
    );
    expectOneLineError(
      attnc('run', src, '--nq', '32768', '--nk', '32768', '--heads', '1', '--dim', '8'),
      /--nq 32768 --nk 32768 --dim 8: the float64 reference would do about .* multiply-adds/,
    );
  });
});

describe('viz: huge masks are bounded', () => {
  it('--nq 1000000 --nk 1000000 draws a sampled picture and says so', () => {
    const out = join(dir, 'huge.png');
    const r = attnc('viz', 'stdlib/sink_window.attn', '--nq', '1000000', '--nk', '1000000', '--out', out);
    expect(r.timedOut, 'ended within the bound').toBe(false);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/estimated: \d tokens sampled per cell and axis/);
    expect(r.out).toMatch(/classified in boxes of \d+×\d+ tiles/);
  });
});
