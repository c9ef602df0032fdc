// The per-element and softmax steps of a token attention tile (the accumulator layout of
// token-attn.ts: rows gq and gq + 8, columns j·8 + 2·t4 + {0, 1}), shared by the query-major walk
// (token-attn.ts) and the key-major attention (token-keymajor.ts).
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';

/** The query-major walk's key test: past the keys, or in a block the row did not select. */
const unselectedKey = 'kidx >= a.Nk || !route_hit(tok_bits[r], kid0, kpos)';

/**
 * The per-element step on s[j][e]: scale, score modifier, the key test `dropKey` (true: the key
 * takes no part) and the static mask. Key-major passes its own key test (token-keymajor.ts).
 */
export function elementStep(e: CoreExprs, dropKey = unselectedKey): string[] {
  return [
    '#pragma unroll',
    'for (int j = 0; j < TOK_BK / 8; ++j)',
    '#pragma unroll',
    '  for (int ee = 0; ee < 4; ++ee) {',
    '    const int r = ee >> 1, kidx = kbase + j * 8 + 2 * t4 + (ee & 1);',
    '    const int kpos = a.k_offset + kidx, qpos = row_q[r], h = row_h[r];',
    '    (void)qpos; (void)h; (void)r;',
    '    const float x = s[j][ee] * qscale;',
    ...indent(e.elemStmts, '    '),
    `    float y = ${e.score === null ? 'x' : `${e.score} * LOG2E`};`,
    // A NaN q·k poisons the row whatever the modifier makes of it (docs/LANGUAGE.md).
    ...(e.score === null ? [] : ['    if (isnan(x)) y = x;']),
    `    if (${dropKey}${e.mask === null ? '' : ` || !(${e.mask})`}) y = -INFINITY;`,
    '    s[j][ee] = y;',
    '  }',
  ];
}

/** Online softmax of the tile (base 2) for each of the thread's two rows; the quad shares a row. */
export function softmaxStep(rescale: readonly string[]): string[] {
  return [
    '#pragma unroll',
    'for (int rr = 0; rr < 2; ++rr) {',
    '  float mx = m[rr];',
    '#pragma unroll',
    '  for (int j = 0; j < TOK_BK / 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));',
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));',
    '  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));',
    '  // A row with nothing allowed yet keeps m = -inf; `base` keeps exp2 away from inf - inf.',
    '  const float base = mx == -INFINITY ? 0.f : mx;',
    '  const float alpha = exp2f(m[rr] - base);',
    '  float sum = 0.f;',
    '#pragma unroll',
    '  for (int j = 0; j < TOK_BK / 8; ++j)',
    '#pragma unroll',
    '    for (int e1 = 0; e1 < 2; ++e1) {',
    '      s[j][2 * rr + e1] = exp2f(s[j][2 * rr + e1] - base);',
    '      sum += s[j][2 * rr + e1];',
    '    }',
    '  m[rr] = mx;',
    "  l[rr] = l[rr] * alpha + sum; // this thread's columns; the quad sums at the end",
    ...indent(rescale, '  '),
    '}',
  ];
}
