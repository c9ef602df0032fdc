// `attnc check FILE…`: diagnostics only.
import { escapeControl, renderDiagnostics, hasErrors } from '../diagnostics.js';
import { didYouMean } from '../dsl/suggest.js';
import { frontend, hiddenErrors } from '../dsl/index.js';
import { decimalNumber, misspeltI32 } from './numbers.js';
import { UsageError } from './errors.js';
import { diagnosticJson, head, writeJson } from './json.js';

/** One file's part of `check --json`: its declarations when clean, and every diagnostic. */
function fileReport(source: string, file: string) {
  const fe = frontend(source, file);
  const code = hasErrors(fe.diagnostics) ? 1 : 0;
  return {
    code,
    report: {
      file,
      attentions: code === 0 ? fe.decls.map((d) => d.decl.name) : [],
      diagnostics: fe.diagnostics.map(diagnosticJson),
    },
  };
}

/**
 * `attnc check FILE…` (`attnc check stdlib/*.attn`): every file checked as if alone, in order;
 * exit 1 when any has errors. With --json and several files, one document whose `files` lists
 * each file's report (docs/CLI.md); with one file, check's usual document.
 */
export function checkFiles(files: readonly { source: string; file: string }[], json = false): number {
  if (files.length === 1) return checkCommand(files[0]!.source, files[0]!.file, json);
  if (!json) return Math.max(0, ...files.map((f) => checkCommand(f.source, f.file)));
  const reports = files.map((f) => fileReport(f.source, f.file));
  const code = Math.max(0, ...reports.map((r) => r.code));
  writeJson({ ...head('check', code), files: reports.map((r) => r.report) });
  return code;
}

export function checkCommand(source: string, file: string, json = false): number {
  if (json) {
    const { code, report } = fileReport(source, file);
    writeJson({ ...head('check', code), ...report });
    return code;
  }
  const fe = frontend(source, file);
  if (fe.diagnostics.length) process.stderr.write(renderDiagnostics(fe.diagnostics, source) + '\n');
  if (hasErrors(fe.diagnostics)) {
    // The "… more errors are not shown" note is no error of its own; what it stands for are.
    const hidden = hiddenErrors(fe.diagnostics);
    const shown = fe.diagnostics.filter((d) => d.severity === 'error').length - (hidden > 0 ? 1 : 0);
    const n = shown + hidden;
    const part = hidden > 0 ? ` (the first ${shown} shown)` : '';
    process.stderr.write(`\n${escapeControl(file)}: ${n} error${n === 1 ? '' : 's'}${part}\n`);
    return 1;
  }
  const names = fe.decls.map((d) => d.decl.name).join(', ');
  const count = `${fe.decls.length} attention${fe.decls.length === 1 ? '' : 's'}`;
  process.stdout.write(`${escapeControl(file)}: ok (${count}: ${names})\n`);
  return 0;
}

/** `--param window=128 --param scale_it=true` → { window: 128, scale_it: true }. */
export function parseParamAssignments(list: readonly string[]): Record<string, number | boolean> {
  // No prototype: `--param __proto__=3` is a name like any other (and then an unknown param),
  // where `{}` would take it as the object's prototype and drop it without a word.
  const out = Object.create(null) as Record<string, number | boolean>;
  for (const item of list) {
    const m = /^([A-Za-z_]\w*)=(.+)$/.exec(item);
    if (!m) throw new UsageError(`--param expects NAME=VALUE, got \`${item}\``);
    const [, name, raw] = m as unknown as [string, string, string];
    // The later one used to win without a word: a script's default and its override both given.
    if (Object.hasOwn(out, name)) throw new UsageError(`--param ${name} is given twice`);
    if (raw === 'true' || raw === 'false') out[name] = raw === 'true';
    else {
      const n = decimalNumber(raw);
      if (n === undefined || !Number.isFinite(n))
        throw new UsageError(`--param ${name}: \`${raw}\` is not a decimal number or true/false`);
      out[name] = n;
    }
  }
  return out;
}

/**
 * A UsageError for the first `--param` that `kernel` does not declare (attnc run and attnc viz:
 * a typo must not run or draw the default in silence).
 */
export function checkParamNames(
  kernel: {
    readonly name: string;
    readonly params: readonly { readonly name: string }[];
    readonly tensors?: readonly { readonly name: string }[];
  },
  given: Readonly<Record<string, number | boolean>>,
): void {
  const known = kernel.params.map((p) => p.name);
  const unknown = Object.keys(given).find((name) => !known.includes(name));
  if (unknown === undefined) return;
  // A tensor param is named, but it is no scalar: say so rather than "no scalar param".
  if (kernel.tensors?.some((t) => t.name === unknown))
    throw new UsageError(
      `--param ${unknown}: \`${unknown}\` is a tensor of ${kernel.name}, drawn at random here (--param sets scalar params)`,
    );
  const hint = didYouMean(unknown, known);
  throw new UsageError(
    `--param ${unknown}: ${kernel.name} has no scalar param \`${unknown}\`` +
      (hint ? ` (${hint})` : ` (params: ${known.join(', ') || 'none'})`),
  );
}

/**
 * A UsageError for the first `--param NAME=VALUE` (as typed) that gives an i32 param of `kernel`
 * an integer in another spelling (`1e3`, `16.0`): parseParamAssignments cannot tell the types,
 * and the DSL takes an int as decimal digits only. A fraction (`1.5`) or a value past int32
 * (`1e40`) gets paramProblem's words.
 */
export function checkIntSpellings(
  kernel: { readonly params: readonly { readonly name: string; readonly dtype: string }[] },
  items: readonly string[],
): void {
  for (const item of items) {
    const eq = item.indexOf('=');
    const [name, raw] = [item.slice(0, eq), item.slice(eq + 1)];
    const isI32 = kernel.params.some((p) => p.name === name && p.dtype === 'i32');
    if (isI32 && misspeltI32(raw))
      throw new UsageError(`--param ${name}: \`${name}\` is an i32: write decimal digits, got \`${raw}\``);
  }
}
