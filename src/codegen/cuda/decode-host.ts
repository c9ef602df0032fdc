// Host side of CUDA decode mode (decode.ts): whether a launch takes it, and the launch itself
// (split sizes, the stream-ordered scratch pool, split and merge kernels). Emitted after
// DEVICE_END, inside the artifact's `namespace ns::dec`.

/** Decode mode is taken for at most this many query rows, over at least DECODE_MIN_NK keys. */
export const DECODE_MAX_NQ = 16;
export const DECODE_MIN_NK = 1024;

/** `f(key)`: the Args field of a tensor; `ns`/`decodeNs`: the namespaces the device part opened. */
export function decodeHostSource(
  f: (key: string) => string,
  ns: string,
  decodeNs: string,
  kvAlign?: { readonly k: string; readonly v: string; readonly more: readonly string[] },
): string[] {
  // Float caches load VW-element vectors; quantized ones their chunks' code words (decode-quant.ts).
  const pointers = kvAlign
    ? [
        `  if (!ptr_ok(${f('q')}, VW * sizeof(T)) || !ptr_ok(${f('k')}, ${kvAlign.k}) || !ptr_ok(${f('v')}, ${kvAlign.v})) return false;`,
        ...kvAlign.more.map((c) => `  if (!${c}) return false;`),
      ]
    : [
        `  const size_t align = VW * sizeof(T);`,
        `  if (!ptr_ok(${f('q')}, align) || !ptr_ok(${f('k')}, align) || !ptr_ok(${f('v')}, align)) return false;`,
      ];
  return [
    `namespace ${ns} {`,
    `namespace ${decodeNs} {`,
    '// Host: whether this launch takes decode mode (env ATTNC_DECODE=0 never, =1 always).',
    'static bool wanted(const Args& a) {',
    '  static const int env = [] {',
    '    const char* e = getenv("ATTNC_DECODE");',
    "    return e == NULL ? -1 : (e[0] == '0' ? 0 : 1);",
    '  }();',
    '  if (env == 0 || a.Nq < 1 || a.Nk < 1) return false;',
    "  // The decode kernels pack a KV head's (H / Hkv) · Nq query rows in an int: past that, prefill.",
    '  if ((long long)(a.H / a.Hkv) * a.Nq > 2147483647LL - MT) return false;',
    ...pointers,
    `  return env == 1 || (a.Nq <= ${DECODE_MAX_NQ} && a.Nk >= ${DECODE_MIN_NK});`,
    '}',
    '',
    'static int launch(const Args& a, cudaStream_t stream) {',
    '  static int sms = 0;',
    '  if (sms == 0) {',
    '    int dev = 0;',
    '    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) sms = 132;',
    '  }',
    '  const int packed = (a.H / a.Hkv) * a.Nq, row_tiles = (packed + MT - 1) / MT;',
    '  const long long base = (long long)a.Hkv * a.B * row_tiles;',
    '  const int tiles = (a.Nk + TILE - 1) / TILE;',
    '  // About eight blocks per SM in all; each split a whole number of tiles.',
    '  long long want = (8LL * sms + base - 1) / base;',
    '  want = want < 1 ? 1 : (want > tiles ? tiles : want);',
    '  const int split_keys = (int)((tiles + want - 1) / want) * TILE;',
    '  const int n_splits = (a.Nk + split_keys - 1) / split_keys;',
    '  if ((long long)n_splits * row_tiles > 2147483647LL || a.Hkv > 65535)',
    '    return fail(ATTNC_ERR_ARGS, "decode grid too large (splits %d x row tiles %d)", n_splits, row_tiles);',
    '  const size_t bytes = (size_t)base * n_splits * MT * (DV + 2) * sizeof(float);',
    '  // Scratch comes from a pool of our own (never the device default pool, which belongs to the',
    '  // host application): stream-ordered, and kept between launches up to 64 MiB.',
    '  static cudaMemPool_t pools[64] = {}; // one per device of the process',
    '  int dev = 0;',
    '  cudaError_t pe = cudaGetDevice(&dev);',
    '  if (pe == cudaSuccess && (dev < 0 || dev >= 64)) return fail(ATTNC_ERR_CUDA, "decode: device %d beyond 64", dev);',
    '  if (pe == cudaSuccess && pools[dev] == NULL) {',
    '    cudaMemPoolProps props = {};',
    '    props.allocType = cudaMemAllocationTypePinned;',
    '    props.location.type = cudaMemLocationTypeDevice;',
    '    props.location.id = dev;',
    '    pe = cudaMemPoolCreate(&pools[dev], &props);',
    '    if (pe != cudaSuccess) pools[dev] = NULL;',
    '    uint64_t keep = 64ull << 20;',
    '    if (pe == cudaSuccess) pe = cudaMemPoolSetAttribute(pools[dev], cudaMemPoolAttrReleaseThreshold, &keep);',
    '  }',
    '  if (pe != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch pool: %s", cudaGetErrorString(pe));',
    '  cudaMemPool_t pool = pools[dev];',
    '  float* part = NULL;',
    '  cudaError_t e = cudaMallocFromPoolAsync(reinterpret_cast<void**>(&part), bytes, pool, stream);',
    '  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch of %zu bytes: %s", bytes, cudaGetErrorString(e));',
    '  split_kernel<<<dim3(n_splits * row_tiles, a.Hkv, a.B), 128, 0, stream>>>(a, part, split_keys, n_splits, row_tiles);',
    '  e = cudaGetLastError();',
    '  if (e == cudaSuccess) {',
    '    merge_kernel<<<dim3(a.Nq, a.H, a.B), 128, n_splits * sizeof(float), stream>>>(a, part, n_splits, row_tiles);',
    '    e = cudaGetLastError();',
    '  }',
    '  const cudaError_t f = cudaFreeAsync(part, stream);',
    '  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode attention: %s", cudaGetErrorString(e));',
    '  if (f != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch free: %s", cudaGetErrorString(f));',
    '  return ATTNC_OK;',
    '}',
    `} // namespace ${decodeNs}`,
    `} // namespace ${ns}`,
  ];
}
