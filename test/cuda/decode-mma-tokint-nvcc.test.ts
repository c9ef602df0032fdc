// Per-token int4 / int2 caches on the key-major tensor-core decode kernel (decode-mma-tokint.ts)
// build with nvcc (warnings as errors) for sm_90a and sm_80 at their defaults (4-warp blocks capped
// for four an SM, KM_TOKEN_INT_TILES) spilling at most 16 bytes: symmetric and zero-point int4, int2
// with V runs of 32, K runs of 32 and 64, a recent window with mixed signedness, causal, paged (pages
// of 16 and of one token), head dim 64; the bench's tile points at sm_90a; ATTNC_DEC_MMA_KM=0 (no
// query-major kernel for them) stops the build with its message; the host takes the kernel where
// ATTNC_DEC_MMA is on.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_KNOB_NAMES, DECODE_KNOB_VARIANTS, knobDefines } from '../../src/codegen/cuda/decode-knobs.js';
import { compile } from '../../src/compile.js';
import { expectOk, ptxasEntries, render, run, sassOnly, scratchDir, spillsByFunction } from './support.js';

const sources: Record<string, string> = {
  s4: 'store kv int4 scale f16 per token',
  z4: 'store kv int4 scale f16 per token zero f16',
  z2g: 'store k int2 scale f16 per token zero f16\n  store v int2 scale f16 per token group 32 zero f16',
  m4r:
    'store k int4 scale f16 per token zero f16 recent 64 f16\n' +
    '  store v int4 scale f16 per token group 64 recent 64 f16',
  s2c: 'store kv int2 scale f16 per token\n  mask causal',
  // K scales per run of channels (the interleaved K order), with and without zero points.
  g4: 'store kv int4 scale f16 per token group 32',
  g2z: 'store kv int2 scale f16 per token group 64 zero f16',
  // Paged: code rows and scale / zero pools through the block table.
  p16: 'cache paged 16\n  store kv int4 scale f16 per token zero f16',
  p1: 'cache paged 1\n  store k int2 scale f16 per token\n  store v int2 scale f16 per token group 32 zero f16',
};
const code = (name: string, store: string, arch: string, headDim = 128): string =>
  render(
    compile(`attention ${name}() {\n  ${store}\n}\n`, { target: 'cuda', headDim, dtype: 'bf16', arch })
      .kernel,
  ).code;

describe('per-token int4 / int2 on the key-major decode kernel: nvcc', () => {
  const dir = scratchDir('decode-mma-tokint-nvcc');

  it('is the key-major kernel alone, taken where ATTNC_DEC_MMA is on; not for per-channel K scales or runs its k-steps would straddle', () => {
    const c = code('t4', sources.s4!, 'sm_90a');
    expect(c).toContain('mma_split_kernel');
    expect(c).toContain('dt_kpair(');
    expect(c).not.toContain('constexpr int NT = MMA_KEYS / 8'); // the query-major kernel's
    expect(c).not.toContain('ATTNC_DEC_MMA_KIVI');
    expect(c).toContain('if (!ATTNC_DEC_MMA || major < 8');
    // K runs of channels that are not whole runs of a k-step's (int4 32, int2 64), V runs that are
    // not whole 32-channel blocks, per-channel K scales and f32 scales keep the SIMT kernel.
    expect(code('g4', 'store kv int4 scale f16 per token group 32', 'sm_90a')).toContain('dt_kpair(');
    for (const other of [
      'store kv int4 scale f16 per token group 16',
      'store kv int2 scale f16 per token group 32',
      'store k int4 scale f16 per token\n  store v int4 scale f16 per token group 16',
      'store kv int4 scale f32 per token',
      'store k int4 scale f16 per channel\n  store v int4 scale f16 per token',
    ])
      expect(code('o4', other, 'sm_90a'), other).not.toContain('dt_kpair(');
  });

  // The bench's sweep points for these caches (decode-knobs.ts), built on the zero-point int4 kernel
  // for the Hopper the bench runs on.
  const swept = DECODE_KNOB_VARIANTS.filter((v) => v.formats?.includes('int4tz'));
  for (const arch of ['sm_90a', 'sm_80'] as const) {
    const variants = arch === 'sm_90a' ? swept : [];
    it(`${arch}: every shape builds at its defaults${variants.length ? `, and ${variants.length} swept variants,` : ''} spilling at most 16 bytes (warnings as errors)`, async () => {
      const undefs = ALL_KNOB_NAMES.map((n) => `#undef ATTNC_DEC_${n}`);
      const parts = [
        ...Object.entries(sources).map(([n, s]) => [code(`tk_${n}`, s, arch), ...undefs].join('\n')),
        [code('tk_d64', sources.z4!, arch, 64), ...undefs].join('\n'), // head dim 64
        ...variants.map((v) =>
          [...knobDefines(v), code(`tv_${v.name}`, sources.z4!, arch), ...undefs].join('\n'),
        ),
      ];
      const tu = join(dir, `tokint-${arch}.cu`);
      writeFileSync(tu, parts.join('\n'));
      const isMma = (fn: string): boolean => fn.includes('3dec16mma_split_kernel');
      // Warnings as errors: an engine embedding the kernel may build with them.
      const r = await ptxasEntries(tu, arch, isMma, ['-std=c++17', '-Werror', 'all-warnings']);
      expectOk(r, `ptxas ${tu}`);
      const mma = [...spillsByFunction(r.stderr)].filter(([fn]) => isMma(fn));
      expect(mma.length).toBe(parts.length);
      for (const [fn, s] of mma) {
        expect(s.stores, fn).toBeLessThanOrEqual(16);
        expect(s.loads, fn).toBeLessThanOrEqual(16);
      }
    }, 1_000_000);
  }

  it('-DATTNC_DEC_MMA_KM=0 stops the build with its message', async () => {
    const tu = join(dir, 'tokint-km0.cu');
    writeFileSync(tu, `#define ATTNC_DEC_MMA_KM 0\n${code('tk0', sources.z4!, 'sm_90a')}`);
    const r = await run('nvcc', [...sassOnly('sm_90a'), '-std=c++17', '-ptx', tu, '-o', `${tu}.ptx`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('per-token int4 / int2 caches have the key-major kernel only');
  }, 300_000);
});
