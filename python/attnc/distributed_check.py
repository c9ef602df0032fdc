"""Which kernels context parallelism computes exactly, decided from the manifest (pure Python).

Both schemes call the kernel on pieces of the problem and merge by lse, so the kernel must be a
plain attention (no routing/selection, importance output, paged or quantized cache: a top-k over
all keys does not split into shards) that writes lse. The ring launches one query chunk against
one key chunk, so its mask and score may not read Nq or Nk (the launch's sizes, not the
sequence's), and it may read a kv-indexed tensor (document ids) only at q or k: a launch holds the
ids of its two chunks, not of a neighbour position such as k + 1. A tensor indexed by query row
(a `queries` dim) has no shard rule. Ulysses gives each
rank whole sequences for a group of heads, so its mask and score may not read h, H or Hkv, nor
tensors with a heads dim."""
from .errors import ArgumentError

MODES = ('ring', 'ulysses')
PLAIN_ROLES = {'q', 'k', 'v', 'out', 'lse', 'stride', 'qo_stride', 'size', 'offset', 'scale', 'param', 'tensor', 'summary'}
LOCAL_SIZES = {'ring': ('Nq', 'Nk'), 'ulysses': ('h', 'H', 'Hkv')}


def expr_vars(manifest):
    """The variables the kernel's mask and score read (q, k, b, h, sizes, score)."""
    nodes = manifest.data.get('expr', {}).get('nodes')
    if nodes is None:
        return None
    return {n['arg'] for n in nodes if n['op'] == 'var'}


def check_cp_kernel(manifest, mode):
    """Raises ArgumentError naming the kernel and what stops `mode` from computing it exactly."""
    name = manifest.name
    if mode not in MODES:
        raise ArgumentError(f'{name}: context-parallel mode {mode!r} is not one of {", ".join(MODES)}')
    roles = sorted({f['role'] for f in manifest.fields} - PLAIN_ROLES)
    if roles or 'routing' in manifest.data:
        what = ', '.join(roles) if roles else 'routing'
        raise ArgumentError(
            f'{name}: context parallelism merges plain attention by lse; this kernel has {what} '
            '(routing, selection, importance and paged/quantized caches do not split into shards)'
        )
    if not manifest.has_lse:
        raise ArgumentError(f'{name}: context parallelism merges partial results by lse; load the kernel with lse=True')
    used = expr_vars(manifest)
    if used is None:
        raise ArgumentError(f'{name}: the manifest has no "expr" (mask and score); rebuild with this attnc version')
    bad = sorted(used & set(LOCAL_SIZES[mode]))
    if bad:
        why = 'each launch sees a chunk, so they would be the chunk sizes' if mode == 'ring' else 'each rank sees a group of heads'
        raise ArgumentError(f'{name}: the mask or score reads {", ".join(bad)}; {mode} cannot compute it exactly ({why})')
    if mode == 'ring':
        _check_ring_lookups(manifest)
    for t in manifest.tensors:
        dims = [d.get('name') for d in t.dims if d['kind'] == 'size']
        if 'Nq' in dims:
            raise ArgumentError(f'{name}: tensor {t.name} has a queries dim; context parallelism shards only kv-indexed tensors')
        if mode == 'ulysses' and ('H' in dims or 'Hkv' in dims):
            raise ArgumentError(f'{name}: tensor {t.name} has a heads dim; ulysses splits heads, use the ring')


def _check_ring_lookups(manifest):
    """Every lookup of a kv-indexed tensor in the mask and score reads it at q or at k."""
    kv_dim = {}
    for t in manifest.tensors:
        for i, d in enumerate(t.dims):
            if d['kind'] == 'size' and d['name'] == 'Nk':
                kv_dim[t.name] = i
    nodes = {n['id']: n for n in manifest.data['expr']['nodes']}
    for n in nodes.values():
        if n['op'] != 'load' or n['arg'] not in kv_dim:
            continue
        index = nodes[n['src'][kv_dim[n['arg']]]]
        if not (index['op'] == 'var' and index['arg'] in ('q', 'k')):
            raise ArgumentError(
                f'{manifest.name}: the mask or score reads {n["arg"]} at a position other than q or k; a ring launch '
                'holds the values of its query and key chunks only, so the ring cannot compute it exactly '
                '(ulysses_attention sees the whole sequence)'
            )
