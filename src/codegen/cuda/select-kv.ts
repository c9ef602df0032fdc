// K/V element access of the selection passes (select*.ts: pooling, scoring, the attention over
// the selection) when a cache is quantized. One head handle per quantized tensor, `SelDqK` /
// `SelDqV`, that every selection load goes through: element c of key j of the (batch, kv head)
// is `<k|v>_dequant` (dequant.ts) — the function every engine's core defines after these passes
// (declared here, as routing.ts's pooling pass does), so the selection scores and attends over
// exactly the values the core's tile loads dequantize, bit for bit the oracle's. A float cache
// keeps its KvRows handle and vector loads (kv-rows.ts, kv-load-simt.ts): its code is unchanged.
import type { TensorFormat, TensorFormats } from '../../ir/formats.js';
import { selectKvVector } from './kv-load-simt.js';
import { K_ROWS, V_ROWS, kvHead, pagedQuantRow, type KvTensor } from './kv-rows.js';

type Which = 'k' | 'v';

const handleName = (w: Which): string => (w === 'k' ? 'SelDqK' : 'SelDqV');
const quantized = (f: TensorFormats): Which[] => (['k', 'v'] as const).filter((w) => f[w].kind === 'quant');

/** Whether `f` is read through a SelDq handle (a quantized cache). */
export const selDequantizes = (f: TensorFormat): boolean => f.kind === 'quant';

/** The handle of quantized cache `w`, after the forward declaration of its element function. */
function handle(w: Which, paged: boolean): string[] {
  const H = handleName(w);
  const row = paged ? pagedQuantRow('*a', 'bh', 'j') : 'bh * (size_t)a->Nk + j';
  return [
    `__device__ __forceinline__ float ${w}_dequant(const Args& a, size_t row, int t, int c, size_t bh);`,
    `// Keys of one kv head of the quantized ${w} cache, dequantized element by element (select-kv.ts).`,
    `struct ${H} {`,
    '  const Args* a;',
    '  size_t bh; // b * Hkv + hkv',
    '  __device__ __forceinline__ float at(int j, int c) const {',
    `    return ${w}_dequant(*a, ${row}, j, c, bh);`,
    '  }',
    '  template <int N>',
    '  __device__ __forceinline__ void load(int j, int c0, float (&x)[N]) const {',
    '#pragma unroll',
    '    for (int u = 0; u < N; ++u) x[u] = at(j, c0 + u);',
    '  }',
    '};',
  ];
}

/** Device code of the handles (before the selection passes); none when k and v are floats. */
export function selectKvCode(formats: TensorFormats): string[] {
  const which = quantized(formats);
  return which.length ? ['', ...which.flatMap((w) => handle(w, formats.paged !== undefined))] : [];
}

/** A handle expression for tensor `t` of kv head `hkv` of batch `b`: KvRows, or SelDq when quantized. */
export function selectKvHead(formats: TensorFormats, t: KvTensor, b: string, hkv: string): string {
  return selDequantizes(formats[t.name])
    ? `${handleName(t.name)}{&a, (size_t)(${b} * a.Hkv + ${hkv})}`
    : kvHead(t, b, hkv, formats.paged !== undefined);
}

/** The selection attention's `kp` / `vp` declarations. */
export function selectKvHeadDecls(formats: TensorFormats, b: string, hkv: string): string[] {
  const decl = (t: KvTensor, name: string): string => {
    const type = selDequantizes(formats[t.name]) ? handleName(t.name) : 'KvRows';
    return `const ${type} ${name} = ${selectKvHead(formats, t, b, hkv)};`;
  };
  return [decl(K_ROWS, 'kp'), decl(V_ROWS, 'vp')];
}

/**
 * SEL_VW channels d .. d + SEL_VW − 1 of key j through `h` into `name`: the declaration, and the
 * f32 value of element x. A float cache loads one vector (as before); a quantized one dequantizes.
 */
export function selectKvVectorLoad(
  f: TensorFormat,
  t: KvTensor,
  h: string,
  name: string,
): { decl: string; at: (x: string) => string } {
  if (selDequantizes(f))
    return { decl: `float ${name}[SEL_VW]; ${h}.load(j, d, ${name});`, at: (x) => `${name}[${x}]` };
  return {
    decl: `const VecT<SEL_VW> ${name} = ${selectKvVector(t, h)};`,
    at: (x) => `to_f32(${name}.v[${x}])`,
  };
}
