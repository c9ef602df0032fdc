"""Evaluator of the manifests' shape expressions, the grammar of src/runtime/shape-expr.ts:
integers, names (B H Hkv Nq Nk D Dv and int params), + - *, parentheses and cdiv(a, b).

    expr  := term (('+' | '-') term)*
    term  := unary ('*' unary)*
    unary := '-' unary | atom
    atom  := INT | NAME | 'cdiv' '(' expr ',' expr ')' | '(' expr ')'

Values may be any int-like objects (torch SymInts under torch.compile): only + - * and floor
division are applied to them."""
import re

from .errors import ManifestError

_TOKEN = re.compile(r'\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\S))')


def _tokens(expr):
    out, at = [], 0
    while at < len(expr):
        m = _TOKEN.match(expr, at)
        if m is None or m.end() == at or m.lastindex is None:
            break  # only whitespace is left
        out.append((m.group(m.lastindex), m.lastindex, m.start(m.lastindex) + 1))
        at = m.end()
    return out


class _Parser:
    def __init__(self, expr, env):
        self.src, self.env, self.toks, self.i = expr, env, _tokens(expr), 0

    def fail(self, detail):
        raise ManifestError(f'shape expression "{self.src}": {detail}')

    def peek(self):
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self, want=None, what=None):
        if self.i >= len(self.toks):
            self.fail(f'expected {what or f"{want!r}"} at the end')
        tok = self.toks[self.i]
        if want is not None and tok[0] != want:
            self.fail(f'expected "{want}" at column {tok[2]}, got "{tok[0]}"')
        self.i += 1
        return tok

    def expr(self):
        value = self.term()
        while self.peek() in ('+', '-'):
            op = self.take()[0]
            rhs = self.term()
            value = value + rhs if op == '+' else value - rhs
        return value

    def term(self):
        value = self.unary()
        while self.peek() == '*':
            self.take()
            value = value * self.unary()
        return value

    def unary(self):
        if self.peek() == '-':
            self.take()
            return -self.unary()
        return self.atom()

    def atom(self):
        text, kind, col = self.take(what='a number, a name, cdiv( or (')
        if kind == 1:
            return int(text)
        if kind == 2 and text == 'cdiv' and self.peek() == '(':
            self.take('(')
            a = self.expr()
            self.take(',')
            b = self.expr()
            self.take(')')
            if isinstance(b, int) and b <= 0:
                self.fail(f'cdiv at column {col} divides by {b}')
            return -((-a) // b)
        if kind == 2:
            if text not in self.env:
                known = ', '.join(self.env) or 'none'
                self.fail(f'unknown name "{text}" at column {col} (known: {known})')
            return self.env[text]
        if text == '(':
            value = self.expr()
            self.take(')')
            return value
        self.fail(f'expected a number, a name, cdiv( or ( at column {col}, got "{text}"')


def evaluate(expr, env):
    """The value of `expr` with names bound by `env` (a dict name -> int)."""
    p = _Parser(str(expr), env)
    value = p.expr()
    if p.i < len(p.toks):
        text, _, col = p.toks[p.i]
        p.fail(f'unexpected "{text}" at column {col}')
    return value
