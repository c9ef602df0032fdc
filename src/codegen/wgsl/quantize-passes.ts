// The four passes of the WGSL quantize module (quantize.ts), as the CUDA kernels run them
// (codegen/cuda/quantize.ts): normalizer, scale groups, code words, recent window. Each is a
// grid-stride loop over the words it owns (global id + k · invocations).
import type { WgslQuantizeSpec } from './quantize.js';
import { QUANTIZE_WORKGROUP as WG } from './quantize.js';
import { pagedRowHelpers, pagedScaleEntry } from './quantize-paged.js';

export const loop = (total: string, body: string): string => String.raw`
  let stride = nwg.x * ${WG}u;
  for (var i = gid.x; i < ${total}; i = i + stride) {
${body}
  }`;

export const entry = (name: string, body: string): string => String.raw`
@compute @workgroup_size(${WG})
fn ${name}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {${body}
}`;

/** An unpaged cache's scale groups (docs/LANGUAGE.md, Layout); its code rows are bh·Nk + t. */
const unpagedScaleIndex = String.raw`fn scale_index(bh: u32, t: u32, c: u32) -> u32 {
  if (GRAN <= 1u) { return 0u; }
  var tg = 0u;
  if (GRAN == 2u) { tg = t; } else if (GROUP != 0u) { tg = t / GDIV; }
  var cg = c;
  if (GRAN == 2u) { cg = select(0u, c / GDIV, GROUP != 0u); }
  return (bh * token_groups() + tg) * CHANNEL_GROUPS + cg;
}`;

/** Row structure: recent, salient, rewritten rows, scale-group indexing, the value y. */
export function rowHelpers(s: WgslQuantizeSpec): string {
  const f = s.format;
  const salient = f.kind === 'int' ? f.salient : undefined;
  const test = !salient
    ? 'return false;'
    : salient.by === 'flags'
      ? 'return t < first_recent() && salient[bh * u.Nk + t] != 0;'
      : [
          'if (t >= first_recent()) { return false; }',
          '  for (var i = 0u; i < u.salient_n; i = i + 1u) { if (salient[bh * u.salient_n + i] == i32(t)) { return true; } }',
          '  return false;',
        ].join('\n');
  const x = s.input === 'f32' ? 'x[i]' : 'f16_value((x[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu)';
  return String.raw`
fn first_recent() -> u32 { return u.Nk - min(R, u.Nk); }
fn is_salient(bh: u32, t: u32) -> bool {
  ${test}
}
fn x_at(i: u32) -> f32 { return flush(${x}); }
// The token rows [first, end) whose codes and scale groups this call rewrites (rewrittenRows).
fn rewritten() -> vec2<u32> {
  if (u.n == 0u) { return vec2<u32>(u.start, u.start); }
  if (WHOLE) { return vec2<u32>(0u, u.Nk); }
  if (GRAN == 3u && GROUP != 0u) {
    return vec2<u32>(u.start / GDIV * GROUP, min(u.Nk, (u.start + u.n + GROUP - 1u) / GDIV * GROUP));
  }
  return vec2<u32>(u.start, u.start + u.n);
}
fn token_groups() -> u32 {
  if (GRAN == 2u) { return u.Nk; }
  if (GRAN == 3u && GROUP != 0u) { return (u.Nk + GROUP - 1u) / GDIV; }
  return 1u;
}
${s.paged ? pagedRowHelpers(s).slice(1) : unpagedScaleIndex}
fn y_at(bh: u32, t: u32, c: u32) -> f32 {
  let v = x_at((bh * u.Nk + t) * D + c);
  ${f.norm ? 'return div_rn(v, ld_norm(bh * D + c));' : 'return v;'}
}`;
}

/** Writes `bits` (16) into half `j` of word `w` of a packed tensor, or an f32 element. */
const put16 = (t: string) =>
  `${t}[w] = (${t}[w] & ~(0xffffu << (j * 16u))) | ((bits & 0xffffu) << (j * 16u));`;

/** Pass 1: the normalizer per (b, h, c) from every quantized token; two per word when f16. */
/** Token group tg and channel group cg (in scope) as rows t0..t1 (before the recent window) and channels c0..c1. */
export const groupBounds = (indent: string): string =>
  [
    'var t0 = 0u;',
    'var t1 = u.Nk;',
    'if (GRAN == 2u) { t0 = tg; t1 = tg + 1u; }',
    'if (GRAN == 3u && GROUP != 0u) { t0 = tg * GROUP; t1 = tg * GROUP + GROUP; }',
    't1 = min(t1, fr);',
    'var c0 = 0u;',
    'var c1 = D;',
    'if (GRAN == 3u) { c0 = cg; c1 = cg + 1u; }',
    'if (GRAN == 2u && GROUP != 0u) { c0 = cg * GROUP; c1 = min(D, cg * GROUP + GROUP); }',
  ]
    .map((l, i) => (i === 0 ? l : indent + l))
    .join('\n');

/**
 * A scale group's range: min and max of y over kv heads h0..h1 (every head when the scale is per
 * tensor), tokens t0..t1 and channels c0..c1 (in scope), whether a salient token widens it, and
 * its scale / zero point `p`. Shared by the contiguous and the paged scale passes; `indent` keeps
 * each caller's emitted text as it was.
 */
export const groupScan = (indent: string): string =>
  [
    'var h0 = bh;',
    'var h1 = bh + 1u;',
    'if (GRAN == 1u) { h0 = 0u; h1 = u.B * u.Hkv; }',
    'var mn = 0.0;',
    'var mx = 0.0;',
    'var count = 0u;',
    'var wide = false;',
    'for (var hh = h0; hh < h1; hh = hh + 1u) {',
    '  for (var t = t0; t < t1; t = t + 1u) {',
    '    wide = wide || is_salient(hh, t);',
    '    for (var c = c0; c < c1; c = c + 1u) {',
    '      let y = y_at(hh, t, c);',
    '      if (count == 0u) { mn = y; mx = y; } else { mn = js_min(mn, y); mx = js_max(mx, y); }',
    '      count = count + 1u;',
    '    }',
    '  }',
    '}',
    'let p = group_params(mn, mx, count, wide);',
  ]
    .map((l, i) => (i === 0 ? l : indent + l))
    .join('\n');

/**
 * The token groups t of the rows a quantize call rewrites (tg0..tg1) and the first recent row,
 * opening both scale passes (contiguous and paged).
 */
export const scaleGroupRange = String.raw`  let rows = rewritten();
  if (rows.x >= rows.y) { return; }
  let fr = first_recent();
  var tg0 = 0u;
  var tg1 = 1u;
  if (GRAN == 2u) { tg0 = rows.x; tg1 = rows.y; }
  if (GRAN == 3u && GROUP != 0u) { tg0 = rows.x / GDIV; tg1 = (rows.y + GROUP - 1u) / GDIV; }
`;

export function normPass(s: WgslQuantizeSpec): string {
  const f = s.format;
  if (!f.norm) return '';
  const packed = f.norm === 'f16';
  const one = (store: string) => String.raw`
      let bh = e / D;
      let c = e % D;
      var m = 0.0;
      for (var t = 0u; t < fr; t = t + 1u) { m = js_max(m, abs(x_at((bh * u.Nk + t) * D + c))); }
      ${store}`;
  const body = packed
    ? String.raw`    for (var j = 0u; j < 2u; j = j + 1u) {
      let w = i;
      let e = 2u * i + j;
      if (e >= total) { break; }${one('var bits = rn_sat_f16(sqrt_rn(m));\n      if ((bits & 0x7fffu) == 0u) { bits = 0x3c00u; }\n      ' + put16('norm'))}
    }`
    : String.raw`    let e = i;${one('let r = sqrt_rn(m);\n      norm[e] = select(r, 1.0, r == 0.0);')}`;
  return entry(
    'quantize_norm',
    String.raw`
  let total = u.B * u.Hkv * D;
  let fr = first_recent();` + loop(packed ? '(total + 1u) / 2u' : 'total', body),
  );
}

/** Pass 2: the scale groups the call touches, two per invocation (a word of 16-bit scales). */
export function scalePass(s: WgslQuantizeSpec): string {
  const f = s.format;
  if (!f.scale) return '';
  const zero = f.kind === 'int' ? f.zero : undefined;
  const scaleUp =
    f.scale.dtype === 'f16' ? 'p.sbits = up_f16(SV); p.scale = f16_value(p.sbits);' : 'p.scale = up_f32(SV);';
  const params =
    f.kind === 'fp8' || !zero
      ? String.raw`
  let am = js_max(-mn, mx);
  if (am == 0.0) { return p; }
  ${scaleUp.replaceAll('SV', `div_rn(am, ${f.kind === 'fp8' ? 'QMAX' : 'select(QMAX, HI_QMAX, wide)'})`)}`
      : String.raw`
  let lo = js_min(mn, 0.0);
  let range = js_max(mx, 0.0) - lo;
  if (range == 0.0) { return p; }
  ${scaleUp.replaceAll('SV', 'div_rn(range, select(QMAX, HI_QMAX, wide))')}
  ${zero === 'f16' ? 'p.zbits = rn_sat_f16(div_rn(-lo, p.scale)); p.zero = f16_value(p.zbits);' : 'p.zero = div_rn(-lo, p.scale);'}`;
  const write = (name: 'scale' | 'zero', dtype: string, field: 'sbits' | 'zbits', value: 'scale' | 'zero') =>
    dtype === 'f16' ? `{ let bits = p.${field}; ${put16(name)} }` : `${name}[g] = p.${value};`;
  return (
    String.raw`
struct GroupParams { scale: f32, zero: f32, sbits: u32, zbits: u32 }
// groupScale: a group's scale (and zero point) from its extremes; {1, 0} when it has none.
fn group_params(mn: f32, mx: f32, count: u32, wide: bool) -> GroupParams {
  var p = GroupParams(1.0, 0.0, 0x3c00u, 0u);
  if (count == 0u) { return p; }${params}
  return p;
}` +
    (s.paged
      ? pagedScaleEntry(s)
      : entry(
          'quantize_scale',
          String.raw`
${scaleGroupRange}  let tgs = token_groups();
  let total = select(u.B * u.Hkv * tgs * CHANNEL_GROUPS, 1u, GRAN == 1u);` +
            loop(
              '(total + 1u) / 2u',
              String.raw`    let w = i;
    for (var j = 0u; j < 2u; j = j + 1u) {
      let g = 2u * i + j;
      if (g >= total) { break; }
      let bh = g / (tgs * CHANNEL_GROUPS);
      let tg = g / CHANNEL_GROUPS % tgs;
      let cg = g % CHANNEL_GROUPS;
      if (tg < tg0 || tg >= tg1) { continue; } // outside the range: keeps its bits
      ${groupBounds('      ')}
      ${groupScan('      ')}
      ${write('scale', f.scale.dtype, 'sbits', 'scale')}
      ${zero ? write('zero', zero, 'zbits', 'zero') : ''}
    }`,
            ),
        ))
  );
}

/** One code: round half to even and clamp (int), or the fp8 encoding. */
export function encoder(s: WgslQuantizeSpec): string {
  const f = s.format;
  const scale = f.scale ? 'ld_scale(g)' : '1.0';
  if (f.kind === 'fp8')
    return `fn encode(g: u32, v: f32, wide: bool) -> u32 { return fp8_encode(${f.scale ? `div_rn(v, ${scale})` : 'v'}); }`;
  const q = f.zero ? `round(div_rn(v, ${scale}) + ld_zero(g))` : `round(div_rn(v, ${scale}))`;
  return String.raw`fn encode(g: u32, v: f32, wide: bool) -> u32 {
  let hi = select(QMAX, HI_QMAX, wide);
  let lo = ${f.zero ? '0.0' : '-hi'};
  return u32(i32(clamp(${q}, lo, hi)));
}`;
}

/** Pass 3: the code words of the rewritten rows. */
export function codePass(s: WgslQuantizeSpec): string {
  const hi = s.format.kind === 'int' && s.format.salient;
  return (
    String.raw`
fn pack_word(bh: u32, t: u32, w: u32, bits: u32, wide: bool) -> u32 {
  let per = 32u / bits;
  var word = 0u;
  for (var j = 0u; j < per; j = j + 1u) {
    let c = w * per + j;
    if (c >= D) { break; }
    let code = encode(scale_index(bh, t, c), y_at(bh, t, c), wide);
    word = word | ((code & ((1u << bits) - 1u)) << (j * bits));
  }
  return word;
}` +
    entry(
      'quantize_codes',
      String.raw`
  let rows = rewritten();
  let fr = first_recent();
  let per_bh = (rows.y - rows.x) * MAX_WORDS;
  let total = u.B * u.Hkv * per_bh;` +
        loop(
          'total',
          String.raw`    let bh = i / per_bh;
    let t = rows.x + i % per_bh / MAX_WORDS;
    let w = i % MAX_WORDS;
    let recent = t >= fr;
    let wide = is_salient(bh, t);
    ${s.paged ? 'let row = code_row(bh, t);\n    if (row == NO_ROW) { continue; } // a page outside the pools' : 'let row = bh * u.Nk + t;'}
    if (w < WORDS) { codes[row * WORDS + w] = select(pack_word(bh, t, w, BITS, false), 0u, recent || wide); }
    ${hi ? 'if (w < HI_WORDS) { codesHi[row * HI_WORDS + w] = select(0u, pack_word(bh, t, w, HI_BITS, true), wide); }' : ''}`,
        ),
    )
  );
}

/** Pass 4: the recent window, whole, two 16-bit values per word; rows past min(R, Nk) are 0. */
export function recentPass(s: WgslQuantizeSpec): string {
  const r = s.format.recent;
  if (!r) return '';
  const enc = r.dtype === 'f16' ? 'f16_bits' : 'bf16_bits';
  return entry(
    'quantize_recent',
    String.raw`
  let total = u.B * u.Hkv * R * D;
  let fr = first_recent();
  let count = u.Nk - fr;` +
      loop(
        '(total + 1u) / 2u',
        String.raw`    var word = 0u;
    for (var j = 0u; j < 2u; j = j + 1u) {
      let e = 2u * i + j;
      if (e >= total) { break; }
      let bh = e / (R * D);
      let r = e / D % R;
      let c = e % D;
      if (r < count) { word = word | ((${enc}(x_at((bh * u.Nk + fr + r) * D + c)) & 0xffffu) << (j * 16u)); }
    }
    recent[i] = word;`,
      ),
  );
}
