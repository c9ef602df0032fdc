"""The ring's variant of a kernel whose mask or score reads position-indexed tensors (a `kv` dim,
e.g. document ids `doc: i32[kv]`), made by rewriting the .attn source; pure Python.

A kernel call indexes such a tensor by global position (`doc[q]`, `doc[k]`) over [0, Nk), but a
ring launch sees one query chunk and one key chunk of a long sequence, each with its own slice of
the ids. The variant takes the two slices as two tensors and the chunks' starts as two int params:

    doc: i32[kv]   ->  doc_cp_q: i32[queries], doc_cp_k: i32[kv], attnc_cp_q0: int, attnc_cp_k0: int
    doc[q]         ->  doc_cp_q[q - attnc_cp_q0]
    doc[k]         ->  doc_cp_k[k - attnc_cp_k0]
    doc[E]         ->  (E in the query chunk ? doc_cp_q[E - attnc_cp_q0] : doc_cp_k[E - attnc_cp_k0])

so every lookup at a position of the launch's query or key chunk reads the global value (the two
shifted lookups keep the compiler's tile summaries, so document masks still skip tiles inside a
launch). A lookup elsewhere (`doc[k + 1]` at a chunk's end, say) would read 0 where the single
kernel reads the id there: attnc.distributed_check refuses such kernels for the ring, from the
manifest's mask (the written index may be any expression that comes to q or k, e.g. through a let)."""
import re

from .errors import ArgumentError

Q0, K0 = 'attnc_cp_q0', 'attnc_cp_k0'
_TOKEN = re.compile(r'//[^\n]*|/\*[\s\S]*?\*/|\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|.', re.S)


def _tokens(source):
    return [m.group(0) for m in _TOKEN.finditer(source)]


def _is_code(tok):
    return not (tok.isspace() or tok.startswith('//') or tok.startswith('/*'))


def _next_code(toks, i):
    while i < len(toks) and not _is_code(toks[i]):
        i += 1
    return i


def _matching(toks, i):
    """Index of the bracket closing the one at toks[i]."""
    pairs = {'(': ')', '[': ']', '{': '}'}
    depth, open_, close = 0, toks[i], pairs[toks[i]]
    for j in range(i, len(toks)):
        if toks[j] == open_:
            depth += 1
        elif toks[j] == close:
            depth -= 1
            if depth == 0:
                return j
    raise ArgumentError(f'ring source rewrite: unbalanced {open_!r} in the source')


def _split_commas(toks, lo, hi):
    """Top-level comma-separated pieces of toks[lo:hi], as (lo, hi) spans."""
    spans, depth, start = [], 0, lo
    for j in range(lo, hi):
        if toks[j] in '([{':
            depth += 1
        elif toks[j] in ')]}':
            depth -= 1
        elif toks[j] == ',' and depth == 0:
            spans.append((start, j))
            start = j + 1
    spans.append((start, hi))
    return spans


def _entry_block(toks, entry):
    """(params '(' index, its ')' index, body '{' index, its '}' index) of the entry's declaration."""
    i = 0
    while i < len(toks):
        if toks[i] == 'attention':
            n = _next_code(toks, i + 1)
            p = _next_code(toks, n + 1)
            if p < len(toks) and toks[p] == '(' and (entry is None or toks[n] == entry):
                close = _matching(toks, p)
                body = _next_code(toks, close + 1)
                return p, close, body, _matching(toks, body)
        i += 1
    raise ArgumentError(f'ring source rewrite: no attention declaration {entry or ""} in the source'.replace('  ', ' '))


class RingTensor:
    """A position-indexed tensor of the kernel and its two slices' names in the ring variant."""

    def __init__(self, name, kv_dim, q_name, k_name):
        self.name, self.kv_dim, self.q_name, self.k_name = name, kv_dim, q_name, k_name


def ring_tensors(manifest, taken=()):
    """The kernel's tensors with a `kv` (Nk) dim, and fresh names for their slices."""
    out = []
    for t in manifest.tensors:
        kv = [i for i, d in enumerate(t.dims) if d['kind'] == 'size' and d['name'] == 'Nk']
        if not kv:
            continue
        if len(kv) > 1:
            raise ArgumentError(f'{manifest.name}: tensor {t.name} has two kv dims; the ring shards one')
        suffix = '_cp'
        while f'{t.name}{suffix}_q' in taken or f'{t.name}{suffix}_k' in taken:
            suffix += '_'
        out.append(RingTensor(t.name, kv[0], f'{t.name}{suffix}_q', f'{t.name}{suffix}_k'))
    return out


def _rewrite_span(toks, lo, hi, by_name):
    """toks[lo:hi] as text with every lookup of a ring tensor rewritten."""
    out, j = [], lo
    while j < hi:
        tok = toks[j]
        b = _next_code(toks, j + 1)
        if tok in by_name and b < hi and toks[b] == '[':
            close = _matching(toks, b)
            t = by_name[tok]
            args = [_rewrite_span(toks, a, z, by_name).strip() for a, z in _split_commas(toks, b + 1, close)]
            out.append(_lookup(t, args))
            j = close + 1
            continue
        out.append(tok)
        j += 1
    return ''.join(out)


def _lookup(t, args):
    pos = args[t.kv_dim]

    def at(name, shift):
        idx = list(args)
        idx[t.kv_dim] = f'{pos} - {shift}' if pos in ('q', 'k') else f'({pos}) - {shift}'
        return f'{name}[{", ".join(idx)}]'

    if pos == 'q':
        return at(t.q_name, Q0)
    if pos == 'k':
        return at(t.k_name, K0)
    return f'(({pos}) >= {Q0} && ({pos}) < {Q0} + Nq ? {at(t.q_name, Q0)} : {at(t.k_name, K0)})'


def _rewrite_params(toks, lo, hi, by_name):
    """The parameter list (between the parentheses) with each ring tensor split in two and the
    chunk-start params appended."""
    pieces = []
    for a, z in _split_commas(toks, lo, hi):
        text = ''.join(toks[a:z]).strip()
        if not text:
            continue
        name = toks[_next_code(toks, a)]
        if name in by_name:
            t = by_name[name]
            colon = text.index(':')
            typ = text[colon + 1 :].strip()
            q_typ = re.sub(r'\bkv\b', 'queries', typ)
            pieces += [f'{t.q_name}: {q_typ}', f'{t.k_name}: {typ}']
        else:
            pieces.append(text)
    return ', '.join(pieces + [f'{Q0}: int = 0', f'{K0}: int = 0'])


def ring_source(source, manifest, entry=None):
    """(the ring variant's source, [RingTensor]); (source, []) when no tensor is position-indexed."""
    toks = _tokens(source)
    taken = {t for t in toks if re.match(r'[A-Za-z_]', t)}
    for name in (Q0, K0):
        if name in taken:
            raise ArgumentError(f'{manifest.name}: the name {name} is reserved for the ring variant; rename it in the source')
    tensors = ring_tensors(manifest, taken)
    if not tensors:
        return source, []
    by_name = {t.name: t for t in tensors}
    p, pclose, body, bclose = _entry_block(toks, entry)
    text = (
        ''.join(toks[: p + 1])
        + _rewrite_params(toks, p + 1, pclose, by_name)
        + ''.join(toks[pclose:body])
        + _rewrite_span(toks, body, bclose + 1, by_name)
        + ''.join(toks[bclose + 1 :])
    )
    return text, tensors


def ring_call_named(tensors, call, own, src, params, narrow):
    """The keyword arguments of one ring launch (a PairCall) of the variant: the params, each ring
    tensor's slices (own: this rank's shards by name, src: the key shard's owner's; narrow(x, dim,
    start, length) slices), and the chunk starts."""
    named = dict(params)
    for t in tensors:
        named[t.q_name] = narrow(own[t.name], t.kv_dim, call.q.local, call.q.length)
        named[t.k_name] = narrow(src[t.name], t.kv_dim, call.k.local, call.k.length)
    if tensors:
        named[Q0], named[K0] = call.q.start, call.k.start
    return named
