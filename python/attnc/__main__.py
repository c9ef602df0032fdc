"""python -m attnc compile FILE [options]: compiles a .attn file into the artifact cache the way
attnc.torch.load would (same key), without a GPU or nvcc, and prints the manifest's path. Run it
where Node is, then carry the cache ($ATTNC_CACHE or --cache) to a GPU machine without Node."""
import argparse
import sys

from .build import ARCHS, BuildOptions, compile_artifact, read_source
from .errors import AttncError


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m attnc', description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='command', required=True)
    c = sub.add_parser('compile', help='compile a .attn file into the artifact cache')
    c.add_argument('file', help='a .attn path (relative paths may name the attnc package, e.g. stdlib/document.attn)')
    c.add_argument('--entry', default=None)
    c.add_argument('--dtype', default='bf16', choices=['bf16', 'f16', 'f32'])
    c.add_argument('--head-dim', type=int, default=64)
    c.add_argument('--value-dim', type=int, default=None)
    c.add_argument('--no-lse', action='store_true')
    c.add_argument('--arch', default='sm_90a', choices=sorted({a.name for a in ARCHS.values()}))
    c.add_argument('--cache', default=None, help='cache directory (default $ATTNC_CACHE, else ~/.cache/attnc)')
    args = ap.parse_args(argv)
    try:
        source, path = read_source(args.file)
        value_dim = None if args.value_dim == args.head_dim else args.value_dim
        options = BuildOptions(args.entry, args.dtype, args.head_dim, value_dim, not args.no_lse, args.arch)
        print(compile_artifact(source, path, options, cache=args.cache))
    except AttncError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
