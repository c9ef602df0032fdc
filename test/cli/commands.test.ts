// Subcommands as data (src/cli/commands.ts): --version, a command's own --help, flags checked per
// command (`check f.attn --nq 5 --emit ts` was accepted), an unknown command named before any
// file is read (it reported ENOENT for the file), and stray arguments refused.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { passNames } from '../../src/ir/pipeline.js';

const attnc = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });
const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

describe('attnc subcommands', () => {
  it('--version and -V print the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = attnc(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`attnc ${version}\n`);
    }
  });

  it('COMMAND --help prints that command usage alone', () => {
    const r = attnc('compile', '--help');
    expect(r.status).toBe(0);
    // --target is optional (wgsl) and the usage says so, as README's `compile … --dump-ir` relies on.
    expect(r.stdout).toMatch(/^usage: attnc compile FILE \[--target wgsl\|cuda\]/);
    expect(r.stdout).toContain('(--target: default wgsl)');
    expect(r.stdout).toContain('(--dtype: default f32 on wgsl, bf16 on cuda)');
    expect(r.stdout).not.toContain('attnc viz');
    expect(attnc('--help').stdout).toContain('attnc --version');
  });

  it("compile --help lists --dump-ir's passes, the pipeline's (README listed them, --help did not)", () => {
    const usage = attnc('compile', '--help').stdout.replace(/\s+/g, ' ');
    const passes = passNames('wgsl').join(', ').replace('legalize-wgsl', 'legalize-wgsl|legalize-cuda');
    expect(usage).toContain(`(--dump-ir passes: ${passes})`);
  });

  it('--wgsl-engine picks the WGSL engine, checks its value and its target', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-engine-'));
    const coop = attnc(
      'compile',
      'stdlib/biformer.attn',
      '--target',
      'wgsl',
      '--wgsl-engine',
      'coop',
      '--out',
      dir,
    );
    expect(coop.status).toBe(0);
    const wgsl = readFileSync(join(dir, 'biformer.wgsl'), 'utf8');
    expect(wgsl).toContain('var<workgroup> co_kv'); // the coop entry point, routed (coop-route.ts)
    expect(wgsl).toContain('fn co_unit_keys');
    const bad = attnc('compile', 'stdlib/causal.attn', '--wgsl-engine', 'fast');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--wgsl-engine expects row or coop, got `fast`');
    const cuda = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--wgsl-engine', 'coop');
    expect(cuda.status).toBe(1);
    expect(cuda.stderr).toContain('--wgsl-engine coop needs --target wgsl');
  });

  it('an unknown --arch is the flag error, not a diagnostic at the declaration', () => {
    // It was `error: unknown CUDA arch` with a caret under the attention's name in the source.
    const r = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--arch', 'sm_75');
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      '',
      'attnc: --arch expects sm_80, sm_86, sm_89, sm_90a, got `sm_75`\n',
    ]);
  });

  it("--dump-ir of the other target's legalize pass asks for that --target", () => {
    // It said "unknown pass `legalize-cuda`", listing passes without it, though README names it.
    const r = attnc('compile', 'stdlib/causal.attn', '--dump-ir=legalize-cuda');
    expect([r.status, r.stderr]).toEqual([1, 'attnc: --dump-ir=legalize-cuda needs --target cuda\n']);
    const wgsl = attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--dump-ir=legalize-wgsl');
    expect(wgsl.stderr).toBe('attnc: --dump-ir=legalize-wgsl needs --target wgsl\n');
    expect(attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--dump-ir=legalize-cuda').status).toBe(
      0,
    );
  });

  it('--dtype bf16, or f16 without --shader-f16, on wgsl is the flag error, not a diagnostic at the declaration', () => {
    // It was `error: bf16 storage is not supported by WebGPU` with a caret under `causal`.
    const r = attnc('compile', 'stdlib/causal.attn', '--dtype', 'bf16');
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      '',
      'attnc: --dtype bf16 needs --target cuda (WebGPU has no bf16 storage): use --dtype f16 or f32\n',
    ]);
    expect(attnc('compile', 'stdlib/causal.attn', '--dtype', 'bf16', '--target', 'cuda').status).toBe(0);
    // Likewise f16 WGSL without --shader-f16 (README: `--dtype f16 --shader-f16`).
    expect(attnc('compile', 'stdlib/causal.attn', '--dtype', 'f16').stderr).toBe(
      'attnc: --dtype f16 on wgsl needs --shader-f16 (for a device with the shader-f16 feature)\n',
    );
    expect(attnc('compile', 'stdlib/causal.attn', '--dtype', 'f16', '--shader-f16').status).toBe(0);
  });

  it('--out with a file name (nvcc -o style) is refused; a folder of that name that exists is used', () => {
    // `--out softcap.cu` made a folder softcap.cu/ with softcap.cu, .h and .json inside.
    const dir = mkdtempSync(join(tmpdir(), 'attnc-out-'));
    const r = attnc('compile', 'stdlib/softcap.attn', '--target', 'cuda', '--out', join(dir, 'softcap.cu'));
    expect([r.status, r.stderr]).toEqual([
      1,
      `attnc: --out takes a folder (the files in it are named after the kernel): \`${join(dir, 'softcap.cu')}\` looks like a file name\n`,
    ]);
    expect(readdirSync(dir)).toEqual([]);
    mkdirSync(join(dir, 'kernels.js'));
    expect(attnc('compile', 'stdlib/softcap.attn', '--out', join(dir, 'kernels.js')).status).toBe(0);
    expect(readdirSync(join(dir, 'kernels.js')).sort()).toEqual(['softcap.json', 'softcap.wgsl']);
  });

  it("refuses another command's flags, naming them", () => {
    const r = attnc('check', 'stdlib/causal.attn', '--nq', '5', '--emit', 'ts');
    expect(r.status).toBe(1);
    // One line, then the usage, with no blank line after it.
    expect(r.stderr).toBe('attnc: check does not take --nq, --emit\nusage: attnc check FILE... [--json]\n');
  });

  it('an unknown command is named before any file is read; stray arguments are refused', () => {
    const unknown = attnc('frob', 'no-such-file.attn');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe(
      'attnc: unknown command `frob` (commands: check, compile, run, viz, repl, doctor; see attnc --help)\n',
    );
    const extra = attnc('compile', 'stdlib/causal.attn', 'stdlib/full.attn');
    expect(extra.status).toBe(1);
    expect(extra.stderr).toContain('compile: unexpected argument `stdlib/full.attn`');
  });

  it('check takes several files (attnc check stdlib/*.attn): each reported, exit 1 if any fails', () => {
    const bad = join(tmpdir(), `attnc-check-many-${process.pid}.attn`);
    writeFileSync(bad, 'attention a { mask: q >= k }\n');
    const two = attnc('check', 'stdlib/causal.attn', 'stdlib/full.attn');
    expect([two.status, two.stdout]).toEqual([
      0,
      'stdlib/causal.attn: ok (1 attention: causal)\nstdlib/full.attn: ok (1 attention: full)\n',
    ]);
    // A file of two declarations said "2 attention:".
    expect(attnc('check', 'stdlib/nsa_select.attn').stdout).toBe(
      'stdlib/nsa_select.attn: ok (2 attentions: nsa_select, nsa_window)\n',
    );
    const mixed = attnc('check', bad, 'stdlib/full.attn');
    expect(mixed.status).toBe(1);
    expect(mixed.stdout).toBe('stdlib/full.attn: ok (1 attention: full)\n');
    expect(mixed.stderr).toContain(`${bad}: 1 error`);
  });

  it('attnc help [COMMAND] answers as --help does; an unknown topic is an unknown command', () => {
    expect(attnc('help').stdout).toBe(attnc('--help').stdout);
    const check = attnc('help', 'check');
    expect([check.status, check.stdout]).toEqual([0, attnc('check', '--help').stdout]);
    const nope = attnc('help', 'frob');
    expect([nope.status, nope.stderr]).toEqual([
      1,
      'attnc: unknown command `frob` (commands: check, compile, run, viz, repl, doctor; see attnc --help)\n',
    ]);
  });

  it("an --entry the file does not declare is the flag's error, not a caret at line 1", () => {
    // compile() can only point at the file's first line (a comment here): the CLI names the flag;
    // run says so before it asks for a device (it said "no WebGPU adapter" without one).
    const svg = ['--out', join(tmpdir(), 'nope.svg')];
    for (const args of [['compile'], ['viz', ...svg], ['run']]) {
      const r = attnc(args[0]!, 'stdlib/document.attn', '--entry', 'nope', ...args.slice(1));
      expect([r.status, r.stdout, r.stderr]).toEqual([
        1,
        '',
        'attnc: --entry nope: no attention named `nope` (declared: document)\n',
      ]);
    }
  });

  it('run: a --param mistake is named before a device is asked for', () => {
    // Without an adapter a typo'd, fractional or missing param said only "no WebGPU adapter":
    // the params were checked against the compiled kernel, after the device. A driver list
    // naming no driver stands for a machine without one (the runtime then tries no fallback).
    const noDevice = { ...process.env, VK_DRIVER_FILES: '/nonexistent/icd.json', VK_ICD_FILENAMES: '' };
    const req = join(mkdtempSync(join(tmpdir(), 'attnc-params-')), 'req.attn');
    writeFileSync(req, 'attention r(w: int, on: bool = true) {\n  mask q - k < w && on\n}\n');
    const cases: [string, string[], string][] = [
      [
        'stdlib/sink_window.attn',
        ['windw=3'],
        'sink_window has no scalar param `windw` (did you mean `window`?)',
      ],
      [
        'stdlib/sink_window.attn',
        ['window=1.5'],
        'expected an integer in [-2147483648, 2147483647], got number 1.5',
      ],
      ['stdlib/sink_window.attn', ['window=1e3'], '`window` is an i32: write decimal digits, got `1e3`'],
      [req, [], "--param w=VALUE is needed: r's `w` (i32) has no default"],
      [req, ['w=3', 'on=1'], '--param "on" (bool): expected true or false, got number 1'],
      // A tensor said "document has no scalar param `doc` (params: none)".
      [
        'stdlib/document.attn',
        ['doc=3'],
        '--param doc: `doc` is a tensor of document, drawn at random here (--param sets scalar params)',
      ],
    ];
    for (const [file, params, message] of cases) {
      const r = spawnSync(
        process.execPath,
        ['dist/src/cli/main.js', 'run', file, ...params.flatMap((p) => ['--param', p])],
        { encoding: 'utf8', env: noDevice },
      );
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain('adapter');
    }
  });

  it("a `stdlib/….attn` missing from the working directory points at attnc's own stdlib", () => {
    // README's commands run from the repository; elsewhere they said only "no such file".
    const cwd = mkdtempSync(join(tmpdir(), 'attnc-stdlib-'));
    const run = (file: string) =>
      spawnSync(process.execPath, [resolve('dist/src/cli/main.js'), 'check', file], {
        cwd,
        encoding: 'utf8',
      });
    expect(run('stdlib/causal.attn').stderr).toBe(
      `attnc: cannot read stdlib/causal.attn: no such file (ENOENT); attnc's stdlib has it: ${resolve('stdlib/causal.attn')}\n`,
    );
    expect(run('stdlib/nope.attn').stderr).toBe(
      'attnc: cannot read stdlib/nope.attn: no such file (ENOENT)\n',
    );
  });

  it('generated files name their source relative to the working directory, never by an absolute path', () => {
    const out = mkdtempSync(join(tmpdir(), 'attnc-names-'));
    const absolute = resolve('stdlib/causal.attn');
    expect(attnc('compile', absolute, '--target', 'wgsl', '--emit', 'ts', '--out', out).status).toBe(0);
    const text = readdirSync(out)
      .map((f) => readFileSync(join(out, f), 'utf8'))
      .join('\n');
    expect(text).toContain('from stdlib/causal.attn');
    expect(text).not.toContain(absolute);
  });

  it('diagnostics cite the path given, as check does, though generated files do not', () => {
    // compile cited the portable name (`typo.attn:2:8`), which names no file outside the cwd.
    const file = join(mkdtempSync(join(tmpdir(), 'attnc-cite-')), 'typo.attn');
    writeFileSync(file, 'attention a() {\n  mask kk\n}\n');
    for (const command of ['check', 'compile']) {
      const r = attnc(command, file);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(` --> ${file}:2:8\n`);
    }
  });

  it('--shader-f16 compiles f16 WGSL offline for a device that has the feature', () => {
    const without = attnc('compile', 'stdlib/causal.attn', '--dtype', 'f16');
    expect(without.status).toBe(1);
    expect(without.stderr).toContain('needs --shader-f16');
    const f16 = attnc('compile', 'stdlib/causal.attn', '--dtype', 'f16', '--shader-f16');
    expect(f16.status).toBe(0);
    expect(f16.stdout).toContain('enable f16;');
    expect(attnc('compile', 'stdlib/causal.attn', '--target', 'cuda', '--shader-f16').stderr).toContain(
      '--shader-f16 needs --target wgsl',
    );
  });
});
