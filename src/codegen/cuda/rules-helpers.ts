// The `__device__` helpers that CUDA C rules (rules.ts) render calls to, where an op's C meaning
// differs from attnc semantics: wrapping int arithmetic, floor division and modulo, saturating
// casts, the hardware tanh, bounds-checked tensor loads and tile-summary ranges. `helperSource`
// emits only the helpers that rendering used (CudaContext.used).
import type { TensorSlot } from '../../ir/kernel.js';
import { rangeMaxBlocks } from '../common.js';
import { ARGS, cudaType, dimLabel, dimText, type CudaContext } from './rules.js';

const D = '__device__ __forceinline__';
const fixedHelpers: Readonly<Record<string, string>> = {
  // Two's-complement wrapping, like every other attnc backend (and unlike signed C arithmetic).
  add_i: `${D} int add_i(int a, int b) { return (int)((unsigned)a + (unsigned)b); }`,
  sub_i: `${D} int sub_i(int a, int b) { return (int)((unsigned)a - (unsigned)b); }`,
  mul_i: `${D} int mul_i(int a, int b) { return (int)((unsigned)a * (unsigned)b); }`,
  neg_i: `${D} int neg_i(int a) { return (int)(0u - (unsigned)a); }`,
  abs_i: `${D} int abs_i(int a) { return a < 0 ? (int)(0u - (unsigned)a) : a; }`,
  // Floor division with x / 0 = 0 (C's '/' truncates, and traps or is undefined on 0 and INT_MIN / -1).
  floordiv_i: `${D} int floordiv_i(int a, int b) {
  if (b == 0) return 0;
  if (b == -1) return (int)(0u - (unsigned)a);
  const int t = a / b;
  return (t * b != a && ((a < 0) != (b < 0))) ? t - 1 : t;
}`,
  // Floor modulo (the result has the divisor's sign) with x % 0 = 0.
  floormod_i: `${D} int floormod_i(int a, int b) {
  if (b == 0 || b == -1) return 0;
  const int r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}`,
  // __fmul_rn: uncontracted, as the reference rounds b * floor(a / b) before subtracting.
  floormod_f: `${D} float floormod_f(float a, float b) { return a - __fmul_rn(b, floorf(a / b)); }`,
  // min and max pass a NaN operand on, as the reference and the constant folder do (Math.min):
  // fminf/fmaxf drop it (IEEE minNum), which kept a row the score's NaN must poison.
  fmin_nan: `${D} float fmin_nan(float a, float b) { return (a != a || b != b) ? a + b : fminf(a, b); }`,
  fmax_nan: `${D} float fmax_nan(float a, float b) { return (a != a || b != b) ? a + b : fmaxf(a, b); }`,
  // Truncation toward zero, saturating at the int range, NaN -> 0 (cvt.rzi.s32.f32 does exactly
  // this; a plain (int) cast of an out-of-range float is undefined behaviour in C++).
  f2i: `${D} int f2i(float x) { return __float2int_rz(x); }`,
  // The SFU's tanh (sm_75+), one instruction; PTX ISA: max relative error 2^-11 over the whole
  // range, tanh(±inf) = ±1, NaN stays NaN, subnormals pass through.
  tanh_approx: `${D} float tanh_approx(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}`,
};

function loadHelper(t: TensorSlot, field: (key: string) => string): string {
  const ty = cudaType[t.dtype];
  const params = t.dims.map((_, i) => `int i${i}`).join(', ');
  const dims = t.dims.map((d, i) => `  const int d${i} = ${dimText(d, field)};`);
  const oob = t.dims.map((_, i) => `i${i} < 0 || i${i} >= d${i}`).join(' || ');
  let idx = '(long long)i0';
  for (let i = 1; i < t.dims.length; i++) idx = `(${idx}) * d${i} + i${i}`;
  return [
    `// ${t.name}: ${t.dtype}[${t.dims.map(dimLabel).join(', ')}], row-major; indices out of range read 0.`,
    `${D} ${ty} load_${t.name}(const Args& ${ARGS}, ${params}) {`,
    ...dims,
    `  if (${oob}) return 0;`,
    `  return __ldg(${ARGS}.${field(`tensor:${t.name}`)} + ${idx});`,
    `}`,
  ].join('\n');
}

function rangeHelper(t: TensorSlot, block: number, field: (key: string) => string): string {
  const ty = cudaType[t.dtype];
  const [lowest, highest] = t.dtype === 'i32' ? ['INT_MIN', 'INT_MAX'] : ['-INFINITY', 'INFINITY'];
  const s = `${ARGS}.${field(`summary:${t.name}`)}`;
  const fn = (which: 'min' | 'max'): string[] => {
    const [empty, wide, pick] =
      which === 'min'
        ? [highest, lowest, t.dtype === 'i32' ? 'min' : 'fminf']
        : [lowest, highest, t.dtype === 'i32' ? 'max' : 'fmaxf'];
    return [
      `${D} ${ty} range_${which}_${t.name}(const Args& ${ARGS}, int lo, int hi) {`,
      `  const int len = ${dimText(t.dims[0]!, field)};`,
      `  if (hi < lo) return ${empty};`,
      `  ${ty} r = (lo < 0 || hi >= len) ? (${ty})0 : ${empty};`,
      `  const int first = max(lo, 0), last = min(hi, len - 1);`,
      `  if (first > last) return r;`,
      `  const int b0 = first / ${block}, b1 = last / ${block};`,
      `  if (b1 - b0 >= ${rangeMaxBlocks}) return ${wide};`,
      `  for (int blk = b0; blk <= b1; ++blk) r = ${pick}(r, __ldg(${s} + 2 * blk + ${which === 'min' ? 0 : 1}));`,
      `  return r;`,
      `}`,
    ];
  };
  return [
    `// min / max of ${t.name}[lo..hi] from its per-block summary ([min, max] pairs, ${block} positions a`,
    `// block). Whole blocks make the result possibly wider than exact: sound for tile classification.`,
    `// Positions outside [0, len) read 0; spans over ${rangeMaxBlocks} blocks give the full ${ty} range.`,
    ...fn('min'),
    ...fn('max'),
  ].join('\n');
}

/** Source of every helper in `cx.used`, in a stable order (inside the kernel's namespace). */
export function helperSource(cx: CudaContext): string {
  const out: string[] = [];
  for (const [name, src] of Object.entries(fixedHelpers)) if (cx.used.has(name)) out.push(src);
  for (const t of [...cx.tensors.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (cx.used.has(`load:${t.name}`)) out.push(loadHelper(t, cx.field));
    if (cx.used.has(`range:${t.name}`)) {
      if (t.dims.length !== 1)
        throw new Error(`CUDA: tile summaries need a 1-D tensor, "${t.name}" has ${t.dims.length} dims`);
      out.push(rangeHelper(t, cx.summaryBlock, cx.field));
    }
  }
  return out.join('\n\n');
}
