// The attention kernels the WGSL benchmark runs: source (as in stdlib/, inlined so the benchmark
// needs no checkout), the reference's mask, runtime tensors and params, and the number of allowed
// (query, key) pairs at Nq = Nk = N (FLOPs are 4·H·D per allowed pair, as FlashAttention counts).
const WINDOW = 1024;

/** Document ids: lengths cycle through 1, 2 and 3 quarters of N/8 (at least 4 keys). */
function documents(N) {
  const ids = new Int32Array(N);
  const base = Math.max(4, Math.floor(N / 32));
  let doc = 0;
  for (let i = 0; i < N;) {
    const len = base * (1 + (doc % 3));
    for (let j = 0; j < len && i < N; j++) ids[i++] = doc;
    doc++;
  }
  return ids;
}

export const kernels = [
  {
    name: 'full',
    source: 'attention full() {\n  mask true\n}\n',
    mask: () => () => true,
    tensors: () => ({}),
    params: () => ({}),
    pairs: (N) => N * N,
  },
  {
    name: 'causal',
    source: 'attention causal() {\n  mask causal\n}\n',
    mask: () => (_b, _h, q, k) => q >= k,
    tensors: () => ({}),
    params: () => ({}),
    pairs: (N) => (N * (N + 1)) / 2,
  },
  {
    name: 'sliding_window',
    source: `attention sliding_window(window: int = ${WINDOW}) {\n  mask causal && q - k < window\n}\n`,
    mask: (_t, p) => (_b, _h, q, k) => q >= k && q - k < p.window,
    tensors: () => ({}),
    // Small shapes keep the mask partial: a window of a quarter of N.
    params: (N) => ({ window: Math.min(WINDOW, Math.max(4, N >> 2)) }),
    pairs: (N, _t, p) => {
      let n = 0;
      for (let i = 0; i < N; i++) n += Math.min(i + 1, p.window);
      return n;
    },
  },
  {
    name: 'document',
    source: 'attention document(doc: i32[kv]) {\n  mask doc[q] == doc[k] && causal\n}\n',
    mask: (t) => (_b, _h, q, k) => t.doc[q] === t.doc[k] && q >= k,
    tensors: (N) => ({ doc: documents(N) }),
    params: () => ({}),
    pairs: (N, t) => {
      let n = 0;
      let start = 0;
      for (let i = 0; i < N; i++) {
        if (i > 0 && t.doc[i] !== t.doc[i - 1]) start = i;
        n += i - start + 1;
      }
      return n;
    },
  },
];
