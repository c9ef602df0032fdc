// attnc's command line, callable in-process (the fuzz test does; main.ts is the executable). Subcommands: check, compile, run, viz, repl. User errors print
// diagnostics (or a one-line message) and exit 1, never a stack trace; a kernel that disagrees
// with the reference exits 3; only internal errors exit 2 (exit.ts).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CompileError } from '../diagnostics.js';
import { commands, foreignFlags, isCommand } from './commands.js';
import { compileCommand } from './compile-command.js';
import { checkCommand, parseParamAssignments } from './check-command.js';
import { UsageError } from './errors.js';
import { EXIT, userErrorMessage } from './exit.js';
import { startRepl } from './repl/index.js';
import { runCommand } from './run-command.js';
import { readSourceFile } from './source-file.js';
import { vizCommand } from './viz-command.js';

const exitStatus = `exit status: 0 success; 1 usage or input error (flags, files, diagnostics, sizes the device
cannot hold); 2 internal error (a bug: please report it); 3 \`attnc run\`: the kernel
disagrees with the reference
`;

const usage = `usage:
${Object.values(commands)
  .map((c) => `  ${c.usage}`)
  .join('\n')}
  attnc --version

${exitStatus}`;

/** The package's version, from the package.json two folders above dist/src/cli. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `attnc ${pkg.version}\n`;
}

async function dispatch(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      out: { type: 'string' },
      'dump-ir': { type: 'string' },
      entry: { type: 'string' },
      dim: { type: 'string' },
      'value-dim': { type: 'string' },
      dtype: { type: 'string' },
      arch: { type: 'string' },
      'shader-f16': { type: 'boolean' },
      'no-lse': { type: 'boolean' },
      importance: { type: 'string' },
      emit: { type: 'string' },
      nq: { type: 'string' },
      nk: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      batch: { type: 'string' },
      param: { type: 'string', multiple: true },
      seed: { type: 'string' },
      repeat: { type: 'string' },
      head: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
  });
  const [command, file, ...extra] = positionals;
  if (values.version) {
    process.stdout.write(version());
    return EXIT.ok;
  }
  if (!command) {
    process.stdout.write(usage);
    return values.help ? EXIT.ok : EXIT.userError;
  }
  if (!isCommand(command))
    throw new UsageError(
      `unknown command \`${command}\` (commands: ${Object.keys(commands).join(', ')}; see attnc --help)`,
    );
  const own = `usage: ${commands[command].usage}\n`;
  if (values.help) {
    process.stdout.write(own);
    return EXIT.ok;
  }
  const foreign = foreignFlags(command, values);
  if (foreign.length) throw new UsageError(`${command} does not take ${foreign.join(', ')}\n${own}`);
  if (extra.length) throw new UsageError(`${command}: unexpected argument \`${extra[0]}\`\n${own}`);
  if (command === 'repl') return startRepl({ file });
  if (!file) throw new UsageError(`${command}: missing FILE\n${own}`);
  const source = readSourceFile(file);
  const params = parseParamAssignments(values.param ?? []);
  switch (command) {
    case 'check':
      return checkCommand(source, file);
    case 'compile':
      return compileCommand(source, file, values);
    case 'run':
      return runCommand(source, file, values, params);
    case 'viz':
      return vizCommand(source, file, values, params);
  }
}

/**
 * Runs `attnc ARGV…` and resolves to its exit status (exit.ts); never rejects. Output goes to
 * process.stdout / process.stderr; a user error is printed as diagnostics or one line, an
 * internal error with its stack trace.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof CompileError) {
      process.stderr.write(e.message + '\n');
      return EXIT.userError;
    }
    const message = userErrorMessage(e);
    if (message !== undefined) {
      process.stderr.write(`attnc: ${message}\n`);
      return EXIT.userError;
    }
    process.stderr.write(`attnc: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.internal;
  }
}
