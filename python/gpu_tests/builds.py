"""Every kernel build the GPU tests use, so prepare.py can compile them where Node is (the GPU
machine has none) into the artifact cache the tests read. No torch here."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ARTIFACTS = os.path.join(HERE, '.artifacts')
CACHE = os.path.join(ARTIFACTS, 'cache')  # $ATTNC_CACHE of the test run
SOFTCAP_F32_DIR = os.path.join(ARTIFACTS, 'softcap_f32')  # a CLI --out directory, for load_artifact

WINDOW_SOURCE = """
attention local_window(window: int = 48) {
  mask causal && q - k < window
}
"""

# int8 K/V with a per-token f32 scale (test_quant_prefill.py), staged and fused prefill.
INT8_SOURCE = """
attention qi8() {
  store kv int8 scale f32 per token
  mask causal
}
"""

# The same caches in pools of pages (test_quant_paged.py): int8 in pages of 16 rows, and KIVI int2
# (stdlib/kivi.attn's formats) in pages of 64 rows, two rows of K's per-channel scales a page.
PAGED_INT8_SOURCE = """
attention pqi8() {
  store kv int8 scale f32 per token
  cache paged 16
  mask causal
}
"""
PAGED_KIVI_SOURCE = """
attention pkivi() {
  store k int2 scale f16 per channel group 32 zero f16 recent 128 f16
  store v int2 scale f16 per token group 32 zero f16 recent 128 f16
  cache paged 64
  mask causal
}
"""

# (path or source, BuildOptions keywords): load(..., dtype, head_dim) with both fixed compiles
# exactly that; dtype=None or head_dim=None compiles an interface build (bf16, 64) at load and
# one build per call dtype and head dims.
BUILDS = [
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=64, lse=False)),
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=128)),
    ('stdlib/softcap.attn', dict(dtype='f16', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='f16', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='f32', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=128)),
    ('stdlib/sink_calibration.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/nsa_select.attn', dict(dtype='bf16', head_dim=64)),
    (WINDOW_SOURCE, dict(dtype='f16', head_dim=64)),
    ('stdlib/paged-decode.attn', dict(dtype='bf16', head_dim=64)),
    (INT8_SOURCE, dict(dtype='bf16', head_dim=128, quant_prefill='staged')),
    (INT8_SOURCE, dict(dtype='bf16', head_dim=128, quant_prefill='fused')),
    ('stdlib/kivi.attn', dict(dtype='bf16', head_dim=128, quant_prefill='staged')),
    (PAGED_INT8_SOURCE, dict(dtype='bf16', head_dim=128)),
    (PAGED_KIVI_SOURCE, dict(dtype='bf16', head_dim=128)),
    # test_autograd_tensor_cores.py (the 16-bit builds above get the default, wgmma on sm_90a) and the
    # bit-exact torch.compile check of test_autograd.py (SIMT: deterministic).
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=64, backward_engine='mma')),
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=128, backward_engine='mma')),
    ('stdlib/softcap.attn', dict(dtype='bf16', head_dim=128)),
    ('stdlib/softcap.attn', dict(dtype='bf16', head_dim=128, backward_engine='mma')),
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=64, backward_engine='simt')),
    # test_importance.py: the importance output, sum (with a backward) and normalized over a quantized cache.
    ('stdlib/heavy_hitter.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/zipcache.attn', dict(dtype='bf16', head_dim=128)),
]

# Context parallelism (test_cp.py): each kernel and its ring variant (attnc.distributed_build).
SCATTER_SOURCE = """
attention scatter(tag: i32[kv]) {
  score score - 0.001 * float(q - k)
  mask causal && (tag[q] * 7 + tag[k] * 3) % 5 != 0
}
"""
# Reads the id at k + 1: the ring refuses it (a launch holds its chunks' ids only), Ulysses takes it.
NEIGHBOUR_SOURCE = """
attention neighbour(doc: i32[kv]) {
  mask doc[q] == doc[k + 1] && causal
}
"""
CP_BUILDS = [
    (SCATTER_SOURCE, dict(dtype='bf16', head_dim=64)),
    (NEIGHBOUR_SOURCE, dict(dtype='bf16', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/causal.attn', dict(dtype='bf16', head_dim=128)),
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/document.attn', dict(dtype='bf16', head_dim=128)),
    ('stdlib/modality.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/sliding_window.attn', dict(dtype='bf16', head_dim=64)),
    ('stdlib/prefix_lm.attn', dict(dtype='f16', head_dim=64)),
]
