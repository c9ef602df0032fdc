"""Type checks of the manifest values the package reads (manifest.py, backward.py, kernel.py): a
wrong-typed value (a field's offset "x", functions.summaryElems 7) is a ManifestError at load that
names its key path, rather than a TypeError from deep inside a call. Presence is checked where each
value is read (manifest._need); these check only the values that are there. Pure Python."""
from .errors import ManifestError


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not an offset


def _is_number(v):
    return _is_int(v) or isinstance(v, float)


# What each kind of value must be, by the words a message uses.
KINDS = {
    'a string': lambda v: isinstance(v, str),
    'an integer': _is_int,
    'a boolean': lambda v: isinstance(v, bool),
    'a number or null': lambda v: v is None or _is_number(v),
    'an integer or a string': lambda v: _is_int(v) or isinstance(v, str),
    'a list': lambda v: isinstance(v, list),
    'a list of strings': lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    'an object of strings': lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}

# Key paths ('*': each entry of a list) and the kind of value each holds.
SCHEMA = [
    (('name',), 'a string'),
    (('arch',), 'a string'),
    (('files', 'code'), 'a string'),
    (('functions', 'launch'), 'a string'),
    (('functions', 'lastError'), 'a string'),
    (('functions', 'argsInit'), 'a string'),
    (('functions', 'routeScratchElems'), 'a string'),
    (('functions', 'summaryElems'), 'an object of strings'),
    (('args', 'bytes'), 'an integer'),
    (('args', 'fields', '*', 'field'), 'a string'),
    (('args', 'fields', '*', 'name'), 'a string'),
    (('args', 'fields', '*', 'role'), 'a string'),
    (('args', 'fields', '*', 'ctype'), 'a string'),
    (('args', 'fields', '*', 'offset'), 'an integer'),
    (('alignment',), 'an integer'),
    (('schedule', 'dtype'), 'a string'),
    (('schedule', 'headDim'), 'an integer'),
    (('schedule', 'valueDim'), 'an integer'),
    (('schedule', 'engine'), 'a string'),
    (('params', '*', 'name'), 'a string'),
    (('params', '*', 'dtype'), 'a string'),
    (('params', '*', 'default'), 'a number or null'),
    (('tensors', '*', 'name'), 'a string'),
    (('tensors', '*', 'dtype'), 'a string'),
    (('tensors', '*', 'dims'), 'a list'),
    (('tensors', '*', 'dims', '*', 'kind'), 'a string'),
    (('tensors', '*', 'dims', '*', 'name'), 'a string'),
    (('tensors', '*', 'dims', '*', 'value'), 'an integer or a string'),
    (('routing', 'indices', 'shape'), 'a list of strings'),
    (('paged', 'pageSize'), 'an integer'),
    (('backward', 'available'), 'a boolean'),
    (('backward', 'code'), 'a string'),
    (('backward', 'engine'), 'a string'),
    (('backward', 'launch'), 'a string'),
    (('backward', 'slots'), 'a string'),
    (('backward', 'partials'), 'a string'),
    (('backward', 'inverted'), 'a string'),
    (('backward', 'fields', '*', 'name'), 'a string'),
    (('backward', 'fields', '*', 'ctype'), 'a string'),
    (('backward', 'gradParams'), 'a list of strings'),
    (('backward', 'gradTensors'), 'a list of strings'),
    (('backward', 'summaries'), 'a list of strings'),
    (('backward', 'summaryBlock'), 'an integer'),
] + [
    ((cache, *keys), kind)
    for cache in (('caches', 'k'), ('caches', 'v'))
    for keys, kind in [
        (('tensors', '*', 'field'), 'a string'),
        (('tensors', '*', 'part'), 'a string'),
        (('tensors', '*', 'dtype'), 'a string'),
        (('tensors', '*', 'shape'), 'a list of strings'),
    ]
]


def _flatten(path):
    return tuple(k for part in path for k in (part if isinstance(part, tuple) else (part,)))


def _values(node, keys, dotted):
    """(dotted key path, value) of every value at `keys` below `node` that is there."""
    if not keys:
        yield dotted, node
        return
    key, rest = keys[0], keys[1:]
    if key == '*':
        if isinstance(node, list):
            for i, entry in enumerate(node):
                yield from _values(entry, rest, f'{dotted}[{i}]')
    elif isinstance(node, dict) and key in node:
        yield from _values(node[key], rest, f'{dotted}.{key}' if dotted else key)


def check_types(data, where):
    """Raises a ManifestError naming the first value of `data` (a manifest's object) whose type is
    not what the schema says."""
    for path, kind in SCHEMA:
        for dotted, value in _values(data, _flatten(path), ''):
            if not KINDS[kind](value):
                raise ManifestError(f'{where}: "{dotted}" is {value!r}, expected {kind} (written by another attnc version?)')
