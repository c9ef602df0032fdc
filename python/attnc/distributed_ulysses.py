"""Ulysses context parallelism: all_to_all from sequence shards to head shards, one kernel call per
rank over the whole sequence for its group of heads, and all_to_all back. Exact for any kernel
attnc.distributed_check allows (the mask and score may not read h, H or Hkv: a rank sees its
group of heads as heads 0..H/P-1). k and v are split by kv heads when Hkv is a multiple of the
world size, else repeated to H heads first (a kv head is never split between ranks)."""
import torch
import torch.distributed as dist

from .distributed import _check_rows, _check_tensor_shards, all_to_all_rows, shard, unshard
from .distributed_plan import head_groups, shard_length


def _head_pieces(q, k, v, P):
    """Per destination rank j: (q, k, v) of its head group, this rank's rows."""
    hq, hkv, repeat = head_groups(q.shape[1], k.shape[1], P)
    if repeat > 1:
        k, v = (x.repeat_interleave(repeat, dim=1) for x in (k, v))
    return [(q[:, j * hq : (j + 1) * hq], k[:, j * hkv : (j + 1) * hkv], v[:, j * hkv : (j + 1) * hkv]) for j in range(P)]


def _compute(kern, received, tensors, sharding, scale, params):
    """One rank's head group over the whole sequence: received[r] = (q, k, v) rows of rank r."""
    q, k, v = (unshard([r[i] for r in received], 2, sharding) for i in range(3))
    named = dict(params)
    for name, shards in tensors.items():
        named[name] = unshard(shards, kern.kv_tensors[name].kv_dim, sharding)
    r = kern.attn(q, k, v, q_offset=0, k_offset=0, scale=scale, **named)
    return r.out, r.lse


def _split_rows(out, lse, P, sharding):
    """Per rank r: its rows of this head group's out and lse."""
    return [(shard(out, P, r, 2, sharding).contiguous(), shard(lse, P, r, 2, sharding).contiguous()) for r in range(P)]


def simulate_ulysses(kern, q, k, v, world_size, sharding='zigzag', scale=None, **named):
    """Ulysses over world_size simulated ranks on one device: full q, k, v and tensors in, (out,
    lse) of the whole sequence out."""
    kern.check('ulysses')
    _check_rows(kern, q, k, v)
    _check_tensor_shards(kern, named, q.shape[2])
    P = world_size
    params = {n: x for n, x in named.items() if n not in kern.kv_tensors}
    pieces = [_head_pieces(*(shard(x, P, r, 2, sharding) for x in (q, k, v)), P) for r in range(P)]
    tensors = {n: [shard(named[n], P, r, t.kv_dim, sharding) for r in range(P)] for n, t in kern.kv_tensors.items()}
    back = [_split_rows(*_compute(kern, [pieces[r][j] for r in range(P)], tensors, sharding, scale, params), P, sharding) for j in range(P)]
    outs = [torch.cat([back[j][r][0] for j in range(P)], dim=1) for r in range(P)]
    lses = [torch.cat([back[j][r][1] for j in range(P)], dim=1) for r in range(P)]
    return unshard(outs, 2, sharding), unshard(lses, 2, sharding)


def ulysses_attention(kern, q, k, v, *, N=None, group=None, sharding='zigzag', scale=None, **named):
    """This rank's (out, lse) of attention over the whole sequence, by Ulysses; q, k, v and the
    kv-indexed tensors are this rank's shards (attnc.distributed.shard)."""
    kern.check('ulysses')
    _check_rows(kern, q, k, v)
    _check_tensor_shards(kern, named, q.shape[2])
    P = dist.get_world_size(group)
    if N is None:
        n = torch.tensor([q.shape[2]], device=q.device, dtype=torch.int64)
        dist.all_reduce(n, group=group)
        N = int(n.item())
    lengths = [shard_length(N, P, r, sharding) for r in range(P)]
    mine = _head_pieces(q, k, v, P)
    got = [all_to_all_rows([m[i] for m in mine], lengths, 2, group) for i in range(3)]
    received = list(zip(*got))
    tensors = {name: all_to_all_rows([named[name]] * P, lengths, t.kv_dim, group) for name, t in kern.kv_tensors.items()}
    params = {n_: x for n_, x in named.items() if n_ not in kern.kv_tensors}
    out, lse = _compute(kern, received, tensors, sharding, scale, params)
    rows = _split_rows(out, lse, P, sharding)
    outs = all_to_all_rows([r[0] for r in rows], [q.shape[2]] * P, 2, group)
    lses = all_to_all_rows([r[1] for r in rows], [q.shape[2]] * P, 2, group)
    return torch.cat(outs, dim=1), torch.cat(lses, dim=1)
