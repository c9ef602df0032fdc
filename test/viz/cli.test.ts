// `attnc viz`: writes the picture the flags ask for, refuses bad flags with a usage error.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { vizCommand } from '../../src/cli/viz-command.js';
import { palette } from '../../src/viz/style.js';
import { pngLayout } from '../../src/viz/png.js';
import { maskGrid } from '../../src/viz/grid.js';

const dir = mkdtempSync(join(tmpdir(), 'attnc-viz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = readFileSync('stdlib/sliding_window.attn', 'utf8');
vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

describe('attnc viz', () => {
  it('writes a PNG of the requested slice and shape', () => {
    const out = join(dir, 'mask.png');
    const flags = { out, nq: '32', nk: '96', head: '1', heads: '2' };
    expect(vizCommand(source, 'sw.attn', flags, { window: 16 })).toBe(0);
    const image = PNG.sync.read(readFileSync(out));
    const l = pngLayout(maskGrid(source, { nq: 32, nk: 96, h: 1, params: { window: 16 } }));
    expect([image.width, image.height]).toEqual([l.width, l.height]);
    const px = (r: number, c: number): number[] => {
      const i = ((l.heatY + r * l.scale + 2) * image.width + l.heatX + c * l.scale + 2) * 4;
      return [...image.data.subarray(i, i + 3)];
    };
    // Row 0 is query position 64: keys 49..64 allowed.
    expect(px(0, 64)).toEqual([...palette.allowed]);
    expect(px(0, 65)).toEqual([...palette.masked]);
    expect(px(0, 48)).toEqual([...palette.masked]);
  });

  it('writes an SVG with the density', () => {
    const out = join(dir, 'mask.svg');
    vizCommand(source, 'sw.attn', { out, nq: '64', nk: '64' }, { window: 8 });
    expect(readFileSync(out, 'utf8')).toMatch(/<text id="density"[^>]*>density 11\.\d%<\/text>/);
  });

  it("makes --out's missing folders, as compile --out does", () => {
    // `--out pictures/mask.svg` said "cannot write …: no such directory" where compile makes it.
    const out = join(dir, 'pictures', 'new', 'mask.svg');
    expect(vizCommand(source, 'sw.attn', { out, nq: '16', nk: '16' }, {})).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('<svg');
  });

  it('says when a routing kernel attends less than the mask it draws', () => {
    // biformer has no mask: the picture is all allowed, density 100%, yet each query block
    // attends only its `top` key blocks. The stdout line must say the picture is an upper bound.
    const write = vi.mocked(process.stdout.write);
    const printed = (): string => write.mock.calls.map((c) => String(c[0])).join('');
    const run = (file: string, flags: Record<string, string>, params = {}) => {
      write.mockClear();
      const src = readFileSync(`stdlib/${file}`, 'utf8');
      vizCommand(src, file, { out: join(dir, 'r.svg'), nq: '128', nk: '128', ...flags }, params);
      return printed();
    };
    expect(run('biformer.attn', {})).toMatch(
      /density 100\.0%.*\nnote: biformer attends only the blocks its selection picks from q and k; the picture is the static mask, an upper bound/s,
    );
    expect(run('tokenselect.attn', {}, { budget: 4 })).toMatch(/\nnote: tokenselect attends only the keys /);
    // `emit` attends the whole mask (the selection is only written out): no note.
    expect(run('tidaldecode.attn', { entry: 'tidal_select' })).not.toMatch(/note:/);
    expect(run('causal.attn', {})).not.toMatch(/note:/);
  });

  it('refuses an unknown format, a missing --out and a missing param value', () => {
    expect(() => vizCommand(source, 'sw.attn', { out: join(dir, 'x.jpg') }, {})).toThrow(UsageError);
    expect(() => vizCommand(source, 'sw.attn', {}, {})).toThrow(/--out/);
    const needs = 'attention w(window: int) { mask q - k < window }';
    expect(() => vizCommand(needs, 'w.attn', { out: join(dir, 'w.svg'), nq: '8' }, {})).toThrow(/no default/);
    // run refuses these; viz drew them (4 query heads over 3 kv heads has no kv head per group).
    for (const [heads, kv] of [
      ['4', '3'],
      ['2', '5'],
      [undefined, '5'],
    ] as const)
      expect(() =>
        vizCommand(source, 'sw.attn', { out: join(dir, 'g.svg'), nq: '8', heads, 'kv-heads': kv }, {}),
      ).toThrow(`--heads (${heads ?? 1}) must be a multiple of --kv-heads (${kv})`);
    expect(() => vizCommand(source, 'sw.attn', { out: join(dir, 'h.svg'), head: '-1' }, {})).toThrow(
      UsageError,
    );
  });

  it('refuses a --param the kernel does not have, as attnc run does', () => {
    // A typo drew the default silently: `--param windw=16` pictured window 1024.
    const out = join(dir, 'p.svg');
    expect(() => vizCommand(source, 'sw.attn', { out, nq: '8' }, { windw: 16 })).toThrow(
      new UsageError('--param windw: sliding_window has no scalar param `windw` (did you mean `window`?)'),
    );
  });
});
