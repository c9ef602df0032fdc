"""Context-parallel plans, without torch: which positions each rank holds (contiguous or zig-zag
shards), the ring's schedule (at step s rank r computes against the K/V of rank (r - s) mod P),
the kernel calls of one step (a query chunk against a key chunk, with the q_offset/k_offset that
put both at their global positions), and Ulysses' head groups. Positions are 0..N-1 for queries
and keys alike (self-attention over one sequence of N tokens)."""
from .errors import ArgumentError

SHARDINGS = ('zigzag', 'contiguous')


class Chunk:
    """Positions [start, stop) of the global sequence, stored at rows [local, local + length) of
    the rank's shard."""

    def __init__(self, start, stop, local):
        self.start, self.stop, self.local = start, stop, local

    @property
    def length(self):
        return self.stop - self.start

    def __repr__(self):
        return f'Chunk({self.start}, {self.stop}, local={self.local})'

    def __eq__(self, other):
        return isinstance(other, Chunk) and (self.start, self.stop, self.local) == (other.start, other.stop, other.local)


def _check_sizes(N, P):
    for what, value in (('N', N), ('world_size', P)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f'context parallel: {what} must be an int, got {value!r}')
    if P < 1:
        raise ArgumentError(f'context parallel: world_size must be at least 1, got {P}')
    if N < 0:
        raise ArgumentError(f'context parallel: the sequence length N must be >= 0, got {N}')


def _bounds(N, parts):
    """parts + 1 boundaries splitting [0, N) into parts as equal as ints allow."""
    return [i * N // parts for i in range(parts + 1)]


def shard_chunks(N, P, rank, sharding='zigzag'):
    """The chunks rank `rank` of P holds. contiguous: [rank N/P, (rank + 1) N/P). zigzag: the
    sequence is cut into 2P chunks and rank r holds chunks r and 2P - 1 - r, so under a causal
    mask every rank has the same work (an early chunk with little to see, a late one with much)."""
    _check_sizes(N, P)
    if not 0 <= rank < P:
        raise ArgumentError(f'context parallel: rank {rank} is outside [0, {P})')
    if sharding == 'contiguous':
        b = _bounds(N, P)
        return [Chunk(b[rank], b[rank + 1], 0)]
    if sharding != 'zigzag':
        raise ArgumentError(f'context parallel: sharding {sharding!r} is not one of {", ".join(SHARDINGS)}')
    b = _bounds(N, 2 * P)
    first = Chunk(b[rank], b[rank + 1], 0)
    last = 2 * P - 1 - rank
    return [first, Chunk(b[last], b[last + 1], first.length)]


def shard_length(N, P, rank, sharding='zigzag'):
    return sum(c.length for c in shard_chunks(N, P, rank, sharding))


def shard_positions(N, P, rank, sharding='zigzag'):
    """The global position of each local row of the rank's shard, in order."""
    return [p for c in shard_chunks(N, P, rank, sharding) for p in range(c.start, c.stop)]


def ring_source(rank, step, P):
    """Whose K/V shard rank `rank` holds at ring step `step` (it came around the ring)."""
    return (rank - step) % P


class PairCall:
    """One kernel launch of a ring step: the query chunk against the key chunk, with q_offset =
    q.start and k_offset = k.start (every position global)."""

    def __init__(self, q, k):
        self.q, self.k = q, k

    @property
    def q_offset(self):
        return self.q.start

    @property
    def k_offset(self):
        return self.k.start

    def __repr__(self):
        return f'PairCall(q={self.q}, k={self.k})'


def step_calls(N, P, rank, step, sharding='zigzag', may_touch=None):
    """The launches of rank `rank` at ring step `step`: each of its (non-empty) query chunks
    against each (non-empty) key chunk of the source's shard, except the pairs whose tiles the
    mask cannot touch: may_touch(q_chunk, k_chunk) -> bool decides (None: every pair)."""
    src = ring_source(rank, step, P)
    calls = []
    for qc in shard_chunks(N, P, rank, sharding):
        for kc in shard_chunks(N, P, src, sharding):
            if qc.length == 0 or kc.length == 0:
                continue
            if may_touch is None or may_touch(qc, kc):
                calls.append(PairCall(qc, kc))
    return calls


def ring_schedule(N, P, sharding='zigzag', may_touch=None):
    """{(rank, step): [PairCall]} over the whole ring: every rank against every shard once."""
    return {(r, s): step_calls(N, P, r, s, sharding, may_touch) for r in range(P) for s in range(P)}


def head_groups(H, Hkv, P):
    """Ulysses: rank j gets query heads [j H/P, (j+1) H/P) and the kv heads they read. Returns
    (query heads per rank, kv heads per rank, kv repeat) where kv repeat > 1 means k/v are
    repeated to H heads first (Hkv is not a multiple of P: a kv head would be split)."""
    if H % P != 0:
        raise ArgumentError(f'ulysses: the query heads H = {H} must be a multiple of the world size {P}')
    if Hkv % P == 0:
        return H // P, Hkv // P, 1
    return H // P, H // P, H // Hkv
