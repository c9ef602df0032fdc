"""Merging partial attention results by their log-sum-exp, written once for torch tensors and for
plain floats (the pure tests run it without torch).

Two partials of one query row over disjoint key sets, (out_a, lse_a) and (out_b, lse_b), give the
row over the union: lse = log(exp(lse_a) + exp(lse_b)) and out = w_a out_a + w_b out_b with
w_x = exp(lse_x - lse). Computed from m = max(lse_a, lse_b), so no exp overflows and the larger
weight's exp is exactly 1. An empty partial (no allowed key: lse = -inf, out 0) gets weight 0; two
empty ones stay empty (lse -inf, weights 0, out 0) with no log(0) or 0/0 on the way. A NaN lse (a
poisoned row) makes the merged lse and out NaN, as the single kernel's would be."""
import math

NEG_INF = float('-inf')


class FloatOps:
    """The elementwise functions merge_weights needs, over Python floats."""

    @staticmethod
    def maximum(a, b):
        if math.isnan(a) or math.isnan(b):
            return math.nan
        return a if a >= b else b

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    exp = staticmethod(math.exp)
    log = staticmethod(math.log)


class TorchOps:
    """The same over torch tensors (lse rows, float32)."""

    def __init__(self, torch):
        self.torch = torch

    def maximum(self, a, b):
        return self.torch.maximum(a, b)  # propagates NaN

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def exp(self, x):
        return self.torch.exp(x)

    def log(self, x):
        return self.torch.log(x)


def merge_weights(lse_a, lse_b, ops=FloatOps):
    """(lse, w_a, w_b): the merged lse and the weights of the two partial outputs."""
    m = ops.maximum(lse_a, lse_b)
    empty = m == NEG_INF
    base = ops.where(empty, 0.0, m)  # both empty: exp(-inf - 0) = 0 below
    e_a, e_b = ops.exp(lse_a - base), ops.exp(lse_b - base)
    total = ops.where(empty, 1.0, e_a + e_b)  # >= 1 unless empty
    lse = ops.where(empty, NEG_INF, base + ops.log(total))
    return lse, e_a / total, e_b / total


def merge_rows(out_a, lse_a, out_b, lse_b):
    """One row's merge over floats: out_* are lists (the row's Dv values)."""
    lse, w_a, w_b = merge_weights(lse_a, lse_b)
    return [w_a * x + w_b * y for x, y in zip(out_a, out_b)], lse


def merge_all(partials):
    """The rows of several partials [(out rows, lse list)] merged in order, over floats: the ring's
    running merge (start empty, fold each step in)."""
    rows = len(partials[0][1])
    width = len(partials[0][0][0]) if rows else 0
    out, lse = [[0.0] * width for _ in range(rows)], [NEG_INF] * rows
    for part_out, part_lse in partials:
        for i in range(rows):
            out[i], lse[i] = merge_rows(out[i], lse[i], part_out[i], part_lse[i])
    return out, lse
