// `:set NAME=VALUE …` / `:unset NAME`: shape settings (nq, nk, heads, …) and param values. A
// param is checked against the declaring kernel's type; a name no kernel declares is refused
// (a typo should not silently do nothing).
import type { ParamSlot } from '../../ir/kernel.js';
import { declaredDefault, paramProblem } from '../../runtime/params.js';
import { seedProblem } from '../compile-flags.js';
import { decimalInt, decimalNumber, misspeltI32 } from '../numbers.js';
import { MAX_REPEAT } from '../run-command.js';
import { I32_MAX } from '../run-limits.js';
import { defaultSettings, ReplError, type Session, type Settings } from './session.js';

type Key = keyof Settings;

/** Spellings accepted by :set (and offered by completion), mapped to settings. */
export const settingNames: Readonly<Record<string, Key>> = {
  nq: 'nq',
  nk: 'nk',
  heads: 'heads',
  'kv-heads': 'kvHeads',
  kv_heads: 'kvHeads',
  batch: 'batch',
  dim: 'dim',
  dtype: 'dtype',
  head: 'head',
  seed: 'seed',
  repeat: 'repeat',
};

/** The setting `name` spells, if any (an own key: `toString` is no setting). */
function settingKey(name: string): Key | undefined {
  return Object.hasOwn(settingNames, name) ? settingNames[name] : undefined;
}

/** The values a numeric setting takes: :run's limits (run-limits.ts checkRunFits, MAX_REPEAT). */
function rangeOf(key: Exclude<Key, 'dtype' | 'seed'>): readonly [number, number] {
  if (key === 'repeat') return [1, MAX_REPEAT];
  return [key === 'head' ? 0 : 1, I32_MAX];
}

/**
 * A shape setting, refused at :set with the limits :run applies, so that `:set nq=2147483648`
 * does not wait for :mask or :run to be refused; every refusal names the key and its range.
 */
function shapeValue(key: Exclude<Key, 'dtype' | 'seed'>, name: string, raw: string): number {
  const [min, max] = rangeOf(key);
  const n = decimalInt(raw);
  if (n === undefined || n < min || n > max) {
    const why = max === I32_MAX ? ' (sizes are int32)' : '';
    throw new ReplError(`${name} expects an integer in [${min}, ${max}]${why}, got \`${raw}\``);
  }
  return n;
}

/**
 * `:set dim=N` with a current kernel: N when a WGSL schedule of it fits, else refused naming the
 * largest head dim that does (the device's workgroup memory bounds it), rather than at :run.
 */
function fittingDim(session: Session, name: string, dim: number, raw: string): number {
  const def = session.current;
  if (!def) return dim;
  const fits = (d: number): boolean => {
    try {
      session.compiledAt(def, d);
      return true;
    } catch (e) {
      if (e instanceof ReplError) return false;
      throw e;
    }
  };
  if (fits(dim)) return dim;
  // Bisection: a larger head dim needs more workgroup memory, never less.
  let [lo, hi] = [0, dim];
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  if (lo === 0) throw new ReplError(`${name} ${dim}: no wgsl schedule of \`${def.name}\` fits any head dim`);
  throw new ReplError(
    `${name} expects an integer in [1, ${lo}] for \`${def.name}\` (no wgsl schedule fits a larger head dim), got \`${raw}\``,
  );
}

function setSetting(s: Settings, key: Key, name: string, raw: string): void {
  if (key === 'dtype') {
    if (raw !== 'f32' && raw !== 'f16' && raw !== 'bf16')
      throw new ReplError(`dtype expects f32, f16 or bf16, got \`${raw}\``);
    s.dtype = raw;
  } else if (key === 'seed') {
    const problem = seedProblem(raw);
    if (problem) throw new ReplError(`seed ${problem}`);
    s.seed = Number(raw);
  } else {
    s[key] = shapeValue(key, name, raw);
  }
}

export function paramValue(slot: Pick<ParamSlot, 'name' | 'dtype'>, raw: string): number | boolean {
  if (slot.dtype === 'bool') {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new ReplError(`param \`${slot.name}\` is a bool: use true or false, got \`${raw}\``);
  }
  const n = decimalNumber(raw);
  if (n === undefined) throw new ReplError(`param \`${slot.name}\` expects a decimal number, got \`${raw}\``);
  // `1e3` or `16.0` for an int: the DSL would refuse that spelling (2.5 gets the runtime's words).
  if (slot.dtype === 'i32' && misspeltI32(raw))
    throw new ReplError(`param \`${slot.name}\` is an i32: write decimal digits, got \`${raw}\``);
  // The runtime's rule: no int32 wrap, no f32 overflow to ±Inf.
  const problem = paramProblem(slot.name, slot.dtype, n);
  if (problem) throw new ReplError(problem);
  return n;
}

/** The slot of param `name` in the current kernel, else in any defined kernel. */
function findParam(session: Session, name: string): ParamSlot | undefined {
  const defs = [...session.defs.values()].reverse();
  for (const d of defs) {
    const slot = session.compiled(d).kernel.params.find((p) => p.name === name);
    if (slot) return slot;
  }
  return undefined;
}

/** `name` is neither a setting nor a param of a defined kernel: the error lists what is. */
function unknownName(session: Session, name: string): ReplError {
  const kernel = session.current ? session.compiled(session.current).kernel : undefined;
  const declared = kernel ? kernel.params.map((p) => p.name) : [];
  // A tensor is named but no scalar: `:run` draws it at random, as `attnc run` does.
  if (kernel?.tensors.some((t) => t.name === name))
    return new ReplError(
      `\`${name}\` is a tensor of ${kernel.name}, drawn at random by :run (:set sets scalar params)`,
    );
  return new ReplError(
    `no setting or param \`${name}\` (settings: ${Object.keys(settingNames).join(', ')}; params: ${declared.join(', ') || 'none'})`,
  );
}

export function describeSettings(session: Session): string {
  const s = session.settings;
  const shape = [
    `nq=${s.nq}`,
    `nk=${s.nk}`,
    `heads=${s.heads}`,
    `kv-heads=${s.kvHeads ?? s.heads}`,
    `batch=${s.batch}`,
    `dim=${s.dim}`,
    `dtype=${s.dtype ?? 'default'}`,
    `head=${s.head}`,
    `seed=${s.seed}`,
    `repeat=${s.repeat}`,
  ].join(' ');
  const cur = session.current;
  const params = cur
    ? session.compiled(cur).kernel.params.map((p) => {
        const set = Object.hasOwn(session.params, p.name);
        const v = set ? session.params[p.name] : declaredDefault(p);
        return `${p.name}=${v === undefined ? '(required)' : String(v)}${set ? '' : ' (default)'}`;
      })
    : [];
  return `shape: ${shape}\nparams${cur ? ` of ${cur.name}` : ''}: ${params.join(' ') || '(none)'}`;
}

export function setCommand(session: Session, rest: string): void {
  const items = rest
    .replace(/\s*=\s*/g, '=')
    .split(/\s+/)
    .filter(Boolean);
  if (!items.length) {
    session.print(describeSettings(session));
    return;
  }
  for (const item of items) {
    const m = /^([A-Za-z_][\w-]*)=(.*)$/.exec(item);
    if (!m) throw new ReplError(`:set expects NAME=VALUE, got \`${item}\``);
    const [, name, raw] = m as unknown as [string, string, string];
    const key = settingKey(name);
    if (key === 'dim') {
      session.settings.dim = fittingDim(session, name, shapeValue(key, name, raw), raw);
      continue;
    }
    if (key) {
      setSetting(session.settings, key, name, raw);
      continue;
    }
    const slot = findParam(session, name);
    if (!slot) throw unknownName(session, name);
    session.params[name] = paramValue(slot, raw);
  }
  session.print(items.join(' '));
}

/**
 * Back to the default: a setting's, or a param's declared default. Every name is checked before
 * any is reset, so a typo (`:unset widnow nq`) changes nothing and says why.
 */
export function unsetCommand(session: Session, rest: string): void {
  const names = rest.split(/\s+/).filter(Boolean);
  if (!names.length) throw new ReplError(':unset expects NAME …: a setting or a param');
  const unknown = names.find(
    (n) => !settingKey(n) && !Object.hasOwn(session.params, n) && !findParam(session, n),
  );
  if (unknown !== undefined) throw unknownName(session, unknown);
  for (const name of names) {
    const key = settingKey(name);
    if (key) Object.assign(session.settings, { [key]: defaultSettings[key] });
    else delete session.params[name];
  }
}
