// The K/V loads of the coop decode split pass (decode-coop-split.ts): per step, each lane group
// loads K and V of DC_CHUNK keys (keys k0 + ci·DC_GROUPS + grp) into registers, a lane its own
// columns (lane, lane + DC_LANES, … as vec4s; or, for a cache with wide code loads, the run
// lane·DC_KC .. through <k|v>_dequant_run, dequant-run.ts), zero past the step's end; with
// DC_PREFETCH the next step's K and V are loaded before this step computes.
import { hasQuantizedKv, type TensorFormats } from '../../ir/formats.js';
import { kvRowAt } from './kv-load.js';
import { dequantRunFn, dequantVec4 } from './dequant-calls.js';
import type { WideCodes, WidePlan } from './dequant-run-plan.js';
import { pad } from './entry-lines.js';

/**
 * K and V of this lane's columns into `kk`, `vv` for the step of keys from `first` (keys
 * first + ci·DC_GROUPS + grp; zero at or past `end`).
 */
export const loadStep = (
  dt: string,
  formats: TensorFormats,
  first: string,
  end: string,
  kk: string,
  vv: string,
  wide?: WidePlan,
): string[] => {
  const f32 = (x: string): string => (dt === 'f16' ? `vec4<f32>(${x})` : x);
  // A quantized cache: 4 channels through <k|v>_dequant (dequant.ts) instead of a vec4 view.
  const load = (w: 'k' | 'v'): string =>
    formats[w].kind === 'quant'
      ? dequantVec4(w, 'key', 'kj', 'col', 'kv_row0 / Nk', 'Nk')
      : f32(`${w}_buf4[(${kvRowAt(w, 'kj')} >> 2u) + col]`);
  const columns = (w: 'k' | 'v', regs: string): string[] => {
    const [cols, d4] = w === 'k' ? ['DC_KC', 'DC_D4'] : ['DC_VC', 'DC_DV4'];
    const run = wide?.[w];
    if (run) return wideRun(run, cols, end, regs);
    return [
      `  for (var c = 0u; c < ${cols}; c++) {`,
      '    let col = lane + c * DC_LANES;',
      '    var x = vec4<f32>(0.0f);',
      `    if (kj < ${end} && col < ${d4}) { x = ${load(w)}; }`,
      `    ${regs}[ci][c] = x;`,
      '  }',
    ];
  };
  return [
    'for (var ci = 0u; ci < DC_CHUNK; ci++) {',
    `  let kj = ${first} + ci * DC_GROUPS + grp;`,
    ...(hasQuantizedKv(formats) ? ['  let key = kv_row0 + kj;'] : []),
    ...columns('k', kk),
    ...columns('v', vv),
    '}',
  ];
};

/** A wide cache's run of this lane (columns lane·cols ..) into regs[ci], zero past `end`. */
const wideRun = (w: WideCodes, cols: string, end: string, regs: string): string[] => [
  `  var ${w.which}_run: array<vec4<f32>, ${cols}>;`,
  `  if (kj < ${end}) { ${w.which}_run = ${dequantRunFn(w.which)}(key, kj, lane * ${cols}, kv_row0 / Nk, Nk); }`,
  `  ${regs}[ci] = ${w.which}_run;`,
];

export const kvRegs = (kk: string, vv: string): string[] => [
  `var ${kk}: array<array<vec4<f32>, DC_KC>, DC_CHUNK>;`,
  `var ${vv}: array<array<vec4<f32>, DC_VC>, DC_CHUNK>;`,
];

/** The step's K and V: taken from the prefetch registers (then the next step's are loaded), or loaded now. */
export const stepKv = (dt: string, formats: TensorFormats, wide?: WidePlan): string[] => [
  ...kvRegs('kk', 'vv'),
  'if (DC_PREFETCH) {',
  '  kk = kk_next;',
  '  vv = vv_next;',
  '  let k0n = k0 + DC_STEP;',
  '  if (k0n < k_last) {',
  ...pad(loadStep(dt, formats, 'k0n', 'min(k0n + DC_STEP, k_stop)', 'kk_next', 'vv_next', wide), 4),
  '  }',
  '}',
];
