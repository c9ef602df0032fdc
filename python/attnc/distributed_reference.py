"""A pure-Python evaluator of a kernel's mask and score (the manifest's `expr` DAG), for the
context-parallel tests: the ring's plans, source variants and merges are checked in CI against
a dense single-call result without torch or a GPU. Ints follow the language (32-bit wrap, floor
division and modulo, x / 0 = 0); floats are Python floats (f64), enough for these checks."""
import math

from .distributed_tiles import COMPARE, INT_ARITH, _wrap


def _f2i(x):
    if math.isnan(x):
        return 0
    if x >= 2**31 - 1:
        return 2**31 - 1
    if x <= -(2**31):
        return -(2**31)
    return int(x)


def _div_by_zero(a, b):
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


_BIN = {**COMPARE, 'min': min, 'max': max}
_INT = INT_ARITH
_FLOAT = {
    'add': lambda a, b: a + b,
    'sub': lambda a, b: a - b,
    'mul': lambda a, b: a * b,
    'div': lambda a, b: a / b if b else _div_by_zero(a, b),
    'mod': lambda a, b: a - b * math.floor(a / b) if b else math.nan,
}
_UNARY_F = {
    'exp': math.exp,
    'log': lambda x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan),
    'exp2': lambda x: 2.0**x,
    'log2': lambda x: math.log2(x) if x > 0 else (-math.inf if x == 0 else math.nan),
    'sqrt': lambda x: math.sqrt(x) if x >= 0 else math.nan,
    'tanh': math.tanh,
    'floor': math.floor,
    'is_finite': math.isfinite,
}


class Expr:
    """The mask and score of a manifest; mask(env) -> bool, score(env) -> float where env holds
    the variables (q, k, b, h, sizes, score), `$param` values and `tensors` (name -> lookup(idx))."""

    def __init__(self, manifest):
        e = manifest.data['expr']
        self.nodes = {n['id']: n for n in e['nodes']}
        self.order = [n['id'] for n in e['nodes']]  # topological (the manifest writes it so)
        self.mask_id, self.score_id = e['mask'], e['score']

    def _run(self, env, want):
        val = {}
        for i in self.order:
            n = self.nodes[i]
            op, a = n['op'], [val[s] for s in n['src']]
            if op == 'const':
                v = n['arg']
            elif op == 'var':
                v = env[n['arg']]
            elif op == 'param':
                v = env['$' + n['arg']]
            elif op == 'load':
                v = env['tensors'][n['arg']](tuple(a))
            elif op in _BIN:
                v = _BIN[op](*a)
            elif op in _INT or op in _FLOAT:
                v = (_INT if n['dtype'] == 'i32' else _FLOAT)[op](*a)
            elif op == 'neg':
                v = _wrap(-a[0]) if n['dtype'] == 'i32' else -a[0]
            elif op == 'abs':
                v = _wrap(abs(a[0])) if n['dtype'] == 'i32' else abs(a[0])
            elif op == 'and':
                v = all(a)
            elif op == 'or':
                v = any(a)
            elif op == 'not':
                v = not a[0]
            elif op == 'select':
                v = a[1] if a[0] else a[2]
            elif op == 'cast':
                v = float(a[0]) if n['dtype'] == 'f32' else _f2i(a[0])
            elif op in _UNARY_F:
                v = _UNARY_F[op](a[0])
            else:
                raise ValueError(f'expr op {op!r} is not known to the test evaluator')
            val[i] = v
            if i == want:
                return v
        return val[want]

    def mask(self, env):
        return bool(self._run(env, self.mask_id))

    def score(self, env):
        return float(self._run(env, self.score_id))


def lookup_list(values, dim=0):
    """A tensor given as nested lists, read with the language's rule (out of range reads 0)."""

    def read(idx):
        node = values
        for i in idx:
            if not isinstance(node, list) or not 0 <= i < len(node):
                return 0
            node = node[i]
        return node

    return read
