"""Summarize `ncu -i REPORT --page source --csv --print-source sass` output: per kernel, the
executed SASS instructions by opcode, grouped by execution count (the main loop's instructions
share one count; the tile fetch another), and warp stall samples by reason. `--per N` divides
counts by N (e.g. the number of warp-tiles) to print instructions per warp and tile.

    ncu -i quant.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 bench/cuda/ncu-sass-summary.py sass.csv --per 131072
"""
import argparse
import collections
import csv


def kernels(path):
    out, cur = [], None
    for r in csv.reader(open(path)):
        if r and r[0] == 'Kernel Name':
            cur = {'name': r[1], 'rows': []}
            out.append(cur)
        elif r and r[0] == 'Address' and cur is not None:
            cur['hdr'] = {n: i for i, n in enumerate(r)}
        elif r and cur is not None and 'hdr' in cur:
            cur['rows'].append(r)
    return [k for k in out if 'hdr' in k]


def opcode(src):
    parts = src.strip().split()
    if not parts:
        return None
    op = parts[1] if parts[0].startswith('@') and len(parts) > 1 else parts[0]
    return op.split('.')[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('csv')
    ap.add_argument('--per', type=float, default=1.0, help='divide counts by this (warp-tiles)')
    ap.add_argument('--top', type=int, default=24)
    opt = ap.parse_args()
    for k in kernels(opt.csv):
        ix = k['hdr']
        stall_cols = [n for n in ix if n.startswith('stall_') and 'Not Issued' not in n]
        by_op, by_count, stalls = collections.Counter(), collections.Counter(), collections.Counter()
        total = 0
        for r in k['rows']:
            try:
                n = int(r[ix['Instructions Executed']] or 0)
            except (ValueError, IndexError):
                continue
            op = opcode(r[ix['Source']])
            if op is None:
                continue
            by_op[op] += n
            by_count[n] += n
            total += n
            for c in stall_cols:
                try:
                    stalls[c] += int(r[ix[c]] or 0)
                except (ValueError, IndexError):
                    pass
        print(f'\n{k["name"]}: {total} instructions, {total / opt.per:.0f} per unit (--per {opt.per:g})')
        print('  by execution count (count: instructions per unit):',
              ', '.join(f'{c}: {t / opt.per:.0f}' for c, t in by_count.most_common(6)))
        for op, n in by_op.most_common(opt.top):
            print(f'  {op:8s} {100 * n / max(total, 1):5.1f}%  {n / opt.per:8.1f}')
        st = sum(stalls.values()) or 1
        print('  stalls: ' + ', '.join(f'{c[6:]} {100 * v / st:.0f}%' for c, v in stalls.most_common(10)))


if __name__ == '__main__':
    main()
