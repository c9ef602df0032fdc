// Host side of CUDA decode mode (decode.ts): whether a launch takes it, and the launch itself
// (split sizes, the stream-ordered scratch pool, split and merge kernels). Emitted after
// DEVICE_END, inside the artifact's `namespace ns::dec`.

/** Decode mode is taken for at most this many query rows, over at least DECODE_MIN_NK keys. */
export const DECODE_MAX_NQ = 16;
export const DECODE_MIN_NK = 1024;

// Per device, once: -1 when the tensor-core kernel is not taken (compute capability below 8.0,
// ATTNC_DECODE_MMA=0 or a -DATTNC_DEC_MMA=0 build), -2 when its shared memory does not fit (fail()
// said why; not cached, so every launch reports it), else how many of its blocks an SM holds.
// `on`: the build switch (KIVI kernels: ATTNC_DEC_MMA && ATTNC_DEC_MMA_KIVI, decode-mma-kivi.ts).
const mmaResident = (on: string): string[] => [
  'static int mma_resident(int dev) {',
  '  static int state[64] = {};',
  '  if (state[dev] != 0) return state[dev];',
  '  const char* e = getenv("ATTNC_DECODE_MMA");',
  '  int major = 0;',
  '  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) major = 0;',
  `  if (!${on} || major < 8 || (e != NULL && e[0] == '0')) return state[dev] = -1;`,
  '  int optin = 0;',
  '  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) optin = 0;',
  '  if (optin > 0 && MMA_SMEM > (size_t)optin) {',
  '    fail(ATTNC_ERR_ARGS, "decode: ATTNC_DEC_MMA_STAGES (%d) x ATTNC_DEC_MMA_WARPS (%d) x ATTNC_DEC_MMA_KEYS (%d) keys need %zu bytes of shared memory per block, above the %d this device allows: rebuild with fewer", MMA_STAGES, MMA_WARPS, MMA_KEYS, MMA_SMEM, optin);',
  '    return -2;',
  '  }',
  '  if (cudaFuncSetAttribute(mma_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MMA_SMEM) != cudaSuccess)',
  '    return state[dev] = -1; // the SIMT kernel then',
  '  int n = 0;',
  '  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, mma_split_kernel, MMA_THREADS, MMA_SMEM) != cudaSuccess || n < 1) n = 1;',
  '  return state[dev] = n;',
  '}',
  '',
];

/** `f(key)`: the Args field of a tensor; `ns`/`decodeNs`: the namespaces the device part opened. */
export function decodeHostSource(
  f: (key: string) => string,
  ns: string,
  decodeNs: string,
  kvAlign?: { readonly k: string; readonly v: string; readonly more: readonly string[] },
  mma = false,
  mmaSwitch = 'ATTNC_DEC_MMA',
): string[] {
  return [
    `namespace ${ns} {`,
    `namespace ${decodeNs} {`,
    ...wantedSource(f, kvAlign),
    '',
    ...SPLIT_COST,
    '',
    ...(mma ? mmaResident(mmaSwitch) : []),
    ...launchSource(mma),
    `} // namespace ${decodeNs}`,
    `} // namespace ${ns}`,
  ];
}

/** `wanted(a)`: whether a launch takes decode mode (few query rows over many keys, aligned tensors). */
function wantedSource(
  f: (key: string) => string,
  kvAlign: { readonly k: string; readonly v: string; readonly more: readonly string[] } | undefined,
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
        '  if (!kv_strides_ok(a, VW)) return false; // K/V strides (kv-rows.ts) off its vector width',
      ];
  return [
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
  ];
}

// Emitted once: the launch's split count minimises it (splitSizing).
const SPLIT_COST = [
  '// Cost of w splits for `base` (kv head, batch, row tile) blocks: blocks on the busiest SM per',
  '// split, between exact shares (a partial wave as fast as its blocks) and whole waves.',
  'static double split_cost(long long base, long long w, int sms, int resident) {',
  '  const long long per_sm = (base * w + sms - 1) / sms;',
  '  const long long waves = (per_sm + resident - 1) / resident;',
  '  return (double)(per_sm + waves * resident) / (2.0 * (double)w);',
  '}',
];

/**
 * `launch(a, stream)`: the per-device setup, the split count, the scratch buffer, then the split
 * and merge kernels; with `mma`, the tensor-core split kernel where the device takes it.
 */
function launchSource(mma: boolean): string[] {
  return [
    'static int launch(const Args& a, cudaStream_t stream) {',
    ...DEVICE_SETUP,
    ...(mma
      ? [
          '  const int mma_blocks = mma_resident(dev);',
          '  if (mma_blocks == -2) return ATTNC_ERR_ARGS; // fail() said why',
          '  const bool use_mma = mma_blocks > 0;',
        ]
      : []),
    ...splitSizing(mma),
    ...SCRATCH,
    ...kernelLaunches(mma),
    '}',
  ];
}

/**
 * How many splits each (kv head, batch, row group)'s keys are cut into: enough blocks to keep every
 * SM busy, none too short to fill its pipeline. Declares split_keys, n_splits and row_tiles.
 */
function splitSizing(mma: boolean): string[] {
  // The tensor-core kernel's value where it is compiled in (decode-mma.ts), else the SIMT one's.
  const pick = (m: string, simt: string): string => (mma ? `(use_mma ? ${m} : ${simt})` : simt);
  return [
    '  // The tensor-core kernel (decode-mma.ts) takes MMA_ROWS packed rows a block, the SIMT one MT.',
    `  const int sms = sm_count[dev], resident = ${pick('mma_blocks', 'resident_blocks[dev]')};`,
    `  const int tile_keys = ${pick('MMA_TILE', 'TILE')}, stages = ${pick('MMA_STAGES', 'STAGES')};`,
    '  const int packed = (a.H / a.Hkv) * a.Nq, row_tiles = (packed + MT - 1) / MT;',
    `  const int rows = ${pick('MMA_ROWS', 'MT')}, row_groups = (packed + rows - 1) / rows;`,
    '  const long long base = (long long)a.Hkv * a.B * row_groups;',
    '  const int tiles = (a.Nk + tile_keys - 1) / tile_keys;',
    '  // Splits: enough blocks for every SM to hold `resident` of them, then, within 1/2x..4x of',
    '  // that, the count that spreads blocks most evenly over the SMs (a larger count only when 3%',
    '  // better); each split at least 2 * STAGES tiles (its pipeline fills) and a whole number of tiles.',
    '  const long long most = tiles / (2 * stages) > 1 ? tiles / (2 * stages) : 1;',
    '  const long long fill = ((long long)resident * sms + base - 1) / base;',
    '  long long want = fill > most ? most : fill, best = want > 1 ? want / 2 : 1;',
    '  double best_cost = split_cost(base, best, sms, resident);',
    '  for (long long w = best + 1; w <= 4 * want && w <= most; ++w) {',
    '    const double c = split_cost(base, w, sms, resident);',
    '    if (c < 0.97 * best_cost) best = w, best_cost = c;',
    '  }',
    "  if (ATTNC_DEC_SPLITS > 0) best = ATTNC_DEC_SPLITS < tiles ? ATTNC_DEC_SPLITS : tiles; // a sweep's fixed count",
    '  const int split_keys = (int)((tiles + best - 1) / best) * tile_keys;',
    '  const int n_splits = (a.Nk + split_keys - 1) / split_keys;',
    '  if ((long long)n_splits * row_tiles > 2147483647LL || a.Hkv > 65535)',
    '    return fail(ATTNC_ERR_ARGS, "decode grid too large (splits %d x row tiles %d)", n_splits, row_tiles);',
  ];
}

// Per device, once: the SM count and how many split blocks an SM holds (for splitSizing), after
// checking the decode stream's shared memory fits the device (a clear error, not a failed launch).
const DEVICE_SETUP = [
  '  int dev = 0;',
  '  if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;',
  '  if (dev < 0 || dev >= 64) return fail(ATTNC_ERR_CUDA, "decode: device %d beyond 64", dev);',
  "  // Per device, once: SMs, the stages' shared memory, and how many split blocks an SM holds.",
  '  static int sm_count[64] = {}, resident_blocks[64] = {};',
  '  if (resident_blocks[dev] == 0) {',
  '    if (cudaDeviceGetAttribute(&sm_count[dev], cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) sm_count[dev] = 132;',
  // The stream's dynamic buffers plus the block's static arrays must fit what a block may opt in
  // to; the dynamic share is always requested, since the static part also counts toward the
  // default 48 KiB (a 48 KiB stream alone failed to launch, "invalid argument").
  '    int optin = 0;',
  "    // A limit that cannot be read is not checked: the request below then reports the device's error.",
  '    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) optin = 0;',
  '    cudaFuncAttributes fa = {};',
  '    const size_t fixed = cudaFuncGetAttributes(&fa, split_kernel) == cudaSuccess ? fa.sharedSizeBytes : SPLIT_STATIC_SMEM;',
  '    if (optin > 0 && SPLIT_SMEM + fixed > (size_t)optin)',
  '      return fail(ATTNC_ERR_ARGS, "decode: ATTNC_DEC_STAGES (%d) x ATTNC_DEC_GROUPS (%d) x ATTNC_DEC_KPG (%d) keys of the decode stream need %zu bytes of shared memory per block (+ %zu static), above the %d this device allows: rebuild with fewer stages or keys per tile", STAGES, GROUPS, KPG, SPLIT_SMEM, fixed, optin);',
  '    const cudaError_t se = cudaFuncSetAttribute(split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SPLIT_SMEM);',
  '    if (se != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode: cannot reserve %zu bytes of shared memory: %s", SPLIT_SMEM, cudaGetErrorString(se));',
  '    int n = 0;',
  '    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, split_kernel, THREADS, SPLIT_SMEM) != cudaSuccess || n < 1) n = 1;',
  '    resident_blocks[dev] = n;',
  '  }',
];

// The split kernel's partial outputs: from a stream-ordered pool of our own. Declares `part`.
const SCRATCH = [
  '  const size_t bytes = (size_t)a.Hkv * a.B * row_tiles * n_splits * MT * (DV + 2) * sizeof(float);',
  '  // Scratch comes from a pool of our own (never the device default pool, which belongs to the',
  '  // host application): stream-ordered, and kept between launches up to 64 MiB.',
  '  static cudaMemPool_t pools[64] = {}; // one per device of the process',
  '  cudaError_t pe = cudaSuccess;',
  '  if (pools[dev] == NULL) {',
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
];

/** The split kernel (tensor-core one where compiled in and taken), the merge, then the scratch's free. */
function kernelLaunches(mma: boolean): string[] {
  return [
    ...(mma
      ? [
          '  if (use_mma)',
          '    mma_split_kernel<<<dim3(n_splits * row_groups, a.Hkv, a.B), MMA_THREADS, MMA_SMEM, stream>>>(a, part, split_keys, n_splits, row_tiles);',
          '  else',
        ]
      : []),
    '  split_kernel<<<dim3(n_splits * row_tiles, a.Hkv, a.B), THREADS, SPLIT_SMEM, stream>>>(a, part, split_keys, n_splits, row_tiles);',
    '  e = cudaGetLastError();',
    '  if (e == cudaSuccess) {',
    '    merge_kernel<<<dim3(a.Nq, a.H, a.B), MERGE_THREADS, n_splits * sizeof(float), stream>>>(a, part, n_splits, row_tiles);',
    '    e = cudaGetLastError();',
    '  }',
    '  const cudaError_t f = cudaFreeAsync(part, stream);',
    '  if (e != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode attention: %s", cudaGetErrorString(e));',
    '  if (f != cudaSuccess) return fail(ATTNC_ERR_CUDA, "decode scratch free: %s", cudaGetErrorString(f));',
    '  return ATTNC_OK;',
  ];
}
