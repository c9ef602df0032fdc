"""Finding the attnc compiler (a Node.js CLI) and fingerprinting its build, so that cached
artifacts are recompiled when the compiler changes. Order: $ATTNC_CLI, then `attnc` on PATH, then
the attnc checkout this package sits in, then the checkout around the working directory."""
import hashlib
import os
import shlex
import shutil

from .errors import BuildError

CLI_MAIN = os.path.join('dist', 'src', 'cli', 'main.js')
JS_SUFFIXES = ('.js', '.mjs', '.cjs')
NO_CLI_HELP = (
    'attnc compiles .attn files with its CLI (Node.js >= 20) and found none. Either set ATTNC_CLI to '
    'the CLI (e.g. /path/to/attnc/dist/src/cli/main.js), put `attnc` on PATH (npm install -g attnc), '
    'or build the checkout (npm ci && npm run build). A compiled artifact needs no Node: '
    'attnc.torch.load_artifact(DIR) with DIR from `attnc compile FILE --target cuda --out DIR`.'
)


class Cli:
    """A runnable CLI: the command prefix (e.g. ['node', '.../main.js']) and, when known, the root
    of the attnc package it belongs to (which holds stdlib/)."""

    def __init__(self, command, root, origin):
        self.command, self.root, self.origin = command, root, origin

    def fingerprint(self):
        """A hash of the compiler build: sizes and mtimes of its dist/src JavaScript (any rebuild
        changes it), or of the command's own file when it is not a package's CLI."""
        h = hashlib.sha256()
        if self.root is not None:
            dist = os.path.join(self.root, 'dist', 'src')
            for dirpath, dirnames, filenames in os.walk(dist):
                dirnames.sort()
                for n in sorted(filenames):
                    if n.endswith('.js'):
                        st = os.stat(os.path.join(dirpath, n))
                        h.update(f'{os.path.relpath(os.path.join(dirpath, n), dist)}:{st.st_size}:{st.st_mtime_ns}\n'.encode())
        else:
            for part in self.command:
                path = shutil.which(part) or part
                if os.path.isfile(path):
                    st = os.stat(path)
                    h.update(f'{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}\n'.encode())
        return h.hexdigest()[:32]


def package_root_of(main_js):
    """The package root of a CLI entry file .../dist/src/cli/main.js, else None."""
    real = os.path.realpath(main_js)
    if real.endswith(os.sep + CLI_MAIN):
        return real[: -len(CLI_MAIN) - 1]
    return None


def find_checkout(start):
    """The nearest directory at or above `start` that is an attnc checkout (package.json naming
    attnc and a stdlib/), or None."""
    d = os.path.abspath(start)
    while True:
        pkg = os.path.join(d, 'package.json')
        if os.path.isfile(pkg) and os.path.isdir(os.path.join(d, 'stdlib')):
            try:
                with open(pkg) as f:
                    if '"name": "attnc"' in f.read():
                        return d
            except OSError:
                pass
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _node(for_what):
    node = shutil.which('node')
    if node is None:
        raise BuildError(f'{for_what} needs Node.js (>= 20), and `node` is not on PATH. {NO_CLI_HELP}')
    return node


def _from_env(value):
    parts = shlex.split(value)
    if not parts:
        raise BuildError('ATTNC_CLI is set but empty. ' + NO_CLI_HELP)
    if len(parts) == 1 and parts[0].endswith(JS_SUFFIXES):
        if not os.path.isfile(parts[0]):
            raise BuildError(f'ATTNC_CLI={value}: no such file')
        return Cli([_node(f'ATTNC_CLI={value}'), parts[0]], package_root_of(parts[0]), 'ATTNC_CLI')
    if shutil.which(parts[0]) is None:
        raise BuildError(f'ATTNC_CLI={value}: {parts[0]} is not an executable on PATH')
    js = next((p for p in parts[1:] if p.endswith(JS_SUFFIXES)), None)
    return Cli(parts, package_root_of(js) if js else None, 'ATTNC_CLI')


def _from_checkout(root, origin):
    main = os.path.join(root, CLI_MAIN)
    if not os.path.isfile(main):
        raise BuildError(f'the attnc checkout {root} is not built ({CLI_MAIN} is missing): run `npm ci && npm run build` there, or set ATTNC_CLI')
    return Cli([_node(f'the attnc checkout {root}'), main], root, origin)


def find_cli(cwd=None):
    """The CLI to compile with; BuildError saying what to install when there is none."""
    env = os.environ.get('ATTNC_CLI')
    if env is not None:
        return _from_env(env)
    on_path = shutil.which('attnc')
    if on_path is not None:
        return Cli([on_path], package_root_of(on_path), 'PATH')
    for start, origin in ((os.path.dirname(os.path.abspath(__file__)), 'package checkout'), (cwd or os.getcwd(), 'working directory')):
        root = find_checkout(start)
        if root is not None:
            return _from_checkout(root, origin)
    raise BuildError(NO_CLI_HELP)


def source_roots(cwd=None):
    """Roots of attnc packages whose stdlib/ a relative .attn path may name, without needing Node."""
    roots = []
    env = os.environ.get('ATTNC_CLI')
    if env:
        js = next((p for p in shlex.split(env) if p.endswith(JS_SUFFIXES)), None)
        roots.append(package_root_of(js) if js else None)
    on_path = shutil.which('attnc')
    roots.append(package_root_of(on_path) if on_path else None)
    roots.append(find_checkout(os.path.dirname(os.path.abspath(__file__))))
    roots.append(find_checkout(cwd or os.getcwd()))
    out = []
    for r in roots:
        if r is not None and r not in out:
            out.append(r)
    return out
