// The host side of the CUDA `quantize` kernels (quantize.ts): the args struct and launcher
// declared in the artifact's header, and the launcher that checks the arguments and runs the
// passes in order on one stream (normalizer, scales, codes, recent window).
import type { AttentionKernel } from '../../ir/kernel.js';
import {
  quantizeDevice,
  quantizeFields,
  quantizeNamespace,
  quantizeStruct,
  type QuantizeSpec,
} from './quantize.js';
import { pagedChecks } from './quantize-paged.js';

/** One spec per quantized cache of `k` (none for a kernel without `store`). */
export function quantizeSpecs(k: AttentionKernel): QuantizeSpec[] {
  return (['k', 'v'] as const).flatMap((cache) => {
    const f = k.formats[cache];
    if (f.kind !== 'quant') return [];
    const dim = cache === 'k' ? k.schedule.headDim : k.schedule.valueDim;
    const paged = k.formats.paged;
    return [{ kernel: k.name, cache, format: f.format, dim, input: f.dtype, ...(paged ? { paged } : {}) }];
  });
}

export const quantizeLaunchName = (s: QuantizeSpec): string => `attnc_${s.kernel}_quantize_${s.cache}`;
export const quantizeInitName = (s: QuantizeSpec): string => `attnc_${s.kernel}_quantize_${s.cache}_init`;

/** Header lines: the args struct and the launcher, for each quantized cache. */
export function quantizeHeaderLines(specs: readonly QuantizeSpec[]): string[] {
  return specs.flatMap((s) => [
    `/* Fills the quantized ${s.cache === 'k' ? 'key' : 'value'} cache from ${s.input} rows (docs/LANGUAGE.md,`,
    ' * "Quantization"; which rows and scale groups a range rewrites: "Quantizing a range of rows").',
    ' * Device pointers; the launcher sets its message in last_error on failure. */',
    `typedef struct ${quantizeStruct(s)} {`,
    ...quantizeFields(s).map((l) => `  ${l}`),
    `} ${quantizeStruct(s)};`,
    `int ${quantizeLaunchName(s)}(const ${quantizeStruct(s)}* args, cudaStream_t stream);`,
    '',
  ]);
}

/** Inserts the quantize declarations before the header's closing `extern "C"` block. */
export function withQuantizeHeader(header: string, specs: readonly QuantizeSpec[]): string {
  if (specs.length === 0) return header;
  const at = header.lastIndexOf('#ifdef __cplusplus');
  return header.slice(0, at) + quantizeHeaderLines(specs).join('\n') + '\n' + header.slice(at);
}

/** Device code (a namespace per cache) and the extern "C" launcher, for the .cu. */
export function quantizeSource(specs: readonly QuantizeSpec[], attentionNs: string): string {
  return specs.map((s) => [quantizeDevice(s), '', launcher(s, attentionNs)].join('\n')).join('\n\n');
}

function launcher(s: QuantizeSpec, attentionNs: string): string {
  const f = s.format;
  const ns = quantizeNamespace(s);
  const salient = f.kind === 'int' ? f.salient : undefined;
  const need = [
    'x',
    ...(s.paged ? ['block_table'] : []),
    ...(salient ? ['salient'] : []),
    'codes',
    ...(salient ? ['codes_hi'] : []),
    ...(f.scale ? ['scale'] : []),
    ...(f.kind === 'int' && f.zero ? ['zero'] : []),
    ...(f.norm ? ['norm'] : []),
    ...(f.recent ? ['recent'] : []),
  ];
  const pass = (name: string, what: string) => [
    `  ${ns}::${name}<<<blocks, 256, 0, stream>>>(a);`,
    `  if ((e = cudaGetLastError()) != cudaSuccess) return ${attentionNs}::fail(ATTNC_ERR_CUDA, "quantize ${s.cache} (${what}): %s", cudaGetErrorString(e));`,
  ];
  return [
    `extern "C" int ${quantizeLaunchName(s)}(const ${quantizeStruct(s)}* args, cudaStream_t stream) {`,
    `  ${attentionNs}::last_error[0] = '\\0';`,
    `  if (args == NULL) return ${attentionNs}::fail(ATTNC_ERR_ARGS, "quantize ${s.cache}: args is NULL");`,
    `  const ${quantizeStruct(s)}& a = *args;`,
    `  if (a.B < 0 || a.Hkv < 0 || a.Nk < 0) return ${attentionNs}::fail(ATTNC_ERR_ARGS, "quantize ${s.cache}: negative size B=%d Hkv=%d Nk=%d", a.B, a.Hkv, a.Nk);`,
    `  if (a.start < 0 || a.n < 0 || a.start > a.Nk - a.n) return ${attentionNs}::fail(ATTNC_ERR_ARGS, "quantize ${s.cache}: rows [start=%d, start + n=%d) are not inside the cache's Nk=%d tokens", a.start, a.start + a.n, a.Nk);`,
    ...(s.paged ? pagedChecks(s.cache, s.paged.pageSize, attentionNs) : []),
    ...(salient?.by === 'index'
      ? [
          `  if (a.salient_n < 0) return ${attentionNs}::fail(ATTNC_ERR_ARGS, "quantize ${s.cache}: salient_n=%d is negative", a.salient_n);`,
        ]
      : []),
    '  if ((long)a.B * a.Hkv == 0) return ATTNC_OK;',
    // Tensors sized by Nk may be NULL when Nk = 0 (the normalizer and recent window may not).
    ...need.map(
      (p) =>
        `  if (${p === 'norm' || p === 'recent' ? '' : 'a.Nk > 0 && '}a.${p} == NULL) return ${attentionNs}::fail(ATTNC_ERR_ARGS, "quantize ${s.cache}: ${p} is NULL");`,
    ),
    '  // Grid-stride passes: enough blocks to fill the device, each pass over its own index space.',
    '  const unsigned blocks = (unsigned)((long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 < 65535 ? (long)a.B * a.Hkv * a.Nk * 4 / 256 + 1 : 65535);',
    '  cudaError_t e;',
    ...(f.norm ? pass('norm_pass', 'normalizer') : []),
    ...(f.scale ? pass('scale_pass', 'scales') : []),
    ...pass('code_pass', 'codes'),
    ...(f.recent ? pass('recent_pass', 'recent window') : []),
    '  return ATTNC_OK;',
    '}',
  ].join('\n');
}
