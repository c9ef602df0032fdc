"""The benchmark's problems, without torch where it can: which kernel each mask uses, the document
lengths of the document mask (fixed by a seed, so every rank and the one-GPU baseline agree), and
the number of (q, k) pairs each mask allows (the useful work that throughput is counted by)."""
import os
import random

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNELS = {'causal': 'stdlib/causal.attn', 'document': 'stdlib/document.attn'}


def kernel_path(mask):
    return os.path.join(REPO, KERNELS[mask])


def document_lengths(N, mean):
    """Document lengths summing to N: uniform in [mean/4, 7 mean/4], seeded."""
    rng = random.Random(N * 31 + mean)
    lengths, total = [], 0
    while total < N:
        n = min(N - total, rng.randint(max(1, mean // 4), max(1, 7 * mean // 4)))
        lengths.append(n)
        total += n
    return lengths


def allowed_pairs(mask, N, mean_doc):
    if mask == 'causal':
        return N * (N + 1) // 2
    return sum(n * (n + 1) // 2 for n in document_lengths(N, mean_doc))


def document_ids(N, mean, device):
    import torch

    lengths = torch.tensor(document_lengths(N, mean), dtype=torch.int64)
    return torch.repeat_interleave(torch.arange(len(lengths), dtype=torch.int32), lengths).to(device)
