// The online softmax of the warp-specialized core under Schedule.wsTweaks fastExp and lazyRescale
// (wgmma-ws-tweaks.ts). Without either, the serial tile keeps mma-body's softmaxCode text and the
// overlapped loop its own, so untweaked kernels are emitted unchanged.
import type { CoreExprs } from './exprs.js';
import { elementCode, elementLoopCode, softmaxCode } from './mma-body.js';
import { indent } from './indent.js';
import type { WsTweaks } from './wgmma-ws-tweaks.js';

/** Whether the tweaks touch the softmax at all. */
export const softmaxTweaked = (t: WsTweaks): boolean => t.fastExp || t.lazyRescale || t.foldScale;

/** foldScale applies: no score modifier, so the element step only scales (and masks) q·k. */
export const foldsScale = (e: CoreExprs, t: WsTweaks): boolean => t.foldScale && e.score === null;

/** elementCode, with the raw q·k kept (foldScale: the scale comes in the exp2's FFMA). */
export function wsElementCode(e: CoreExprs, t: WsTweaks): string[] {
  const lines = elementCode(e);
  if (!foldsScale(e, t)) return lines;
  const raw = lines.map((l) =>
    l
      .replace('float y = s[j][e] * qscale;', 'float y = s[j][e]; // raw: foldScale')
      .replace('const float x = s[j][e] * qscale;', 'const float x = s[j][e]; // raw: foldScale'),
  );
  if (raw.filter((l, i) => l !== lines[i]).length !== 1)
    throw new Error('CUDA wgmma-ws: foldScale found no single scaling step in the element code');
  return raw;
}

/** exp2 as the tweaks ask: ex2.approx.ftz, or exp2f. */
export const exp2Of = (t: WsTweaks): string => (t.fastExp ? 'ex2_ftz' : 'exp2f');

/** Modifier, tail and mask over every element of s (MASKED tiles only test). */
const elementLoop = (e: CoreExprs, t: WsTweaks): string[] => [...elementLoopCode(wsElementCode(e, t))];

/**
 * Per row: the new running max, alpha (the factor O and l take) into `alpha[r]`, the
 * probabilities left in s (f32) and l updated. A row is spread over a quad; with lazyRescale the
 * max moves only when the tile's exceeds it by more than 8, so alpha is exactly 1 otherwise.
 */
export function rowSoftmaxCode(t: WsTweaks, fold = false): string[] {
  const exp2 = exp2Of(t);
  const p = (x: string): string => (fold ? `${exp2}(fmaf(${x}, qs, nb))` : `${exp2}(${x} - base)`);
  return [
    '#pragma unroll',
    'for (int r = 0; r < 2; ++r) {',
    `  float mx = ${fold ? '-INFINITY; // over the raw q·k, scaled once below' : 'm[r];'}`,
    '#pragma unroll',
    '  for (int j = 0; j < NT; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));',
    ...(fold ? ['  mx = fmaxf(m[r], mx * qs); // qs > 0: the raw max, scaled'] : []),
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));',
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));',
    ...(t.lazyRescale
      ? [
          '  // A stale max is exact after the final 1/l; P stays ≤ 2^8 (f32 l and O, bf16 P: no overflow).',
          '  const float mnew = mx > m[r] + 8.f ? mx : m[r];',
        ]
      : ['  const float mnew = mx;']),
    '  // A row with nothing allowed yet keeps m = -inf; `base` keeps exp2 away from inf - inf.',
    '  const float base = mnew == -INFINITY ? 0.f : mnew;',
    `  alpha[r] = ${exp2}(m[r] - base);`,
    ...(fold ? ['  const float nb = -base;'] : []),
    '  float sum = 0.f;',
    '#pragma unroll',
    '  for (int j = 0; j < NT; ++j) {',
    `    s[j][2 * r] = ${p('s[j][2 * r]')};`,
    `    s[j][2 * r + 1] = ${p('s[j][2 * r + 1]')};`,
    '    sum += s[j][2 * r] + s[j][2 * r + 1];',
    '  }',
    '  m[r] = mnew;',
    "  l[r] = l[r] * alpha[r] + sum; // this lane's share; the quad is summed once, at the end",
    '}',
  ];
}

/** O *= alpha per row; with lazyRescale only when some row of the warp moved (a uniform branch). */
export function rescaleOCode(t: WsTweaks): string[] {
  const body = [
    '#pragma unroll',
    'for (int n = 0; n < DV / 8; ++n) {',
    '  o[n][0] *= alpha[0];',
    '  o[n][1] *= alpha[0];',
    '  o[n][2] *= alpha[1];',
    '  o[n][3] *= alpha[1];',
    '}',
  ];
  if (!t.lazyRescale) return body;
  return ['if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {', ...indent(body, '  '), '}'];
}

/** The serial tile's element step and softmax, O rescaled in place (P·V of the last tile is done). */
export function serialSoftmaxCode(e: CoreExprs, t: WsTweaks): string[] {
  if (!softmaxTweaked(t)) return softmaxCode(e);
  return [
    ...elementLoop(e, t),
    'float alpha[2];',
    ...rowSoftmaxCode(t, foldsScale(e, t)),
    ...rescaleOCode(t),
  ];
}
