"""Context parallelism for attnc kernels over torch.distributed (NCCL): ring attention and Ulysses.

    import attnc.distributed as cp
    kern = cp.load("stdlib/document.attn", dtype=torch.bfloat16, head_dim=128)
    q, k, v, ids = (cp.shard(x, world, rank, dim) for x, dim in ((Q, 2), (K, 2), (V, 2), (IDS, 0)))
    out, lse = cp.ring_attention(kern, q, k, v, doc=ids)       # this rank's rows, global semantics

Every rank holds q, k, v (and the kv-indexed tensors the mask reads, e.g. document ids) for its
shard of one sequence of N positions: with sharding='zigzag' (the default) the sequence is cut
into 2P chunks and rank r holds chunks r and 2P-1-r, so a causal mask gives every rank equal
work; 'contiguous' gives rank r the r-th of P pieces. shard()/unshard() cut and join tensors so.

ring_attention passes K/V shards (and the tensor shards) around the ring with NCCL isend/irecv,
the next step's transfer in flight while this step computes; each step launches the kernel for
every (query chunk, key chunk) pair at their global positions (q_offset, k_offset) and merges
the partial outputs by lse (attnc.distributed_merge). Pairs the kernel's own tile classification
rules out (attnc.distributed_tiles: causal pairs above the diagonal, other documents' chunks)
are skipped without a launch. ulysses_attention (attnc.distributed_ulysses) trades sequence
shards for head shards with all_to_all and calls the kernel once over the whole sequence.
simulate_ring/simulate_ulysses play all P ranks one after another on one GPU: the same per-rank
code with the transfers replaced by handing tensors over, which is how the GPU tests check them."""
from .errors import ArgumentError, import_torch

torch = import_torch('attnc.distributed')
import torch.distributed as dist  # noqa: E402 (torch is importable from here on)

from . import build  # noqa: E402
from . import torch as attnc_torch
from .distributed_check import check_cp_kernel
from .distributed_merge import NEG_INF, TorchOps, merge_weights
from .distributed_plan import ring_source, shard_chunks, shard_length, step_calls
from .distributed_source import ring_call_named, ring_tensors
from .distributed_source import ring_source as ring_variant_source
from .distributed_tiles import ChunkStats, PairFilter

__all__ = ['CPKernel', 'load', 'shard', 'unshard', 'ring_attention', 'ulysses_attention', 'simulate_ring', 'simulate_ulysses']


class CPKernel:
    """A kernel loaded for context parallelism: `attn` (the kernel as written, for Ulysses and the
    tile classification) and `ring` (its ring variant when the mask reads kv-indexed tensors,
    attnc.distributed_source; else the same kernel; None when the ring cannot compute it).
    kv_tensors: the kv-indexed tensors by name (sharded with the sequence)."""

    def __init__(self, attn, ring, ring_tensors):
        self.attn, self.ring, self.ring_tensors = attn, ring, ring_tensors
        self.manifest = attn.manifest
        self.kv_tensors = {t.name: t for t in ring_tensors}

    def check(self, mode):
        check_cp_kernel(self.manifest, mode)


def load(path_or_source, entry=None, dtype=None, head_dim=None, value_dim=None):
    """attnc.torch.load(...) with lse, and the ring variant built beside it when needed."""
    source, _ = build.read_source(str(path_or_source))
    attn = attnc_torch.load(path_or_source, entry, dtype, head_dim, value_dim, lse=True)
    try:
        check_cp_kernel(attn.manifest, 'ring')
    except ArgumentError:  # no ring variant: the ring refuses this kernel (RingRank says why); Ulysses may take it
        return CPKernel(attn, None, ring_tensors(attn.manifest))
    text, tensors = ring_variant_source(source, attn.manifest, entry)
    ring = attnc_torch.load(text, entry, dtype, head_dim, value_dim, lse=True) if tensors else attn
    return CPKernel(attn, ring, tensors)


def shard(x, world_size, rank, dim=2, sharding='zigzag'):
    """Rank `rank`'s shard of x along `dim` (the sequence dim: 2 for [B, H, N, D], 0 for ids [N])."""
    chunks = shard_chunks(x.shape[dim], world_size, rank, sharding)
    return torch.cat([x.narrow(dim, c.start, c.length) for c in chunks], dim=dim)


def unshard(shards, dim=2, sharding='zigzag'):
    """The full tensor from every rank's shard (the inverse of shard)."""
    P = len(shards)
    N = sum(s.shape[dim] for s in shards)
    pieces = []
    for r in range(P):
        for c in shard_chunks(N, P, r, sharding):
            pieces.append((c.start, shards[r].narrow(dim, c.local, c.length)))
    return torch.cat([p for _, p in sorted(pieces, key=lambda x: x[0])], dim=dim)


def _check_tensor_shards(kern, named, rows):
    """Each kv-indexed tensor given, as this rank's shard (as long as its q, k and v shards)."""
    for name, t in kern.kv_tensors.items():
        if name not in named:
            slot = next(s for s in kern.manifest.tensors if s.name == name)
            raise ArgumentError(f'{kern.manifest.name}: missing tensor {name}: {slot.describe()} (this rank\'s shard, attnc.distributed.shard)')
        x = named[name]
        if not isinstance(x, torch.Tensor) or x.dim() <= t.kv_dim or x.shape[t.kv_dim] != rows:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ArgumentError(f'{kern.manifest.name}: tensor {name} must be this rank\'s shard: {rows} positions along dim {t.kv_dim}, got {got}')


def _check_rows(kern, q, k, v):
    """Self-attention over one sequence: q, k and v hold the same positions (dim 2)."""
    for role, x in (('q', q), ('k', k), ('v', v)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ArgumentError(f'{kern.manifest.name}: {role} must be a 4-D tensor [B, H, N, D], got {getattr(x, "shape", type(x).__name__)}')
    if not q.shape[2] == k.shape[2] == v.shape[2]:
        raise ArgumentError(
            f'{kern.manifest.name}: context parallelism is self-attention over one sequence: q, k and v must hold the same '
            f'positions, got {q.shape[2]}, {k.shape[2]} and {v.shape[2]} rows'
        )


def _narrow(x, dim, start, length):
    return x.narrow(dim, start, length)


def _merge_into(acc, acc_lse, out, lse):
    new_lse, w_acc, w_new = merge_weights(acc_lse, lse, TorchOps(torch))
    acc.mul_(w_acc.unsqueeze(-1)).add_(out.float() * w_new.unsqueeze(-1))
    acc_lse.copy_(new_lse)


class RingRank:
    """One rank of the ring: its query chunks and their running (out, lse) in float32."""

    def __init__(self, kern, q, Dv, N, P, rank, sharding, named, scale, may_touch):
        kern.check('ring')
        self.kern, self.N, self.P, self.rank, self.sharding = kern, N, P, rank, sharding
        self.scale, self.may_touch = scale, may_touch
        self.chunks = shard_chunks(N, P, rank, sharding)
        if q.shape[2] != sum(c.length for c in self.chunks):
            raise ArgumentError(f'{kern.manifest.name}: rank {rank} holds {q.shape[2]} query rows; its {sharding} shard of N = {N} has {shard_length(N, P, rank, sharding)}')
        self.q = [q[:, :, c.local : c.local + c.length].contiguous() for c in self.chunks]
        _check_tensor_shards(kern, named, q.shape[2])
        self.params = {n: v for n, v in named.items() if n not in kern.kv_tensors}
        self.own = {n: named[n] for n in kern.kv_tensors}  # this rank's shards of the kv-indexed tensors
        B, H = q.shape[0], q.shape[1]
        self.acc = {c.start: q.new_zeros((B, H, c.length, Dv), dtype=torch.float32) for c in self.chunks}
        self.lse = {c.start: torch.full((B, H, c.length), NEG_INF, device=q.device) for c in self.chunks}
        self.launches = 0

    def step(self, step, k, v, kv_named):
        """Computes against the K/V (and tensor shards kv_named) of rank ring_source(rank, step)."""
        for call in step_calls(self.N, self.P, self.rank, step, self.sharding, self.may_touch):
            qc, kc = call.q, call.k
            named = ring_call_named(self.kern.ring_tensors, call, self.own, kv_named, self.params, _narrow)
            kk, vv = (x[:, :, kc.local : kc.local + kc.length] for x in (k, v))
            q = self.q[self.chunks.index(qc)]
            r = self.kern.ring(q, kk, vv, q_offset=call.q_offset, k_offset=call.k_offset, scale=self.scale, **named)
            _merge_into(self.acc[qc.start], self.lse[qc.start], r.out, r.lse)
            self.launches += 1

    def result(self, dtype):
        """This rank's rows: out in the inputs' dtype, lse float32."""
        out = torch.cat([self.acc[c.start] for c in self.chunks], dim=2).to(dtype)
        return out, torch.cat([self.lse[c.start] for c in self.chunks], dim=2)


def _stats(kern, tensors_by_rank, N, P, sharding):
    """ChunkStats of the 1-D kv-indexed tensors, from every rank's shard ({rank: {name: shard}})."""
    stats = {}
    ndim = {t.name: len(t.dims) for t in kern.manifest.tensors}
    for name in kern.kv_tensors:
        if ndim[name] != 1:  # range_min/range_max read 1-D tensors only
            continue
        rows = []
        for r in range(P):
            for c in shard_chunks(N, P, r, sharding):
                if c.length:
                    piece = tensors_by_rank[r][name].narrow(0, c.local, c.length)
                    rows.append((c.start, c.stop, piece.min(), piece.max()))
        values = torch.stack([torch.stack([mn, mx]) for _, _, mn, mx in rows]).tolist() if rows else []
        stats[name] = ChunkStats(N, [(a, b, int(mn), int(mx)) for (a, b, _, _), (mn, mx) in zip(rows, values)])
    return stats


def _pair_filter(kern, stats, named, B, H, skip=True):
    if not skip:
        return None
    params = {p.name: named.get(p.name, p.default) for p in kern.manifest.params}
    return PairFilter(kern.manifest.data.get('tiles'), params, stats, B, H)


def simulate_ring(kern, q, k, v, world_size, sharding='zigzag', scale=None, skip=True, **named):
    """The ring over world_size simulated ranks on one device, one after another: full q, k, v
    [B, H, N, D] and full kv-indexed tensors in, (out, lse, launches) out."""
    N, P = q.shape[2], world_size
    _check_rows(kern, q, k, v)
    for name in kern.kv_tensors:  # the whole sequence's tensors here: each rank gets its shard
        _check_tensor_shards(kern, {name: named.get(name)} if name in named else {}, N)
    sh = {r: {n: shard(named[n], P, r, kern.kv_tensors[n].kv_dim, sharding) for n in kern.kv_tensors} for r in range(P)}
    stats = _stats(kern, sh, N, P, sharding)
    may_touch = _pair_filter(kern, stats, named, q.shape[0], q.shape[1], skip)
    kvs = [(shard(k, P, r, 2, sharding), shard(v, P, r, 2, sharding)) for r in range(P)]
    ranks = [RingRank(kern, shard(q, P, r, 2, sharding), v.shape[3], N, P, r, sharding, dict(named, **sh[r]), scale, may_touch) for r in range(P)]
    for s in range(P):
        for r, rank in enumerate(ranks):
            src = ring_source(r, s, P)
            rank.step(s, *kvs[src], sh[src])
    results = [rank.result(q.dtype) for rank in ranks]
    return unshard([o for o, _ in results], 2, sharding), unshard([l for _, l in results], 2, sharding), sum(r.launches for r in ranks)


def ring_attention(kern, q, k, v, *, N=None, group=None, sharding='zigzag', scale=None, skip=True, **named):
    """This rank's (out, lse) of attention over the whole sequence; q, k, v [B, H(kv), N_rank, D]
    and the kv-indexed tensors are this rank's shards (shard()). N: the sequence length (None: the
    sum of the ranks' shard lengths, one all_reduce)."""
    P, rank = dist.get_world_size(group), dist.get_rank(group)
    if N is None:
        n = torch.tensor([q.shape[2]], device=q.device, dtype=torch.int64)
        dist.all_reduce(n, group=group)
        N = int(n.item())
    _check_rows(kern, q, k, v)
    _check_tensor_shards(kern, named, q.shape[2])
    mine = {n_: named[n_] for n_ in kern.kv_tensors}
    gathered = {}
    for name, t in mine.items():  # every rank's shard of the 1-D tensors, for the pair filter's statistics
        if t.dim() == 1:
            lengths = [shard_length(N, P, r, sharding) for r in range(P)]
            gathered[name] = all_to_all_rows([t] * P, lengths, 0, group)
    sh = {r: {n_: gathered[n_][r] for n_ in gathered} for r in range(P)}
    may_touch = _pair_filter(kern, _stats(kern, sh, N, P, sharding), named, q.shape[0], q.shape[1], skip)
    me = RingRank(kern, q, v.shape[3], N, P, rank, sharding, named, scale, may_touch)
    cur = [k.contiguous(), v.contiguous()] + [mine[n_].contiguous() for n_ in kern.kv_tensors]
    nxt_peer, prev_peer = (dist.get_global_rank(group, (rank + d) % P) if group else (rank + d) % P for d in (1, -1))
    for s in range(P):
        reqs, nxt = [], None
        if s < P - 1:  # the next step's shard travels while this step computes
            n_src = shard_length(N, P, ring_source(rank, s + 1, P), sharding)
            nxt = [x.new_empty(_with_len(x, n_src, _seq_dim(kern, i))) for i, x in enumerate(cur)]
            ops = [dist.P2POp(dist.isend, x, nxt_peer, group) for x in cur] + [dist.P2POp(dist.irecv, x, prev_peer, group) for x in nxt]
            reqs = dist.batch_isend_irecv(ops)
        me.step(s, cur[0], cur[1], dict(zip(kern.kv_tensors, cur[2:])))
        for req in reqs:
            req.wait()
        if nxt is not None:
            cur = nxt
    return me.result(q.dtype)


def _seq_dim(kern, i):
    return 2 if i < 2 else list(kern.kv_tensors.values())[i - 2].kv_dim


def _with_len(x, n, dim):
    shape = list(x.shape)
    shape[dim] = n
    return shape


def all_to_all_rows(sends, recv_lengths, dim, group=None):
    """all_to_all of tensors whose lengths along `dim` differ (shards of N not a multiple of 2P):
    each is padded to the longest, so gloo (equal sizes only) runs it as NCCL does; recv_lengths[r]
    is the length that rank r sends here, and what comes back is cut to it."""
    longest = max([s.shape[dim] for s in sends] + list(recv_lengths))

    def padded(x):
        if x.shape[dim] == longest:
            return x.contiguous()
        pad = list(x.shape)
        pad[dim] = longest - x.shape[dim]
        return torch.cat([x, x.new_zeros(pad)], dim=dim)

    recv = [padded(sends[0]).new_empty(_with_len(sends[0], longest, dim)) for _ in recv_lengths]
    exchange = dist.all_to_all if _has_all_to_all(group) else _all_to_all_by_p2p
    exchange(recv, [padded(s) for s in sends], group=group)
    return [r.narrow(dim, 0, n) for r, n in zip(recv, recv_lengths)]


def _has_all_to_all(group):
    # gloo has no all_to_all (torch 2.11 raises "Backend gloo does not support alltoall"); NCCL,
    # MPI and UCC do.
    return dist.get_backend(group) != 'gloo'


def _all_to_all_by_p2p(recv, sends, group=None):
    """all_to_all through torch.distributed's batched isend/irecv (what gloo offers): rank r's
    sends[p] lands in rank p's recv[r]; a rank's own slot is a local copy."""
    rank = dist.get_rank(group)
    peers = [p for p in range(len(sends)) if p != rank]
    recv[rank].copy_(sends[rank])
    if not peers:
        return
    ops = [dist.P2POp(dist.isend, sends[p], _global(p, group), group) for p in peers]
    ops += [dist.P2POp(dist.irecv, recv[p], _global(p, group), group) for p in peers]
    for req in dist.batch_isend_irecv(ops):
        req.wait()


def _global(group_rank, group):
    return group_rank if group is None else dist.get_global_rank(group, group_rank)


# Ulysses lives in its own module, which uses shard/unshard above.
from .distributed_ulysses import simulate_ulysses, ulysses_attention  # noqa: E402
