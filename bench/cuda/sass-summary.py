"""Where one kernel's instructions and stalls go, from an Nsight Compute SASS export:

    ncu -i REPORT.ncu-rep --page source --csv --print-source sass > X.csv
    python3 bench/cuda/sass-summary.py X.csv KERNEL_SUBSTRING [--top 25]

Prints the kernel's warp instructions and stall samples, the commonest opcodes (executions, their
share, their share of the stall samples) and the instructions with the most stall samples. Used for
the round-9 decode and backward profiles (docs/PERFORMANCE.md)."""
import argparse
import collections
import csv
import re


def kernels(path):
    """(name, header, rows) of every kernel in the export (a 'Kernel Name' line opens each)."""
    out, cur = [], None
    for r in csv.reader(open(path)):
        if not r:
            continue
        if r[0] == 'Kernel Name':
            cur = [r[1], None, []]
            out.append(cur)
        elif cur is not None and r[0] == 'Address':
            cur[1] = r
        elif cur is not None and cur[1] is not None:
            cur[2].append(r)
    return out


def opcode(source):
    words = source.split()
    if not words:
        return '?'
    op = words[1] if words[0].startswith('@') and len(words) > 1 else words[0]
    return op.split('.')[0]


def summary(name, header, rows, top):
    col = {h: i for i, h in enumerate(header)}
    ex, st, src = col['Instructions Executed'], col['Warp Stall Sampling (All Samples)'], col['Source']
    num = lambda r, i: int(r[i]) if r[i].isdigit() else 0  # noqa: E731
    execs, stalls = collections.Counter(), collections.Counter()
    for r in rows:
        execs[opcode(r[src])] += num(r, ex)
        stalls[opcode(r[src])] += num(r, st)
    total, samples = sum(execs.values()), max(sum(stalls.values()), 1)
    lines = [f'{name[:100]}: {total} warp instructions, {samples} stall samples']
    for op, n in execs.most_common(top):
        lines.append(f'  {op:10s} {n:12d} {100 * n / total:5.1f}%  stall {100 * stalls[op] / samples:5.1f}%')
    lines.append('  most stall samples (samples, executions, instruction):')
    for r in sorted(rows, key=lambda r: -num(r, st))[:top]:
        lines.append(f'    {num(r, st):8d} {num(r, ex):12d} {r[src].strip()[:90]}')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('csv')
    ap.add_argument('kernel', help='a regex searched in the kernel name (the first match is summarised)')
    ap.add_argument('--top', type=int, default=25)
    ap.add_argument('--all', action='store_true', help='summarise every matching kernel, not just the first')
    a = ap.parse_args()
    matches = [k for k in kernels(a.csv) if re.search(a.kernel, k[0])]
    if not matches:
        raise SystemExit(f'no kernel whose name matches {a.kernel!r} in {a.csv}')
    for match in matches if a.all else matches[:1]:
        print(summary(*match, a.top))


if __name__ == '__main__':
    main()
