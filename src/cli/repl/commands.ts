// The REPL's `:commands`. Every failure is printed (diagnostics for programs, `error: …` for the
// rest) and the session goes on; nothing a user types can end it except :quit and Ctrl-D.
import { compile } from '../../compile.js';
import { CompileError, escapeControl, renderDiagnostics } from '../../diagnostics.js';
import { dumpIR } from '../../ir/dump.js';
import { passNames } from '../../ir/pipeline.js';
import { userErrorMessage } from '../exit.js';
import { writeOutput } from '../out-path.js';
import { readSourceFile } from '../source-file.js';
import { runCommand } from './run.js';
import { REPL_FILE, ReplError, type Session } from './session.js';
import { setCommand, unsetCommand } from './settings.js';
import { maskCommand, statsCommand } from './views.js';

interface Command {
  readonly usage: string;
  readonly help: string;
  /** True ends the session. */
  run(s: Session, args: string[], rest: string): void | boolean | Promise<void>;
}

const allPasses = [...new Set([...passNames('wgsl'), ...passNames('cuda')])];

function emit(s: Session, args: string[]): void {
  const target = args[0];
  if (target !== 'wgsl' && target !== 'cuda') throw new ReplError(':emit expects wgsl or cuda');
  if (target === 'wgsl' && s.settings.dtype === 'bf16')
    throw new ReplError('WebGPU has no bf16 storage: :set dtype=f32 or f16 (or :emit cuda)');
  const { source } = s.requireCurrent();
  const { artifact, warnings } = compile(source, {
    target,
    file: REPL_FILE,
    headDim: s.settings.dim,
    dtype: s.settings.dtype ?? (target === 'cuda' ? 'bf16' : 'f32'),
  });
  s.print(artifact.code);
  // After the code, as `attnc compile` prints them after writing it (e.g. storage buffers past 8).
  if (warnings.length) s.print(renderDiagnostics(warnings, source));
}

function ir(s: Session, args: string[]): void {
  const pass = args[0] ?? passNames('wgsl').at(-1)!;
  if (!allPasses.includes(pass))
    throw new ReplError(`unknown pass \`${pass}\` (passes: ${allPasses.join(', ')})`);
  let text = '';
  compile(s.requireCurrent().source, {
    target: pass === 'legalize-cuda' ? 'cuda' : 'wgsl',
    file: REPL_FILE,
    headDim: s.settings.dim,
    observe: (p, x) => {
      if (p === pass) text = dumpIR(x, p);
    },
  });
  s.print(text);
}

function load(s: Session, rest: string): void {
  const file = rest.trim();
  if (!file) throw new ReplError(':load expects a FILE');
  const text = readSourceFile(file);
  const names = s.define(text, file);
  s.print(
    names.length
      ? `loaded ${names.join(', ')} from ${escapeControl(file)}; current: ${s.current?.name}`
      : `nothing loaded from ${escapeControl(file)}`,
  );
}

function save(s: Session, rest: string): void {
  const file = rest.trim();
  if (!file) throw new ReplError(':save expects a FILE');
  const defs = [...s.defs.values()];
  if (!defs.length) throw new ReplError('nothing to save: no attention defined');
  // Definition order with the current kernel last, so :load restores it as current.
  writeOutput(file, defs.map((d) => d.source.trimEnd() + '\n').join('\n'));
  s.print(`saved ${defs.map((d) => d.name).join(', ')} to ${escapeControl(file)}`);
}

/** The definition named `name`, or a ReplError naming what is defined. */
function definition(s: Session, name: string | undefined, command: string) {
  const defined = `(defined: ${[...s.defs.keys()].join(', ') || 'none'})`;
  if (name === undefined) throw new ReplError(`${command} expects a NAME ${defined}`);
  const def = s.defs.get(name);
  if (!def) throw new ReplError(`no attention \`${name}\` ${defined}`);
  return def;
}

function use(s: Session, args: string[]): void {
  const def = definition(s, args[0], ':use');
  s.defs.delete(def.name);
  s.defs.set(def.name, def);
  s.print(`current: ${def.name}`);
}

export const commands: Readonly<Record<string, Command>> = {
  help: { usage: ':help', help: 'this list', run: (s) => s.print(helpText()) },
  mask: {
    usage: ':mask [nq [nk]]',
    help: 'draw the mask and the tile classes (default: the nq/nk settings)',
    run: (s, a) => maskCommand(s, a),
  },
  stats: { usage: ':stats', help: 'density, tile counts, bytes-moved estimate', run: (s) => statsCommand(s) },
  emit: { usage: ':emit wgsl|cuda', help: 'print the generated kernel', run: emit },
  ir: { usage: ':ir [pass]', help: `IR after a pass (${allPasses.join(', ')}; default: the last)`, run: ir },
  run: {
    usage: ':run [--nq N --nk N --heads N --kv-heads N --dim N --dtype f32|f16 --param NAME=V …]',
    help: 'run on WebGPU and compare with the reference',
    run: (s, a) => runCommand(s, a),
  },
  set: {
    usage: ':set [NAME=VALUE …]',
    help: 'shape settings (nq nk heads kv-heads batch dim dtype head seed repeat) and params; no args: show',
    run: (s, _a, r) => setCommand(s, r),
  },
  unset: { usage: ':unset NAME …', help: 'back to the default value', run: (s, _a, r) => unsetCommand(s, r) },
  load: {
    usage: ':load FILE',
    help: 'define every attention in FILE (the last becomes current)',
    run: (s, _a, r) => load(s, r),
  },
  save: {
    usage: ':save FILE',
    help: 'write every definition to FILE (current last)',
    run: (s, _a, r) => save(s, r),
  },
  list: {
    usage: ':list',
    help: 'defined attentions (* = current)',
    run: (s) =>
      s.print(
        [...s.defs.keys()].map((n) => (n === s.current?.name ? `* ${n}` : `  ${n}`)).join('\n') || '(none)',
      ),
  },
  show: {
    usage: ':show [NAME]',
    help: 'print a definition (default: the current one)',
    run: (s, a) =>
      s.print(escapeControl((a[0] === undefined ? s.requireCurrent() : definition(s, a[0], ':show')).source)),
  },
  use: { usage: ':use NAME', help: 'make NAME the current kernel', run: use },
  quit: { usage: ':quit', help: 'leave (also :q, :exit, Ctrl-D)', run: () => true },
};

const aliases: Readonly<Record<string, string>> = { q: 'quit', exit: 'quit', h: 'help', '?': 'help' };

export function helpText(): string {
  const width = Math.max(...Object.values(commands).map((c) => Math.min(c.usage.length, 24)));
  const lines = Object.values(commands).map((c) =>
    c.usage.length > width
      ? `  ${c.usage}\n  ${' '.repeat(width)}  ${c.help}`
      : `  ${c.usage.padEnd(width)}  ${c.help}`,
  );
  return [
    'Type or paste `attention` blocks (multi-line); the latest definition of a name wins and the',
    'last defined is the current kernel. A bare `mask …`, `score …` or `let …` line is added to it.',
    ...lines,
  ].join('\n');
}

function report(s: Session, e: unknown): false {
  s.print(
    e instanceof CompileError
      ? e.message
      : `error: ${userErrorMessage(e) ?? escapeControl((e as Error).message)}`,
  );
  return false;
}

/**
 * Runs one `:command` line; true ends the session. Never throws (nor rejects). Synchronous
 * unless the command awaits (:run), so the next prompt is up before a paste's next line echoes.
 */
export function dispatch(s: Session, line: string): boolean | Promise<boolean> {
  const body = line.trim().slice(1);
  const name = /^\S*/.exec(body)![0];
  const rest = body.slice(name.length).trim();
  const args = rest.split(/\s+/).filter(Boolean);
  const key = aliases[name] ?? name;
  const cmd = Object.hasOwn(commands, key) ? commands[key] : undefined;
  if (!cmd) {
    s.print(`error: unknown command \`:${name}\` (:help lists them)`);
    return false;
  }
  try {
    const r = cmd.run(s, args, rest);
    return r instanceof Promise
      ? r.then(
          () => false,
          (e: unknown) => report(s, e),
        )
      : r === true;
  } catch (e) {
    return report(s, e);
  }
}
