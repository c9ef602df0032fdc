// src/vendor/lodash-es-lite.ts stands in for lodash-es in the browser chevrotain
// (scripts/build-browser.mjs): every function it exports agrees with lodash-es itself on arrays,
// sparse arrays, strings, plain objects, null and undefined, with the callbacks seeing the same
// (value, key, collection) calls in the same order, and each name chevrotain imports is there.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as lite from '../../src/vendor/lodash-es-lite.js';

type Fn = (...args: unknown[]) => unknown;
// lodash-es is chevrotain's dependency, without types here: loaded by a name TS does not resolve.
const lodashName = 'lodash-es';
const lodash = (await import(lodashName)) as Record<string, Fn>;
const ours = lite as unknown as Record<string, Fn>;

/** Calls `name` of both libraries with a recording callback; results and calls must agree. */
function agree(name: string, args: (callback: Fn) => unknown[]): void {
  const run = (lib: Record<string, Fn>) => {
    const calls: unknown[] = [];
    let n = 0;
    // A deterministic callback with a mixed answer: truthy, falsy and (for forEach) false.
    const callback: Fn = (...a) => {
      calls.push(a.slice(0, 2));
      n++;
      return n % 3 === 0 ? false : n % 2 === 0 ? a[0] : n;
    };
    return { result: lib[name]!(...args(callback)), calls };
  };
  expect(run(ours)).toEqual(run(lodash));
}

const value = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom('a', 'b', '', 0, null, undefined, NaN),
);
const array = fc.array(value, { maxLength: 6 });
const collection = fc.oneof(
  array,
  fc.sparseArray(value, { maxLength: 5 }),
  fc.dictionary(fc.constantFrom('x', 'y', 'z', 'length0', 'w'), value),
  fc.constantFrom(null, undefined, 'abc', ''),
);
const nested = fc.array(fc.oneof(value, array), { maxLength: 5 });

describe('lodash-es-lite agrees with lodash-es', () => {
  const withCallback = [
    'forEach',
    'map',
    'flatMap',
    'filter',
    'reject',
    'find',
    'some',
    'every',
    'groupBy',
    'pickBy',
  ];
  for (const name of withCallback)
    it(`${name}(collection, callback)`, () => {
      fc.assert(fc.property(collection, (c) => agree(name, (cb) => [c, cb])));
    });

  it('reduce, with and without an initial value', () => {
    fc.assert(
      fc.property(collection, (c) => {
        agree('reduce', (cb) => [c, cb, 'init']);
        agree('reduce', (cb) => [c, cb]);
      }),
    );
  });

  it('property-name shorthands, and a missing callback', () => {
    const objects = fc.array(fc.record({ a: value, b: value }, { requiredKeys: [], noNullPrototype: true }), {
      maxLength: 5,
    });
    for (const name of ['map', 'filter', 'find', 'some', 'every', 'groupBy'])
      fc.assert(
        fc.property(objects, (c) => {
          agree(name, () => [c, 'a']);
          if (name !== 'groupBy') agree(name, () => [c]);
        }),
      );
  });

  const plain = [
    'isArray',
    'isUndefined',
    'isFunction',
    'isObject',
    'isString',
    'isRegExp',
    'isEmpty',
    'keys',
    'values',
    'first',
    'last',
    'compact',
    'uniq',
    'clone',
    'identity',
    'noop',
  ];
  for (const name of plain)
    it(`${name}(x)`, () => {
      fc.assert(fc.property(fc.oneof(collection, value), (x) => agree(name, () => [x])));
      for (const x of [/re/, () => 1, {}, [], [[1]], { a: [1] }]) agree(name, () => [x]);
    });

  it('flatten, drop, dropRight, difference, indexOf, includes, has', () => {
    fc.assert(
      fc.property(nested, array, value, fc.integer({ min: -3, max: 8 }), (a, b, v, n) => {
        agree('flatten', () => [a]);
        agree('drop', () => [a]);
        agree('drop', () => [a, n]);
        agree('dropRight', () => [a]);
        agree('dropRight', () => [a, n]);
        agree('difference', () => [a, b, [v]]);
        agree('indexOf', () => [a, v]);
        agree('indexOf', () => [a, v, n]);
        agree('includes', () => [a, v]);
        agree('includes', () => [a, v, n]);
        agree('includes', () => [{ x: v }, v]);
        agree('includes', () => ['abc', typeof v === 'string' ? v : 'b']);
        agree('has', () => [{ x: v }, 'x']);
        agree('has', () => [{ x: v }, 'y']);
        agree('has', () => [a, '0']);
        agree('has', () => [null, 'x']);
      }),
    );
  });

  it('assign, defaults (own and inherited sources, undefined targets), clone of class instances', () => {
    const object = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'toString'), value);
    fc.assert(
      fc.property(object, object, object, (a, b, c) => {
        agree('assign', () => [{ ...a }, b, c]);
        agree('defaults', () => [{ ...a }, b, c]);
        agree('defaults', () => [undefined, b]);
        agree('defaults', () => [{ ...a }, Object.create(b)]);
        agree('pickBy', () => [Object.assign(Object.create(b), a), (v: unknown) => v !== undefined]);
      }),
    );
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const p = lite.clone(new Point(1, 2));
    expect(p).toBeInstanceOf(Point);
    expect(p).toEqual(lodash.clone!(new Point(1, 2)));
    agree('upperFirst', () => ['abc']);
    agree('upperFirst', () => ['']);
  });

  it('forEach stops at a callback that returns false; reads values as it goes', () => {
    const seen: number[] = [];
    lite.forEach([1, 2, 3, 4], (v: number) => (seen.push(v), v < 2));
    expect(seen).toEqual([1, 2]);
    const a = [1, 2, 3];
    expect(lite.map(a, (v: number, i: number) => ((a[i + 1] = 10), v))).toEqual([1, 10, 10]);
  });

  it('exports every name chevrotain and @chevrotain/* import from lodash-es', () => {
    const root = dirname(fileURLToPath(import.meta.resolve('chevrotain')));
    const pkgs = [
      join(root, '../../'),
      ...['gast', 'regexp-to-ast', 'utils'].map((p) => join(root, '../../../@chevrotain', p)),
    ];
    const names = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (e.name.endsWith('.js'))
          for (const m of readFileSync(path, 'utf8').matchAll(/import \{([^}]*)\} from "lodash-es"/g))
            for (const n of m[1]!.split(',')) if (n.trim()) names.add(n.trim().split(/\s+as\s+/)[0]!);
      }
    };
    for (const p of pkgs) walk(join(p, 'lib/src'));
    expect(names.size).toBeGreaterThan(30);
    expect([...names].filter((n) => typeof ours[n] !== 'function')).toEqual([]);
  });
});
