// fast-check generators of K/V storage formats and cache shapes for the test/quant property
// tests: every element type of the registry, symmetric and asymmetric, every granularity with ragged groups,
// normalizers, recent windows and salient tokens (flags or indices).
import fc from 'fast-check';
import { codesPerWord, elemBits } from '../../src/quant/elem.js';
import { floatElems, storageElems, isIntElem } from '../../src/quant/elem-registry.js';
import type { Granularity, IntStorageElem, QuantFormat, SalientBy } from '../../src/quant/format.js';
import type { CacheSizes } from '../../src/quant/layout.js';

export const sizesArb: fc.Arbitrary<CacheSizes> = fc.record({
  B: fc.integer({ min: 1, max: 2 }),
  Hkv: fc.integer({ min: 1, max: 2 }),
  Nk: fc.integer({ min: 0, max: 23 }),
  D: fc.integer({ min: 1, max: 40 }),
});

const dtype = fc.constantFrom('f16' as const, 'f32' as const);
const intElem = fc.constantFrom<IntStorageElem>(...storageElems.filter(isIntElem));

/** A granularity whose channel groups are whole words of `perWord` codes. */
function granularity(perWord: number): fc.Arbitrary<Granularity> {
  return fc.oneof(
    fc.constant<Granularity>({ kind: 'tensor' }),
    fc.constant<Granularity>({ kind: 'token' }),
    fc.constant<Granularity>({ kind: 'channel' }),
    fc.integer({ min: 1, max: 3 }).map<Granularity>((m) => ({ kind: 'token', group: m * perWord })),
    fc.integer({ min: 1, max: 9 }).map<Granularity>((g) => ({ kind: 'channel', group: g })),
  );
}

const recent = fc.option(
  fc.record({
    tokens: fc.integer({ min: 1, max: 9 }),
    dtype: fc.constantFrom('f16' as const, 'bf16' as const),
  }),
  { nil: undefined },
);

const intFormat: fc.Arbitrary<QuantFormat> = intElem.chain((elem) =>
  fc
    .record({
      wide: fc.option(intElem, { nil: undefined }),
      by: fc.constantFrom<SalientBy>('flags', 'index'),
      zero: fc.option(dtype, { nil: undefined }),
      norm: fc.option(dtype, { nil: undefined }),
      scaleDtype: dtype,
      recent,
    })
    .chain((r) => {
      const wide = r.wide && elemBits(r.wide) > elemBits(elem) ? r.wide : undefined;
      const perWord = Math.max(codesPerWord(elem), wide ? codesPerWord(wide) : 1);
      // A normalizer and salient tokens need per-token scales.
      const per = r.norm || wide ? tokenGranularity(perWord) : granularity(perWord);
      return per.map<QuantFormat>((p) => ({
        kind: 'int',
        elem,
        scale: { dtype: r.scaleDtype, per: p },
        ...(r.zero ? { zero: r.zero } : {}),
        ...(r.norm ? { norm: r.norm } : {}),
        ...(r.recent ? { recent: r.recent } : {}),
        ...(wide ? { salient: { elem: wide, by: r.by } } : {}),
      }));
    }),
);

function tokenGranularity(perWord: number): fc.Arbitrary<Granularity> {
  return fc.oneof(
    fc.constant<Granularity>({ kind: 'token' }),
    fc.integer({ min: 1, max: 3 }).map<Granularity>((m) => ({ kind: 'token', group: m * perWord })),
  );
}

const fp8Format: fc.Arbitrary<QuantFormat> = fc
  .record({
    elem: fc.constantFrom(...floatElems),
    scaled: fc.boolean(),
    scaleDtype: dtype,
    norm: fc.option(dtype, { nil: undefined }),
    recent,
  })
  .chain((r) => {
    const scaled = r.scaled || r.norm !== undefined;
    const per = r.norm ? tokenGranularity(4) : granularity(4);
    return per.map<QuantFormat>((p) => ({
      kind: 'fp8',
      elem: r.elem,
      ...(scaled ? { scale: { dtype: r.scaleDtype, per: p } } : {}),
      ...(r.norm ? { norm: r.norm } : {}),
      ...(r.recent ? { recent: r.recent } : {}),
    }));
  });

export const formatArb: fc.Arbitrary<QuantFormat> = fc.oneof(intFormat, fp8Format);

/** Values spread over magnitudes (so groups differ in scale), with some exact zeros and ties. */
export const valueArb: fc.Arbitrary<number> = fc.oneof(
  fc.float({ min: -8, max: 8, noNaN: true }),
  fc.constantFrom(0, -0, 0.5, -1.5, 2.5),
  fc.float({ min: Math.fround(-1e-3), max: Math.fround(1e-3), noNaN: true }),
  fc.float({ min: -3000, max: 3000, noNaN: true }),
);
