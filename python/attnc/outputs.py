"""What the op allocates besides `out` for one call, from the manifest alone (no torch): lse,
routing `indices` and the `importance` side output, each with its shape and dtype (zero-size when
the kernel writes none: the op's schema returns all four), and the values they take when the call
launches nothing. The torch layer (attnc._ops) allocates what this says; the pure tests check it."""
from typing import NamedTuple, Tuple

# The op's side outputs, in the order it returns them after `out` (and the launcher's pointers).
SIDE_OUTPUTS = ('lse', 'indices', 'importance')
ABSENT = (0,)  # the shape of an output the kernel does not write


class OutputSpec(NamedTuple):
    shape: Tuple[int, ...]
    dtype: str  # 'f32' or 'i32'

    @property
    def present(self):
        return self.shape != ABSENT


def call_sizes(q_shape, k_shape, page_size=None, max_pages=None, kv_len=None):
    """{B, H, Hkv, Nq, Nk} of a call from q's and k's shapes; a paged call's k is a page pool
    [pages, Hkv, P, D] and Nk is kv_len (default max_pages * P), as attnc.call_caches.check_paged says."""
    B, H, Nq = q_shape[0], q_shape[1], q_shape[2]
    Nk = k_shape[2]
    if max_pages is not None:
        Nk = max_pages * page_size if kv_len is None else kv_len
    return dict(B=B, H=H, Hkv=k_shape[1], Nq=Nq, Nk=Nk)


def output_specs(manifest, sizes, int_params):
    """{role: OutputSpec} for SIDE_OUTPUTS. int_params: the i32/bool params' values in manifest
    order (as the op receives them; the routing indices' shape may name one).

    importance is [B, H, Nk] f32 per query head (docs/LANGUAGE.md, Importance; the CUDA pass,
    src/codegen/cuda/importance.ts, writes every element for Nk > 0, sum or normalized alike, so
    it is allocated uninitialised)."""
    m = manifest
    B, H, Nq, Nk = sizes['B'], sizes['H'], sizes['Nq'], sizes['Nk']
    if m.has_indices:
        names = [p.name for p in m.params if not p.is_float]
        indices = tuple(m.indices_shape(sizes, dict(zip(names, int_params))))
    else:
        indices = ABSENT
    return dict(
        lse=OutputSpec((B, H, Nq) if m.has_lse else ABSENT, 'f32'),
        indices=OutputSpec(indices, 'i32'),
        importance=OutputSpec((B, H, Nk) if m.has_importance else ABSENT, 'f32'),
    )


def unlaunched_values(sizes):
    """{role: value} every element of each output takes when the op launches nothing: no key
    (Nk == 0: out 0, lse -inf, no index selected) or no query row (Nq == 0, or an empty out).
    importance is 0 either way: no row gives a key any mass (normalized: no row sees it)."""
    if sizes['Nk'] == 0:
        return dict(out=0.0, lse=float('-inf'), indices=-1, importance=0.0)
    return dict(importance=0.0)  # Nq == 0: out, lse and indices have no element
