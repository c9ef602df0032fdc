// attnc's command line, callable in-process (the fuzz test does; main.ts is the executable). Subcommands: check, compile, run, viz, repl. User errors print
// diagnostics (or a one-line message) and exit 1, never a stack trace; a kernel that disagrees
// with the reference exits 3; only internal errors exit 2 (exit.ts).
import { parseArgs } from 'node:util';
import { CompileError } from '../diagnostics.js';
import { compileCommand } from './compile-command.js';
import { checkCommand, parseParamAssignments } from './check-command.js';
import { UsageError } from './errors.js';
import { EXIT, userErrorMessage } from './exit.js';
import { startRepl } from './repl/index.js';
import { runCommand } from './run-command.js';
import { readSourceFile } from './source-file.js';
import { vizCommand } from './viz-command.js';

const usage = `usage:
  attnc check FILE
  attnc compile FILE --target wgsl|cuda [--out DIR] [--dump-ir=PASS] [--entry NAME]
                     [--dim N] [--value-dim N] [--dtype f32|f16|bf16] [--no-lse]
                     [--emit ts|js]   (wgsl: a self-contained module with a typed createKernel)
                     [--arch sm_80|sm_86|sm_89|sm_90a]   (cuda; default sm_90a)
  attnc run FILE [--nq N] [--nk N] [--heads N] [--kv-heads N] [--batch N] [--dim N]
                 [--dtype f32|f16] [--param NAME=VALUE ...] [--seed N] [--repeat N] [--entry NAME]
  attnc viz FILE --out mask.svg|mask.png [--nq N] [--nk N] [--head I] [--batch I] [--heads N]
                 [--kv-heads N] [--param NAME=VALUE ...] [--seed N] [--entry NAME]
                 (--head/--batch: which slice to draw)
  attnc repl [FILE]       (history in $ATTNC_HOME/history, default ~/.attnc/history)

exit status: 0 success; 1 usage or input error (flags, files, diagnostics, sizes the device
cannot hold); 2 internal error (a bug: please report it); 3 \`attnc run\`: the kernel
disagrees with the reference
`;

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
      'no-lse': { type: 'boolean' },
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
    },
  });
  const [command, file] = positionals;
  if (values.help || !command) {
    process.stdout.write(usage);
    return command || values.help ? 0 : 1;
  }
  if (command === 'repl') return startRepl({ file });
  if (!file) throw new UsageError(`${command}: missing FILE\n${usage}`);
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
    default:
      throw new UsageError(`unknown command \`${command}\`\n${usage}`);
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
