// attnc's command line, callable in-process (the fuzz test does; main.ts is the executable). Subcommands: check, compile, run, viz, repl. User errors print
// diagnostics (or a one-line message) and exit 1, never a stack trace; a kernel that disagrees
// with the reference exits 3; only internal errors exit 2 (exit.ts).
import { CompileError } from '../diagnostics.js';
import { parseCli } from './argv.js';
import { commands, foreignFlags, isCommand } from './commands.js';
import { checkFiles, parseParamAssignments } from './check-command.js';
import { UsageError } from './errors.js';
import { EXIT, userErrorMessage } from './exit.js';
import { errorDocument, head, wantsJson, writeJson, type JsonErrorKind } from './json.js';
import { packageRoot } from './package-root.js';
import { readSourceFile } from './source-file.js';

const exitStatus = `exit status: 0 success; 1 usage or input error (flags, files, diagnostics, sizes the device
cannot hold); 2 internal error (a bug: please report it); 3 \`attnc run\`: the kernel
disagrees with the reference
`;

const usage = `usage:
${Object.values(commands)
  .map((c) => `  ${c.usage}`)
  .join('\n')}
  attnc help [COMMAND]     (the same as attnc [COMMAND] --help)
  attnc --version

${exitStatus}`;

/**
 * `--version` or `--help`'s answer: text, or with --json one document like every other answer
 * (docs/CLI.md): a tool reading stdout as JSON must not get a line of text with exit 0.
 */
function informational(command: string, json: boolean | undefined, text: string, extra: object): number {
  if (json) writeJson({ ...head(command, EXIT.ok), ...extra });
  else process.stdout.write(text);
  return EXIT.ok;
}

function versionAnswer(command: string, json: boolean | undefined): number {
  const v = packageRoot()?.version;
  return informational(command, json, v ? `attnc ${v}\n` : 'attnc (unknown version)\n', {
    version: v ?? null,
  });
}

const unknownCommand = (word: string): UsageError =>
  new UsageError(
    `unknown command \`${word}\` (commands: ${Object.keys(commands).join(', ')}; see attnc --help)`,
  );

/** `attnc help [COMMAND]`: the same answers as `attnc --help` and `attnc COMMAND --help`. */
function helpAnswer(topic: string | undefined, extra: readonly string[], json: boolean | undefined): number {
  if (topic === undefined) return informational('', json, usage, { usage });
  if (!isCommand(topic)) throw unknownCommand(topic);
  if (extra.length) throw new UsageError(`help: unexpected argument \`${extra[0]}\``);
  const own = `usage: ${commands[topic].usage}\n`;
  return informational(topic, json, own, { usage: own });
}

async function dispatch(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseCli(argv);
  const [command, file, ...extra] = positionals;
  const commandWord = command !== undefined && isCommand(command) ? command : '';
  if (values.version) return versionAnswer(commandWord, values.json);
  if (!command) {
    if (values.help) return informational('', values.json, usage, { usage });
    // `attnc --json` asked for one document on stdout, not the usage text.
    if (values.json)
      throw new UsageError(
        `missing command (commands: ${Object.keys(commands).join(', ')}; see attnc --help)`,
      );
    process.stdout.write(usage);
    return EXIT.userError;
  }
  if (command === 'help') return helpAnswer(file, extra, values.json);
  if (!isCommand(command)) throw unknownCommand(command);
  const own = `usage: ${commands[command].usage}\n`;
  if (values.help) return informational(command, values.json, own, { usage: own });
  const foreign = foreignFlags(command, values);
  if (foreign.length) throw new UsageError(`${command} does not take ${foreign.join(', ')}`, own);
  if (extra.length && command !== 'check')
    throw new UsageError(`${command}: unexpected argument \`${extra[0]}\``, own);
  // Commands other than check load their modules on demand: `attnc check` must start fast
  // (the bundled CLI splits at these imports; scripts/build-cli.mjs).
  if (command === 'repl') return (await import('./repl/index.js')).startRepl({ file });
  if (command === 'doctor') {
    if (file !== undefined) throw new UsageError(`doctor: unexpected argument \`${file}\``, own);
    return (await import('./doctor/index.js')).doctorCommand(values);
  }
  if (!file) throw new UsageError(`${command}: missing FILE`, own);
  const source = readSourceFile(file);
  const params = parseParamAssignments(values.param ?? []);
  switch (command) {
    case 'check': {
      const more = extra.map((f) => ({ source: readSourceFile(f), file: f }));
      return checkFiles([{ source, file }, ...more], values.json === true);
    }
    case 'compile':
      return (await import('./compile-command.js')).compileCommand(source, file, values);
    case 'run':
      return (await import('./run-command.js')).runCommand(source, file, values, params);
    case 'viz':
      return (await import('./viz-command.js')).vizCommand(source, file, values, params);
  }
}

/**
 * Runs `attnc ARGV…` and resolves to its exit status (exit.ts); never rejects. Output goes to
 * process.stdout / process.stderr; a user error is printed as diagnostics or one line, an
 * internal error with its stack trace.
 */
/** The command's usage text a UsageError carries (printed after its line), if any. */
const usageOf = (e: unknown): string | undefined => (e instanceof UsageError ? e.usage : undefined);

export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    const json = wantsJson(argv);
    const fail = (code: number, kind: JsonErrorKind, message: string, human: string): number => {
      if (json) writeJson(errorDocument(argv.find(isCommand) ?? '', code, kind, e, message, usageOf(e)));
      // With --json a user error is all in the document; a bug's stack still goes to stderr.
      if (!json || kind === 'internal') process.stderr.write(human);
      return code;
    };
    if (e instanceof CompileError) {
      const summary = e.diagnostics.map((d) => d.message).join('; ');
      return fail(EXIT.userError, 'diagnostics', summary, e.message + '\n');
    }
    const message = userErrorMessage(e);
    if (message !== undefined)
      return fail(EXIT.userError, 'usage', message, `attnc: ${message}\n${usageOf(e) ?? ''}`);
    const stack = `attnc: internal error: ${(e as Error).stack ?? String(e)}\n`;
    return fail(EXIT.internal, 'internal', String(e), stack);
  }
}
