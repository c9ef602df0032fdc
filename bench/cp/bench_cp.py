#!/usr/bin/env python3
"""Context-parallel attention on P GPUs (torchrun): attnc's ring and Ulysses (attnc.distributed)
for causal and document masks at long sequence lengths, beside PyTorch's own context parallelism
(torch.distributed.tensor.experimental.context_parallel over SDPA, causal only) where it runs.

    torchrun --nproc-per-node P bench/cp/bench_cp.py --out DIR [--seq 131072,262144,524288,1048576]

Per configuration: correctness first (at --check-seq, every rank's rows of ring and Ulysses against
the single kernel on the whole sequence, computed on each rank), then the time of one forward
(median of --iters after --warmup, CUDA events between barriers), per-GPU throughput (useful
attention FLOPs: 4 B H D x allowed (q, k) pairs, divided by time and P), and the scaling efficiency
against the single kernel over the whole sequence on one GPU (rank 0 alone, others waiting):
t1 / (P tP). Writes DIR/cp-P<world>.json after each configuration (a run cut short keeps what it
measured) and stops starting new ones past each mask's share of --budget-s. Needs the kernels compiled where Node is:
bench/cp/prepare.sh, then carry bench/cp/.artifacts (ATTNC_CACHE points there)."""
import argparse
import json
import os
import sys
import time

# NVLink multicast stays off (the device docs: it can take a shared host's GPUs out of service).
os.environ['NCCL_NVLS_ENABLE'] = '0'
os.environ['TORCH_SYMM_MEM_DISABLE_MULTICAST'] = '1'
os.environ['NVSHMEM_DISABLE_NVLS'] = '1'
HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault('ATTNC_CACHE', os.path.join(HERE, '.artifacts', 'cache'))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

sys.path.insert(0, os.path.join(HERE, '..', '..', 'python'))
import attnc.distributed as cp  # noqa: E402
from attnc.distributed_plan import shard_length  # noqa: E402
from cp_problems import allowed_pairs, document_ids, kernel_path  # noqa: E402


def log(*a):
    if dist.get_rank() == 0:
        print(*a, flush=True)


def timed(fn, warmup, iters):
    """Median seconds of fn() over iters runs, every rank starting together."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        dist.barrier()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        t = torch.tensor([start.elapsed_time(end) / 1e3], device='cuda')
        dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the slowest rank ends the step
        times.append(t.item())
    return sorted(times)[len(times) // 2]


def full_inputs(N, a, seed):
    g = torch.Generator(device='cuda').manual_seed(seed)
    shapes = [(a.batch, a.heads, N, a.dim), (a.batch, a.kv_heads, N, a.dim), (a.batch, a.kv_heads, N, a.dim)]
    return [torch.randn(s, device='cuda', generator=g, dtype=torch.bfloat16) for s in shapes]


def local_inputs(N, a, P, rank, sharding, seed):
    """This rank's shards, made without the whole tensors (each rank draws only its rows)."""
    g = torch.Generator(device='cuda').manual_seed(seed * 1000 + rank)
    n = shard_length(N, P, rank, sharding)
    shapes = [(a.batch, a.heads, n, a.dim), (a.batch, a.kv_heads, n, a.dim), (a.batch, a.kv_heads, n, a.dim)]
    return [torch.randn(s, device='cuda', generator=g, dtype=torch.bfloat16) for s in shapes]


def check(kern, mask, a, P, rank):
    """Every rank's rows of ring and Ulysses against the single kernel (relative L2 of out, max |lse|)."""
    N = a.check_seq
    q, k, v = full_inputs(N, a, seed=1)
    named = {'doc': document_ids(N, a.doc_len, 'cuda')} if mask == 'document' else {}
    ref = kern.attn(q, k, v, q_offset=0, **named)
    result = {}
    for mode in a.modes:
        local = [cp.shard(x, P, rank, 2, a.sharding) for x in (q, k, v)]
        lnamed = {n: cp.shard(t, P, rank, 0, a.sharding) for n, t in named.items()}
        run = cp.ring_attention if mode == 'ring' else cp.ulysses_attention
        out, lse = run(kern, *local, sharding=a.sharding, **lnamed)
        want_out, want_lse = (cp.shard(x, P, rank, 2, a.sharding) for x in (ref.out, ref.lse))
        rel = ((out.float() - want_out.float()).norm() / want_out.float().norm().clamp_min(1e-30)).item()
        fin = torch.isfinite(want_lse)
        lse_err = (lse[fin] - want_lse[fin]).abs().max().item() if fin.any() else 0.0
        same_empty = bool(torch.equal(torch.isfinite(lse), fin))
        stats = torch.tensor([rel, lse_err, 0.0 if same_empty else 1.0], device='cuda')
        dist.all_reduce(stats, op=dist.ReduceOp.MAX)
        rel, lse_err, bad = stats.tolist()
        ok = rel < 2e-2 and lse_err < 1e-2 and bad == 0
        result[mode] = dict(rel_l2=rel, lse_max_abs=lse_err, empty_rows_match=bad == 0, ok=ok)
    return result


def torch_cp_causal(a, N, P):
    """PyTorch's context_parallel over SDPA (causal), or why it did not run."""
    try:
        import torch.nn.functional as F
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor.experimental import context_parallel

        mesh = init_device_mesh('cuda', (P,))
        q, k, v = full_inputs(N, a, seed=3)  # whole buffers on every rank: context_parallel shards them in place
        if a.kv_heads != a.heads:
            k, v = (x.repeat_interleave(a.heads // a.kv_heads, dim=1) for x in (k, v))

        with context_parallel(mesh, buffers=[q, k, v], buffer_seq_dims=[2, 2, 2]):  # shards q, k, v (load-balanced)
            seconds = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), a.warmup, a.iters)
        return dict(seconds=seconds, backend='SDPA under context_parallel (kv heads repeated to H)')
    except Exception as e:  # noqa: BLE001 (recorded, not fatal: PyTorch's CP is experimental)
        return dict(error=f'{type(e).__name__}: {str(e)[:300]}')


def known_one_gpu(out_dir, mask, N, a):
    """The one-GPU time of (mask, N) measured by an earlier run into the same folder (the 2-GPU
    run measures it; the 4- and 8-GPU runs reuse it), or None."""
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        if not (name.startswith('cp-P') and name.endswith('.json')):
            continue
        try:
            with open(os.path.join(out_dir, name)) as f:
                earlier = json.load(f)
        except (OSError, ValueError):
            continue
        same = all(earlier['args'].get(key) == getattr(a, key) for key in ('batch', 'heads', 'kv_heads', 'dim', 'doc_len'))
        for row in earlier.get('results', []) if same else []:
            if row['mask'] == mask and row['N'] == N and row.get('one_gpu_seconds'):
                return row['one_gpu_seconds']
    return None


def one_gpu(kern, a, N, mask):
    """The single kernel over the whole sequence on rank 0 (None where it does not fit)."""
    t = torch.zeros(1, device='cuda')
    if dist.get_rank() == 0:
        try:
            q, k, v = full_inputs(N, a, seed=2)
            named = {'doc': document_ids(N, a.doc_len, 'cuda')} if mask == 'document' else {}
            for _ in range(a.warmup):
                kern.attn(q, k, v, q_offset=0, **named)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            for _ in range(a.iters):
                start.record()
                kern.attn(q, k, v, q_offset=0, **named)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            t[0] = sorted(times)[len(times) // 2]
            del q, k, v
            torch.cuda.empty_cache()
        except torch.cuda.OutOfMemoryError:
            t[0] = -1
    dist.broadcast(t, 0)
    return None if t.item() < 0 else t.item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.environ.get('OUT', '.'))
    p.add_argument('--seq', default='131072,262144,524288,1048576')
    p.add_argument('--masks', default='causal,document')
    p.add_argument('--modes', default='ring,ulysses')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--heads', type=int, default=32)
    p.add_argument('--kv-heads', type=int, default=8)
    p.add_argument('--dim', type=int, default=128)
    p.add_argument('--doc-len', type=int, default=32768, help='mean document length of the document mask')
    p.add_argument('--sharding', default='zigzag')
    p.add_argument('--check-seq', type=int, default=32768)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--budget-s', type=float, default=300.0, help='no new configuration starts past its mask\'s share of this')
    p.add_argument('--no-torch-cp', action='store_true')
    a = p.parse_args()
    a.modes = a.modes.split(',')
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    torch.cuda.set_device(local_rank)
    dist.init_process_group('nccl', device_id=torch.device('cuda', local_rank))
    P, rank = dist.get_world_size(), dist.get_rank()
    report = dict(world_size=P, device=torch.cuda.get_device_name(), torch=torch.__version__, args=vars(a), results=[])
    path = os.path.join(a.out, f'cp-P{P}.json')
    torch.set_grad_enabled(False)
    masks = a.masks.split(',')
    for mask in masks:
        t_mask = time.time()  # each mask gets its share of the budget: causal at 1M cannot starve document
        kern = cp.load(kernel_path(mask), dtype=torch.bfloat16, head_dim=a.dim)
        report.setdefault('checks', {})[mask] = check(kern, mask, a, P, rank)
        log(mask, 'check', report['checks'][mask])
        if not all(c['ok'] for c in report['checks'][mask].values()):
            report.setdefault('stopped', []).append(f'{mask}: the correctness check failed, not timed')
            continue
        for N in (int(s) for s in a.seq.split(',')):
            if time.time() - t_mask > a.budget_s / len(masks):
                report.setdefault('stopped', []).append(f'{mask}: its {a.budget_s / len(masks):.0f} s of the budget spent before N={N}')
                break
            flops = 4.0 * a.batch * a.heads * a.dim * allowed_pairs(mask, N, a.doc_len)
            row = dict(mask=mask, N=N, useful_tflop=flops / 1e12)
            q, k, v = local_inputs(N, a, P, rank, a.sharding, seed=N)
            named = {'doc': cp.shard(document_ids(N, a.doc_len, 'cuda'), P, rank, 0, a.sharding)} if mask == 'document' else {}
            for mode in a.modes:
                run = cp.ring_attention if mode == 'ring' else cp.ulysses_attention
                try:
                    s = timed(lambda: run(kern, q, k, v, N=N, sharding=a.sharding, **named), a.warmup, a.iters)
                    row[mode] = dict(seconds=s, tflops_per_gpu=flops / s / P / 1e12, tokens_per_s_per_gpu=N * a.batch / s / P)
                except torch.cuda.OutOfMemoryError as e:
                    row[mode] = dict(error=f'out of memory: {str(e)[:200]}')
            del q, k, v
            torch.cuda.empty_cache()
            known = torch.tensor([(known_one_gpu(a.out, mask, N, a) or -2.0) if rank == 0 else 0.0], device='cuda')
            dist.broadcast(known, 0)  # rank 0 decides, so every rank takes the same branch below
            t1 = one_gpu(kern, a, N, mask) if known.item() == -2.0 else known.item()
            row['one_gpu_seconds'] = t1
            for mode in a.modes:
                if t1 and 'seconds' in row[mode]:
                    row[mode]['scaling_efficiency'] = t1 / (P * row[mode]['seconds'])
            if mask == 'causal' and not a.no_torch_cp and P > 1:
                row['torch_context_parallel'] = torch_cp_causal(a, N, P)
                if 'seconds' in row['torch_context_parallel']:
                    row['torch_context_parallel']['tflops_per_gpu'] = flops / row['torch_context_parallel']['seconds'] / P / 1e12
            report['results'].append(row)
            log(json.dumps(row))
            if rank == 0:
                with open(path, 'w') as f:
                    json.dump(report, f, indent=1)
            torch.cuda.empty_cache()
    if rank == 0:
        with open(path, 'w') as f:
            json.dump(report, f, indent=1)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
