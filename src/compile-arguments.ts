// The checks of compile()'s arguments as JS callers pass them (not type-checked): a wrong kind of
// argument is a TypeError, a malformed or misspelt option a message compileWith positions.
import type { CompileOptions } from './compile-core.js';
import { misspeltKey } from './misspelt.js';

const TARGETS: readonly string[] = ['wgsl', 'cuda'];
const DTYPES: readonly string[] = ['f32', 'f16', 'bf16'];

const OPTION_NAMES: readonly (keyof CompileOptions)[] = [
  'target',
  'file',
  'entry',
  'headDim',
  'valueDim',
  'dtype',
  'arch',
  'limits',
  'schedule',
  'wgslEngine',
  'lse',
  'importance',
  'decode',
  'observe',
];
/**
 * An option key that misspells a known one (`headdim`, `head_dim`, `dim`): without this check the
 * option was dropped and its default used, a silent wrong kernel. Other unknown keys pass, since
 * callers spread wider objects into the options.
 */
function misspeltOption(o: object): string | undefined {
  for (const key of Object.keys(o)) {
    if ((OPTION_NAMES as readonly string[]).includes(key)) continue;
    const meant = key === 'dim' ? 'headDim' : misspeltKey(key, OPTION_NAMES);
    if (meant) return `unknown option \`${key}\`: did you mean \`${meant}\`?`;
  }
  return undefined;
}

/** Why a head or value dim option is not a positive integer, or undefined. */
function dimProblem(name: 'headDim' | 'valueDim', v: unknown): string | undefined {
  if (v === undefined || (Number.isSafeInteger(v) && (v as number) > 0)) return undefined;
  return `option ${name}: expected a positive integer, got ${typeof v === 'string' ? `\`${v}\`` : String(v)}`;
}

/** Why the options (from JS callers, not type-checked) are malformed, or undefined. */
export function optionsProblem(o: CompileOptions): string | undefined {
  const show = (v: unknown): string => (typeof v === 'string' ? `\`${v}\`` : String(v));
  const misspelt = misspeltOption(o);
  if (misspelt) return misspelt;
  // A plain-JS `compile(src, { headDim: 64 })` read "unknown target undefined": say it is missing.
  if (o.target === undefined) return `option target is missing (targets: ${TARGETS.join(', ')})`;
  if (!TARGETS.includes(o.target)) return `unknown target ${show(o.target)} (targets: ${TARGETS.join(', ')})`;
  const dim = dimProblem('headDim', o.headDim) ?? dimProblem('valueDim', o.valueDim);
  if (dim) return dim;
  if (o.dtype !== undefined && !DTYPES.includes(o.dtype))
    return `unknown dtype ${show(o.dtype)} (dtypes: ${DTYPES.join(', ')})`;
  if (o.lse !== undefined && typeof o.lse !== 'boolean')
    return `option lse: expected a boolean, got ${show(o.lse)}`;
  if (o.decode !== undefined && typeof o.decode !== 'boolean')
    return `option decode: expected a boolean, got ${show(o.decode)}`;
  if (o.importance !== undefined && o.importance !== 'sum' && o.importance !== 'normalized')
    return `option importance: expected sum or normalized, got ${show(o.importance)}`;
  if (o.wgslEngine !== undefined && o.wgslEngine !== 'row' && o.wgslEngine !== 'coop')
    return `option wgslEngine: expected row or coop, got ${show(o.wgslEngine)}`;
  const buffers = o.limits?.maxStorageBuffers;
  if (buffers !== undefined && !(Number.isSafeInteger(buffers) && buffers > 0))
    return `option limits.maxStorageBuffers: expected a positive integer, got ${show(buffers)}`;
  return undefined;
}

/** compile(source, options) from JS callers: a wrong kind of argument is a TypeError naming it. */
export function checkArguments(source: unknown, options: unknown): void {
  const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
  if (typeof source !== 'string')
    throw new TypeError(
      `compile(source, options): source must be a string of .attn text, got ${kind(source)}`,
    );
  // attnc.torch.load takes a path or source text; compile() takes text alone, and a path read
  // "expected `attention`, found `stdlib`". No .attn program is one line ending in `.attn`
  // that is not a comment.
  if (/^\s*(?!\/[/*])[^\n{}()]+\.attn\s*$/.test(source))
    throw new TypeError(
      `compile(source, options): source must be .attn text, got the file name \`${source.trim()}\`: ` +
        "read the file first (readFileSync(path, 'utf8'), or fetch(url) in a browser)",
    );
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(
      `compile(source, options): options must be an object such as { target: 'wgsl' }, got ${kind(options)}`,
    );
}
