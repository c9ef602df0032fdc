// Two-element conversions of unsigned int4 / int2 codes to f16 pairs (decode-mma-dq.ts): on the
// host build, every code at every field of K words and of V word pairs converts to the exact f16
// bits of the code (computed here from f32 bits, independently); nvcc builds the device path
// (lop3 + hsub2) for sm_80 and sm_90a.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  codesPerWordOf,
  unsignedPairHelpers,
  type UnsignedCodeBits,
} from '../../src/codegen/cuda/decode-mma-dq.js';
import { rng } from '../../src/runtime/inputs.js';
import { expectOk, run, scratchDir, sassOnly } from './support.js';

const NVCC = process.env.NVCC ?? 'nvcc';
const WIDTHS: readonly UnsignedCodeBits[] = [4, 2];

/** f16 bits of a small non-negative integer, from its f32 bits (exact below 2^11). */
function f16Of(n: number): number {
  if (n === 0) return 0;
  const u = new Uint32Array(Float32Array.of(n).buffer)[0]!;
  return ((((u >>> 23) & 0xff) - 127 + 15) << 10) | ((u >>> 13) & 0x3ff);
}

const field = (w: number, bits: number, c: number): number => (w >>> (bits * c)) & ((1 << bits) - 1);

/** Words with every code value at every field, then random words. */
function testWords(bits: number): Uint32Array {
  const n = codesPerWordOf(bits as UnsignedCodeBits);
  const words: number[] = [];
  for (let c = 0; c < n; ++c)
    for (let x = 0; x < 1 << bits; ++x)
      words.push((x << (bits * c)) >>> 0, ~(((1 << bits) - 1 - x) << (bits * c)) >>> 0);
  const rand = rng(bits);
  for (let i = 0; i < 256; ++i) words.push(Math.floor(rand() * 2 ** 32) >>> 0);
  return Uint32Array.from(words);
}

const hostPrelude = [
  '#include <cstdio>',
  '#include <cstdlib>',
  '#define __device__',
  '#define __forceinline__ inline',
];

describe('unsigned int4 / int2 codes to f16 pairs (tensor-core KIVI groundwork)', () => {
  const dir = scratchDir('decode-quant-dq');

  it('host build: every K pair and V pair is the exact f16 of its codes', async () => {
    for (const bits of WIDTHS) {
      const n = codesPerWordOf(bits);
      const words = testWords(bits);
      const inPath = join(dir, `w${bits}.bin`);
      const outPath = join(dir, `o${bits}.bin`);
      writeFileSync(inPath, new Uint8Array(words.buffer));
      const src = join(dir, `dq${bits}.cpp`);
      writeFileSync(
        src,
        [
          ...hostPrelude,
          ...unsignedPairHelpers([bits]),
          'int main() {',
          `  const int N = ${words.length};`,
          '  static unsigned w[N];',
          `  FILE* f = fopen("${inPath}", "rb"); if (fread(w, 4, N, f) != (size_t)N) return 3; fclose(f);`,
          `  FILE* o = fopen("${outPath}", "wb");`,
          '  for (int j = 0; j < N; ++j) {',
          `    for (int i = 0; i < ${n / 2}; ++i) { const unsigned r = dmq_u${bits}k(w[j], i); fwrite(&r, 4, 1, o); }`,
          `    for (int c = 0; c < ${n}; ++c) { const unsigned r = dmq_u${bits}v(w[j], w[(j + 1) % N], c); fwrite(&r, 4, 1, o); }`,
          '  }',
          '  fclose(o);',
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const exe = join(dir, `dq${bits}`);
      expectOk(await run('g++', ['-std=c++17', '-O1', src, '-o', exe]), `g++ ${src}`);
      expectOk(await run(exe, []), exe);
      const raw = readFileSync(outPath);
      const got = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      const want: number[] = [];
      for (let j = 0; j < words.length; ++j) {
        const w = words[j]!;
        const next = words[(j + 1) % words.length]!;
        for (let i = 0; i < n / 2; ++i)
          want.push((f16Of(field(w, bits, i)) | (f16Of(field(w, bits, i + n / 2)) << 16)) >>> 0);
        for (let c = 0; c < n; ++c)
          want.push((f16Of(field(w, bits, c)) | (f16Of(field(next, bits, c)) << 16)) >>> 0);
      }
      expect(got.length, `int${bits}`).toBe(want.length);
      const bad = want.findIndex((x, i) => got[i] !== x);
      expect(bad, `int${bits}: first mismatch`).toBe(-1);
    }
  }, 120_000);

  it('nvcc builds the device path for sm_80 and sm_90a', async () => {
    const src = join(dir, 'dq.cu');
    writeFileSync(
      src,
      [
        '#include <cuda_fp16.h>',
        ...unsignedPairHelpers(WIDTHS),
        '__global__ void dq_probe(const unsigned* w, unsigned* o) {',
        '  const unsigned a = w[threadIdx.x], b = w[threadIdx.x + 32];',
        '  o[threadIdx.x] = dmq_u4k(a, threadIdx.x & 3) ^ dmq_u4v(a, b, threadIdx.x & 7) ^ dmq_u2k(a, threadIdx.x & 7) ^ dmq_u2v(a, b, threadIdx.x & 15);',
        '}',
      ].join('\n'),
    );
    for (const arch of ['sm_80', 'sm_90a']) {
      const r = await run(
        NVCC,
        [...sassOnly(arch), '-std=c++17', '-cubin', src, '-o', `${src}.${arch}.cubin`],
        undefined,
        300_000,
      );
      expectOk(r, `nvcc ${arch} ${src}`);
    }
  }, 600_000);
});
