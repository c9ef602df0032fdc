// The CLI's flags and how an argument vector becomes them. node:util's parseArgs does the work;
// this file fixes what it says to a user: `--nq -5` (a negative number where a value belongs) and
// `--nq --nk 5` (a flag where a value belongs) are refused by parseArgs as "ambiguous" in three
// lines that never mention the value, and an unknown flag gets a paragraph about positionals.
import { parseArgs } from 'node:util';
import { escapeControl } from '../diagnostics.js';
import { didYouMean } from '../dsl/suggest.js';
import { isCommand } from './commands.js';
import { UsageError } from './errors.js';

const options = {
  target: { type: 'string' },
  out: { type: 'string' },
  'dump-ir': { type: 'string' },
  entry: { type: 'string' },
  dim: { type: 'string' },
  'value-dim': { type: 'string' },
  dtype: { type: 'string' },
  arch: { type: 'string' },
  'quant-prefill': { type: 'string' },
  'decode-lean': { type: 'string' },
  'shader-f16': { type: 'boolean' },
  'wgsl-engine': { type: 'string' },
  backward: { type: 'boolean' },
  'backward-engine': { type: 'string' },
  'no-lse': { type: 'boolean' },
  importance: { type: 'string' },
  emit: { type: 'string' },
  'shared-runtime': { type: 'boolean' },
  'no-decode': { type: 'boolean' },
  nq: { type: 'string' },
  nk: { type: 'string' },
  heads: { type: 'string' },
  'kv-heads': { type: 'string' },
  batch: { type: 'string' },
  param: { type: 'string', multiple: true },
  seed: { type: 'string' },
  repeat: { type: 'string' },
  head: { type: 'string' },
  'batch-index': { type: 'string' },
  json: { type: 'boolean' },
  'install-lavapipe': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

export type CliValues = ReturnType<typeof parseCli>['values'];

/** A token that is a number with a minus sign, e.g. `-5`, `-0.5`, `-1e3`: a value, not a flag. */
const negativeNumber = /^-(\d|\.\d|Infinity$|NaN$)/;

/**
 * `--flag VALUE` pairs whose VALUE starts with `-`, joined as `--flag=VALUE` when VALUE is a
 * negative number (the flag's own check then names it: "--nq expects a positive integer, got
 * `-5`"); any other dash word there is a flag, so the value is missing.
 */
function joinDashValues(
  argv: readonly string[],
  flags: Readonly<Record<string, { type: string }>>,
): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const next = argv[i + 1];
    const name = word.startsWith('--') ? word.slice(2) : undefined;
    const takesValue = name !== undefined && Object.hasOwn(flags, name) && flags[name]!.type === 'string';
    if (word === '--') {
      joined.push(...argv.slice(i));
      break;
    }
    if (!takesValue || next === undefined || !next.startsWith('-')) {
      joined.push(word);
    } else if (negativeNumber.test(next)) {
      joined.push(`${word}=${next}`);
      i++;
    } else {
      throw new UsageError(
        `${word} expects a value, got the flag \`${escapeControl(next)}\` (write ${word}=VALUE for a value that starts with -)`,
      );
    }
  }
  return joined;
}

/** The option an ERR_PARSE_ARGS_UNKNOWN_OPTION names (`'--foo'` in its message). */
function unknownOption(e: unknown): string | undefined {
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || typeof message !== 'string') return undefined;
  return /'([^']*)'/.exec(message)?.[1];
}

/**
 * `args` with a negative number after a value flag joined to it, and a flag where a value belongs
 * or an unknown flag reported as `fail(message)` throws: one line for a person (the REPL's :run
 * uses it too). `help` is where to read about the flags.
 */
export function normalizeFlags(
  args: readonly string[],
  flags: Readonly<Record<string, { type: string }>>,
  fail: (message: string) => Error,
): string[] {
  try {
    return joinDashValues(args, flags);
  } catch (e) {
    throw e instanceof UsageError ? fail(e.message) : e;
  }
}

/** Short flags of other tools a user types from habit (nvcc's and gcc's `-o FILE`). */
const habits: Readonly<Record<string, string>> = { '-o': '--out' };

/**
 * parseArgs' unknown-option error as one line (`fail(message)`), with the closest of `flags`
 * (`--targt`: did you mean `--target`?); other errors as they are.
 */
export function renameUnknownOption(
  e: unknown,
  help: string,
  fail: (message: string) => Error,
  flags: Readonly<Record<string, unknown>> = options,
): never {
  const flag = unknownOption(e);
  if (flag === undefined) throw e;
  const habit = Object.hasOwn(habits, flag) ? habits[flag] : undefined;
  const close = habit ?? didYouMean(flag.replace(/^-+/, ''), Object.keys(flags))?.match(/`(.*)`/)?.[1];
  const mean =
    close === undefined ? '' : `did you mean \`${close.startsWith('-') ? close : `--${close}`}\`? `;
  throw fail(`unknown option \`${escapeControl(flag)}\` (${mean}see ${help})`);
}

/**
 * A value flag given an empty value (`--out=`, `--entry ''`): `--out=` wrote into the working
 * directory and `--entry=` compiled the first declaration, as if the flag were absent.
 */
function emptyValue(values: Readonly<Record<string, unknown>>): string | undefined {
  for (const [name, v] of Object.entries(values))
    if (v === '' || (Array.isArray(v) && v.includes('')))
      return `--${name} expects a value, got an empty string`;
  return undefined;
}

/** parseArgs' "Option '--x <value>' argument missing" (a value flag last on the line). */
function missingValue(e: unknown): string | undefined {
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || typeof message !== 'string') return undefined;
  const flag = /^Option '(--[\w-]+) <value>' argument missing/.exec(message)?.[1];
  return flag && `${flag} expects a value`;
}

/** parseArgs' "Option '--json' does not take an argument" (`--json=1`), naming what was written. */
function valueOnSwitch(e: unknown, argv: readonly string[]): string | undefined {
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || typeof message !== 'string') return undefined;
  const flag = /^Option '(--[\w-]+)' does not take an argument/.exec(message)?.[1];
  const word = flag && argv.find((w) => w.startsWith(`${flag}=`));
  return word && `${flag} takes no value, got \`${escapeControl(word)}\``;
}

/**
 * A single-value flag given twice (`--nq 3 … --nq 4`): parseArgs keeps the last without a word,
 * so a script's default and a caller's override both given ran one of them silently (the rule
 * `--param` already follows). Switches (`--json --json`) say the same thing twice: allowed.
 */
export function repeatedValue(
  tokens: readonly { kind: string; name?: string; value?: string | undefined }[],
  flags: Readonly<Record<string, { type: string; multiple?: boolean }>> = options,
): string | undefined {
  const seen = new Map<string, string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined || t.value === undefined) continue;
    if (flags[t.name]?.multiple) continue;
    const first = seen.get(t.name);
    if (first !== undefined)
      return `--${t.name} is given twice (\`${escapeControl(first)}\` and \`${escapeControl(t.value)}\`)`;
    seen.set(t.name, t.value);
  }
  return undefined;
}

/** Flags and positionals of `argv`; a malformed vector is a one-line UsageError. */
export function parseCli(argv: readonly string[]) {
  const usageError = (m: string): Error => new UsageError(m);
  const args = normalizeFlags(argv, options, usageError);
  try {
    const { tokens, ...parsed } = parseArgs({ args, allowPositionals: true, options, tokens: true });
    const problem = emptyValue(parsed.values) ?? repeatedValue(tokens);
    if (problem) throw new UsageError(problem);
    return parsed;
  } catch (e) {
    const missing = missingValue(e) ?? valueOnSwitch(e, argv);
    if (missing) throw new UsageError(missing);
    const command = argv.find(isCommand);
    return renameUnknownOption(e, command ? `attnc ${command} --help` : 'attnc --help', usageError);
  }
}
