"""The evaluator of a manifest's tile classification (attnc.distributed_tiles): the language's int
rules, tensor ranges from chunk statistics, and "may touch" for whatever it cannot evaluate."""
import pytest

from attnc.distributed_plan import Chunk
from attnc.distributed_tiles import ChunkStats, PairFilter, Unknown, evaluate, parse
from attnc.errors import ManifestError


def ev(text, **env):
    return evaluate(parse(text), env, lambda t, lo, hi: (lo, hi))


def test_int_rules_of_the_language():
    assert ev('(add 2147483647 1)') == -2147483648
    assert ev('(div -7 2)') == -4 and ev('(mod -7 2)') == 1 and ev('(mod 7 -2)') == -1
    assert ev('(div 5 0)') == 0 and ev('(mod 5 0)') == 0
    assert ev('(select (lt $w 0) 1 2)', **{'$w': 3}) == 2
    assert ev('(and true (not false))') is True
    assert ev('(range_min:doc q_lo q_hi)', q_lo=3, q_hi=9) == 3


def test_unknowns_and_bad_text():
    with pytest.raises(Unknown):
        ev('(ge q_hi k_lo)', q_hi=1)
    with pytest.raises(Unknown):
        parse('(and (ge q_hi k_lo) …')
    with pytest.raises(Unknown):
        ev('(frobnicate 1 2)')
    with pytest.raises(ManifestError, match='ends early'):
        parse('(and (ge q_hi k_lo)')


def test_chunk_stats_ranges():
    s = ChunkStats(10, [(0, 4, 1, 2), (4, 10, 5, 9)])
    assert s.range(0, 3) == (1, 2) and s.range(3, 4) == (1, 9)
    assert s.range(-2, 1) == (0, 2)  # out of [0, N) reads 0
    assert ChunkStats(10, [(0, 4, 1, 2)]).range(0, 3) == (1, 2)
    with pytest.raises(Unknown):
        ChunkStats(10, [(0, 4, 1, 2)]).range(0, 6)


def test_pair_filter_falls_back_to_may_touch():
    q, k = Chunk(0, 10, 0), Chunk(50, 60, 0)
    causal = {'kind': 'dynamic', 'canBeTrue': '(ge q_hi k_lo)', 'canBeFalse': '(lt q_lo k_hi)'}
    assert PairFilter(causal)(q, k) is False and PairFilter(causal)(k, q) is True
    assert PairFilter({'kind': 'static', 'value': 'full'})(q, k) is True
    assert PairFilter({'kind': 'static', 'value': 'empty'})(q, k) is False
    assert PairFilter(None)(q, k) is True
    assert PairFilter(dict(causal, canBeTrue='(ge q_hi k_lo) …'))(q, k) is True
    doc = {'kind': 'dynamic', 'canBeTrue': '(le (range_min:doc q_lo q_hi) (range_max:doc k_lo k_hi))'}
    assert PairFilter(doc)(q, k) is True  # no statistics: launch
    window = {'kind': 'dynamic', 'canBeTrue': '(lt (sub q_lo k_hi) $window)'}
    assert PairFilter(window, {'window': 5})(Chunk(100, 110, 0), k) is False
    assert PairFilter(window, {'window': 50})(Chunk(100, 110, 0), k) is True
    per_head = {'kind': 'dynamic', 'canBeTrue': '(eq h 3)'}
    assert PairFilter(per_head, H=4)(q, k) is True and PairFilter(per_head, H=3)(q, k) is False
