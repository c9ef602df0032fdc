"""Whether a (query range, key range) pair can hold an allowed (q, k): the compiled kernel's own
tile classification, read from its manifest (`tiles`: canBeTrue, an expression over the tile's
bounds q_lo, q_hi, k_lo, k_hi, params `$name`, and range_min/range_max of tensors), evaluated for
the whole pair instead of one tile. The compiler derives it by interval analysis, so it is sound
for any enclosure of the values: false means no pair in the ranges is allowed, and the ring skips
that launch. Tensor ranges come from per-chunk (min, max) statistics, a wider enclosure than the
exact range (still sound). Anything this evaluator does not know (a truncated expression, a
variable it has no value for, a tensor without statistics) answers "may touch": never a wrong skip."""
from .errors import ManifestError

I32 = 1 << 32


def _wrap(x):
    """int32 two's-complement wrap (the language's int arithmetic)."""
    x &= I32 - 1
    return x - I32 if x >= 1 << 31 else x


def _floor_div(a, b):
    return 0 if b == 0 else _wrap(a // b)


def _floor_mod(a, b):
    return 0 if b == 0 else _wrap(a % b)


class Unknown(Exception):
    """The expression needs something the evaluator does not have."""


def parse(text):
    """The s-expression text of a manifest's tile field as nested lists of str/int/bool."""
    if '…' in text:
        raise Unknown('truncated expression')
    tokens = text.replace('(', ' ( ').replace(')', ' ) ').split()
    pos = 0

    def read():
        nonlocal pos
        if pos >= len(tokens):
            raise ManifestError(f'tile expression ends early: {text[:80]!r}')
        tok = tokens[pos]
        pos += 1
        if tok == '(':
            items = []
            while pos < len(tokens) and tokens[pos] != ')':
                items.append(read())
            if pos >= len(tokens):
                raise ManifestError(f'tile expression ends early: {text[:80]!r}')
            pos += 1
            return items
        if tok == 'true' or tok == 'false':
            return tok == 'true'
        try:
            return int(tok)
        except ValueError:
            return tok

    tree = read()
    if pos != len(tokens):
        raise ManifestError(f'tile expression has trailing text: {text[:80]!r}')
    return tree


# Int arithmetic as the kernels compute it (wrapping i32, floor division/modulo); comparisons.
# distributed_reference.py evaluates the manifest's expressions with the same tables.
INT_ARITH = {
    'add': lambda a, b: _wrap(a + b),
    'sub': lambda a, b: _wrap(a - b),
    'mul': lambda a, b: _wrap(a * b),
    'div': _floor_div,
    'mod': _floor_mod,
}
COMPARE = {
    'lt': lambda a, b: a < b,
    'le': lambda a, b: a <= b,
    'gt': lambda a, b: a > b,
    'ge': lambda a, b: a >= b,
    'eq': lambda a, b: a == b,
    'ne': lambda a, b: a != b,
}
_INT_OPS = {**INT_ARITH, 'min': min, 'max': max, **COMPARE}


def evaluate(tree, env, ranges):
    """env: variable -> int ('q_lo', '$param', ...); ranges(tensor, lo, hi) -> (min, max)."""
    if isinstance(tree, (bool, int)):
        return tree
    if isinstance(tree, str):
        if tree not in env:
            raise Unknown(f'no value for {tree}')
        return env[tree]
    head, args = tree[0], tree[1:]
    if head == 'and':
        return all(evaluate(a, env, ranges) for a in args)
    if head == 'or':
        return any(evaluate(a, env, ranges) for a in args)
    if head == 'select':
        return evaluate(args[1] if evaluate(args[0], env, ranges) else args[2], env, ranges)
    vals = [evaluate(a, env, ranges) for a in args]
    if head == 'not':
        return not vals[0]
    if head == 'neg':
        return _wrap(-vals[0])
    if head == 'abs':
        return _wrap(abs(vals[0]))
    if head in _INT_OPS:
        return _INT_OPS[head](*vals)
    if isinstance(head, str) and head.startswith(('range_min:', 'range_max:')):
        kind, tensor = head.split(':', 1)
        lo, hi = ranges(tensor, vals[0], vals[1])
        return lo if kind == 'range_min' else hi
    raise Unknown(f'operator {head}')


class ChunkStats:
    """(min, max) of a 1-D position-indexed tensor over chunks of [0, N); positions outside [0, N)
    read 0 (the language's rule for lookups out of range)."""

    def __init__(self, N, chunks):
        self.N = N
        self.chunks = sorted(chunks)  # [(start, stop, min, max)]

    def range(self, lo, hi):
        if lo > hi:
            raise Unknown('an empty tensor range')
        found = [(0, 0)] if lo < 0 or hi >= self.N else []
        a, b = max(lo, 0), min(hi, self.N - 1)
        covered = 0
        for start, stop, mn, mx in self.chunks:
            if start <= b and a < stop:
                found.append((mn, mx))
                covered += min(stop, b + 1) - max(start, a)
        if covered < b - a + 1:
            raise Unknown('a tensor range outside the statistics')
        return min(f[0] for f in found), max(f[1] for f in found)


class PairFilter:
    """may_touch(q_chunk, k_chunk) for the ring, from a manifest's tile classification. params:
    the call's param values by name; stats: tensor name -> ChunkStats (for the tensors the
    expression reads ranges of); B, H: when the expression reads b or h, every batch and head is tried."""

    def __init__(self, tiles, params=None, stats=None, B=1, H=1):
        self.params = {f'${k}': int(v) for k, v in (params or {}).items() if isinstance(v, int) and not isinstance(v, bool)}
        self.stats = stats or {}
        self.always = None
        if tiles is None or tiles.get('kind') == 'static':
            self.always = tiles is None or tiles.get('value') != 'empty'
            return
        try:
            self.tree = parse(tiles['canBeTrue'])
        except Unknown:
            self.always = True
            return
        names = set(tiles['canBeTrue'].replace('(', ' ').replace(')', ' ').split())
        self.heads = (range(B) if 'b' in names else [0], range(H) if 'h' in names else [0])

    def _ranges(self, tensor, lo, hi):
        if tensor not in self.stats:
            raise Unknown(f'no statistics for tensor {tensor}')
        return self.stats[tensor].range(lo, hi)

    def __call__(self, qc, kc):
        if self.always is not None:
            return self.always
        env = dict(self.params, q_lo=qc.start, q_hi=qc.stop - 1, k_lo=kc.start, k_hi=kc.stop - 1)
        try:
            for b in self.heads[0]:
                for h in self.heads[1]:
                    if evaluate(self.tree, dict(env, b=b, h=h), self._ranges):
                        return True
        except Unknown:
            return True
        return False
