"""The lse merge of partial attention results (attnc.distributed_merge) over floats: edge cases
(empty partials, NaN, large lse) and a property: any split of a row's keys into blocks, merged in
any order, gives the row's softmax over all of them."""
import math
import os
import random

import pytest

from attnc.distributed_merge import NEG_INF, merge_all, merge_rows, merge_weights

SEED = 1234 if os.environ.get('CI') else random.randrange(1 << 30)


def attend(scores, values, width):
    """(out, lse) of one row over (score, value) pairs, masked keys left out; empty: (0, -inf)."""
    if not scores:
        return [0.0] * width, NEG_INF
    m = max(scores)
    weights = [math.exp(s - m) for s in scores]
    total = sum(weights)
    out = [sum(w * v[j] for w, v in zip(weights, values)) / total for j in range(width)]
    return out, m + math.log(total)


def test_empty_partials_have_weight_zero():
    assert merge_weights(NEG_INF, NEG_INF) == (NEG_INF, 0.0, 0.0)
    lse, wa, wb = merge_weights(NEG_INF, 3.5)
    assert (lse, wa, wb) == (3.5, 0.0, 1.0)
    assert merge_rows([0.0, 0.0], NEG_INF, [1.0, -2.0], 0.25) == ([1.0, -2.0], 0.25)
    assert merge_rows([0.0], NEG_INF, [0.0], NEG_INF) == ([0.0], NEG_INF)


def test_nan_poisons_and_large_lse_does_not_overflow():
    lse, wa, wb = merge_weights(math.nan, 1.0)
    assert math.isnan(lse) and math.isnan(wa) and math.isnan(wb)
    lse, wa, wb = merge_weights(1e4, 1e4 - math.log(3.0))
    assert lse == pytest.approx(1e4 + math.log(4.0 / 3.0), rel=1e-15)
    assert (wa, wb) == (pytest.approx(0.75), pytest.approx(0.25))
    lse, wa, wb = merge_weights(-1e4, 50.0)
    assert lse == 50.0 and wa == 0.0 and wb == 1.0


@pytest.mark.parametrize('trial', range(40))
def test_any_split_merges_to_the_full_row(trial):
    rng = random.Random(SEED * 100 + trial)
    n, width = rng.randint(0, 40), rng.randint(1, 4)
    allowed = [rng.random() < 0.6 for _ in range(n)]
    scores = [rng.uniform(-30, 30) for _ in range(n)]
    values = [[rng.uniform(-2, 2) for _ in range(width)] for _ in range(n)]
    cuts = sorted(rng.randint(0, n) for _ in range(rng.randint(0, 6)))
    blocks = list(zip([0] + cuts, cuts + [n]))
    rng.shuffle(blocks)  # the ring visits key shards in its own order
    partials = []
    for lo, hi in blocks:
        keep = [j for j in range(lo, hi) if allowed[j]]
        out, lse = attend([scores[j] for j in keep], [values[j] for j in keep], width)
        partials.append(([out], [lse]))
    keep = [j for j in range(n) if allowed[j]]
    want_out, want_lse = attend([scores[j] for j in keep], [values[j] for j in keep], width)
    (out,), (lse,) = merge_all(partials)
    msg = f'seed {SEED}, trial {trial}'
    if want_lse == NEG_INF:
        assert lse == NEG_INF and out == [0.0] * width, msg
    else:
        assert lse == pytest.approx(want_lse, rel=1e-12, abs=1e-12), msg
        assert out == pytest.approx(want_out, rel=1e-9, abs=1e-12), msg
