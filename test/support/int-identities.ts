// Edge cases of int arithmetic and conversions (docs/LANGUAGE.md "Int arithmetic, conversions and
// constants"), as one mask that is true everywhere when a backend computes them as specified. `z`
// and `zf` are params equal to 0, so each identity is computed at run time, not folded; the same
// identities without them check constant folding.
const identities = [
  '2147483647 + z + 1 == -2147483647 - 1',
  '-(-2147483647 - 1 + z) == -2147483647 - 1',
  'abs(-2147483647 - 1 + z) == -2147483647 - 1',
  '(-2147483647 - 1 + z) / (-1 + z) == -2147483647 - 1',
  '(-2147483647 - 1 + z) % (-1 + z) == 0',
  '(7 + z) / z == 0 && (7 + z) % z == 0',
  '(-7 + z) / 2 == -4 && (-7 + z) % 2 == 1 && (7 + z) % (-2 + z) == -1',
  '(65536 + z) * 65536 == 0',
  '(46341 + z) * 46341 == -2147479015',
  'int(3e9 + zf) == 2147483647',
  'int(-3e9 + zf) == -2147483647 - 1',
  'int((0.0 + zf) / (0.0 + zf)) == 0',
  'int((1.0 + zf) / (0.0 + zf)) == 2147483647',
  'int((-1.0 + zf) / (0.0 + zf)) == -2147483647 - 1',
  'int(2147483520.0 + zf) == 2147483520',
  'int(-2.75 + zf) == -2',
  'float(16777217 + z) == 16777216.0',
];

/** `attention <name>` whose mask is causal && every identity; computed at run time or folded. */
export function identitiesSource(name: string, folded: boolean): string {
  const body = identities.map((e) => (folded ? e.replace(/ \+ zf?\b/g, '').replace(/\bzf?\b/g, '0') : e));
  return `attention ${name}(z: int = 0, zf: f32 = 0.0) {\n  mask causal\n${body.map((e) => `  mask ${e}\n`).join('')}}`;
}
