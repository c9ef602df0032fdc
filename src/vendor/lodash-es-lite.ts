// The part of lodash-es that chevrotain 11 imports, written on the built-ins, for the browser
// chevrotain (scripts/build-browser.mjs bundles chevrotain with `lodash-es` resolved here; browser
// bundles of every entry take it). lodash brings ~230 modules into a bundle for these 38
// functions (its iteratee shorthands pull in deep equality and cloning): 10.7 kB of the gzip size
// of `compile()` from `attnc/wgsl`, this module about 1; parser start-up and parsing are no
// slower (generator iteration, measured in Node). Each function keeps lodash's semantics for
// what chevrotain passes (arrays, array-likes, plain objects, null and undefined; `forEach` stops
// when the callback returns false; `map` visits holes); iteratee shorthands other than a property
// name throw instead of guessing. Boxed strings and other exotic objects are outside what
// chevrotain passes and what the tests compare.
// test/browser/lodash-lite.test.ts checks every function against lodash-es itself.
type Collection = ArrayLike<unknown> | Record<PropertyKey, unknown> | null | undefined;
type Iteratee = ((value: any, key?: any, collection?: any) => unknown) | string | undefined;

const hasOwn = (o: object, k: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(o, k);

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  if (v == null || typeof v === 'function') return false;
  const n = (v as { length?: unknown }).length;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

/** A callback, the identity, or a property-name shorthand (the only shorthand supported). */
function toFunction(f: Iteratee): (value: any, key?: any, collection?: any) => unknown {
  if (typeof f === 'function') return f;
  if (f === undefined) return identity;
  if (typeof f === 'string') return (v: any) => (v == null ? undefined : v[f]);
  throw new TypeError('lodash-es-lite: unsupported iteratee shorthand');
}

/**
 * [key, value] pairs in lodash's order: indices of array-likes (holes included), else own
 * enumerable keys. Lazy, so values are read when visited and a callback can stop early.
 */
function* entries(c: unknown): Generator<[string | number, unknown]> {
  if (c == null) return;
  if (isArrayLike(c)) {
    const o = Object(c) as ArrayLike<unknown>;
    for (let i = 0, n = o.length; i < n; i++) yield [i, o[i]];
  } else for (const k of Object.keys(c)) yield [k, (c as Record<string, unknown>)[k]];
}

export const identity = <T>(v: T): T => v;
export const noop = (): void => undefined;
export const isArray = Array.isArray;
export const isUndefined = (v: unknown): v is undefined => v === undefined;
export const isFunction = (v: unknown): boolean => typeof v === 'function';
export const isObject = (v: unknown): boolean =>
  v != null && (typeof v === 'object' || typeof v === 'function');
export const isString = (v: unknown): boolean => typeof v === 'string' || v instanceof String;
export const isRegExp = (v: unknown): boolean => v instanceof RegExp;

export function isEmpty(v: unknown): boolean {
  if (v == null) return true;
  // lodash counts the length of arrays, strings and array-like built-ins; other objects' keys.
  const listLike = Array.isArray(v) || typeof v === 'string' || ArrayBuffer.isView(v);
  if (listLike || (isArrayLike(v) && typeof (v as { splice?: unknown }).splice === 'function'))
    return (v as ArrayLike<unknown>).length === 0;
  if (v instanceof Map || v instanceof Set) return v.size === 0;
  for (const k in v as object) if (hasOwn(v as object, k)) return false;
  return true;
}

export const has = (o: unknown, key: PropertyKey): boolean => o != null && hasOwn(Object(o), key);
export const keys = (o: Collection): string[] => Array.from(entries(o), ([k]) => String(k));
export const values = (o: Collection): unknown[] => Array.from(entries(o), ([, v]) => v);
export const first = <T>(a: ArrayLike<T> | null | undefined): T | undefined =>
  a && a.length ? a[0] : undefined;
export const last = <T>(a: ArrayLike<T> | null | undefined): T | undefined =>
  a && a.length ? a[a.length - 1] : undefined;

const arrayOf = <T>(a: ArrayLike<T> | null | undefined): T[] => (isArrayLike(a) ? Array.from(a) : []);
const count = (n: number | undefined, fallback: number): number =>
  Math.max(0, Math.trunc(n ?? fallback) || 0);
export const drop = <T>(a: ArrayLike<T> | null | undefined, n?: number): T[] => arrayOf(a).slice(count(n, 1));
export function dropRight<T>(a: ArrayLike<T> | null | undefined, n?: number): T[] {
  const all = arrayOf(a);
  return all.slice(0, Math.max(0, all.length - count(n, 1)));
}
export const compact = <T>(a: ArrayLike<T> | null | undefined): T[] => arrayOf(a).filter(Boolean);
export const uniq = <T>(a: ArrayLike<T> | null | undefined): T[] => [...new Set(arrayOf(a))];

/** One level of array nesting removed (lodash flattens arrays and arguments objects). */
export function flatten(a: ArrayLike<unknown> | null | undefined): unknown[] {
  const out: unknown[] = [];
  for (const v of arrayOf(a)) {
    if (Array.isArray(v)) out.push(...v);
    else out.push(v);
  }
  return out;
}

/** Same-value-zero membership, as lodash's (and Set's) comparisons. */
const sameValueZero = (a: unknown, b: unknown): boolean => a === b || (a !== a && b !== b);

export function difference(a: ArrayLike<unknown> | null | undefined, ...others: unknown[]): unknown[] {
  if (!isArrayLike(a) || typeof a === 'string') return [];
  const exclude = new Set(
    others.flatMap((o) => (isArrayLike(o) && typeof o !== 'string' ? Array.from(o) : [])),
  );
  return Array.from(a).filter((v) => !exclude.has(v));
}

export function indexOf(a: ArrayLike<unknown> | null | undefined, value: unknown, fromIndex = 0): number {
  const all = arrayOf(a);
  const from = fromIndex < 0 ? Math.max(all.length + fromIndex, 0) : fromIndex;
  for (let i = from; i < all.length; i++) if (sameValueZero(all[i], value)) return i;
  return -1;
}

export function includes(c: Collection | string, value: unknown, fromIndex = 0): boolean {
  if (typeof c === 'string') return c.indexOf(value as string, fromIndex) > -1;
  return indexOf(isArrayLike(c) ? c : values(c), value, fromIndex) > -1;
}

export function forEach<C extends Collection>(c: C, f: Iteratee): C {
  const fn = toFunction(f);
  for (const [k, v] of entries(c)) if (fn(v, k, c) === false) break;
  return c;
}

export function map(c: Collection, f?: Iteratee): unknown[] {
  const fn = toFunction(f);
  return Array.from(entries(c), ([k, v]) => fn(v, k, c));
}
export const flatMap = (c: Collection, f?: Iteratee): unknown[] => flatten(map(c, f));

export function filter(c: Collection, f?: Iteratee): unknown[] {
  const fn = toFunction(f);
  const out: unknown[] = [];
  for (const [k, v] of entries(c)) if (fn(v, k, c)) out.push(v);
  return out;
}
export function reject(c: Collection, f?: Iteratee): unknown[] {
  const fn = toFunction(f);
  return filter(c, (v, k, col) => !fn(v, k, col));
}
export function find(c: Collection, f?: Iteratee): unknown {
  const fn = toFunction(f);
  for (const [k, v] of entries(c)) if (fn(v, k, c)) return v;
  return undefined;
}
export function some(c: Collection, f?: Iteratee): boolean {
  const fn = toFunction(f);
  for (const [k, v] of entries(c)) if (fn(v, k, c)) return true;
  return false;
}
export const every = (c: Collection, f?: Iteratee): boolean => {
  const fn = toFunction(f);
  return !some(c, (v, k, col) => !fn(v, k, col));
};

/** Without an initial value the first element is the accumulator, as in lodash. */
export function reduce(
  c: Collection,
  f: (acc: any, v: any, k: any, c: any) => unknown,
  ...init: [unknown?]
): unknown {
  let started = init.length > 0;
  let acc = init[0];
  for (const [k, v] of entries(c)) {
    acc = started ? f(acc, v, k, c) : v;
    started = true;
  }
  return acc;
}

export function groupBy(c: Collection, f?: Iteratee): Record<string, unknown[]> {
  const fn = toFunction(f);
  const out: Record<string, unknown[]> = {};
  for (const [, v] of entries(c)) {
    const key = String(fn(v)); // lodash passes the value alone
    if (hasOwn(out, key)) out[key]!.push(v);
    else out[key] = [v];
  }
  return out;
}

/** Indices of array-likes, else own and inherited enumerable properties, as lodash's pickBy. */
export function pickBy(o: unknown, f?: Iteratee): Record<string, unknown> {
  const fn = toFunction(f);
  const out: Record<string, unknown> = {};
  if (o == null) return out;
  const names: string[] = [];
  if (isArrayLike(o)) for (const [k] of entries(o)) names.push(String(k));
  else for (const k in o as object) names.push(k);
  for (const k of names) {
    const v = (Object(o) as Record<string, unknown>)[k];
    if (fn(v, k)) out[k] = v;
  }
  return out;
}

export const assign = Object.assign;

/** Fills the properties that are undefined on `o` (own or inherited enumerable on sources). */
export function defaults(o: unknown, ...sources: unknown[]): Record<string, unknown> {
  const target = Object(o) as Record<string, unknown>;
  for (const s of sources) {
    if (s == null) continue;
    for (const k in s as object) {
      const own = target[k];
      const unset = own === undefined || (own === (Object.prototype as any)[k] && !hasOwn(target, k));
      if (unset) target[k] = (s as Record<string, unknown>)[k];
    }
  }
  return target;
}

/** A shallow copy, as lodash's: arrays (holes read as undefined), plain and class objects. */
export function clone<T>(v: T): T {
  if (Array.isArray(v)) return Array.from(v) as T;
  if (typeof v === 'function') return {} as T;
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof RegExp)
    return Object.assign(new RegExp(v.source, v.flags), { lastIndex: v.lastIndex }) as T;
  if (v instanceof Map) return new Map(v) as T;
  if (v instanceof Set) return new Set(v) as T;
  return Object.assign(Object.create(Object.getPrototypeOf(v)) as object, v) as T;
}

export const upperFirst = (s: string | null | undefined): string =>
  s == null || s === '' ? '' : String(s).charAt(0).toUpperCase() + String(s).slice(1);
