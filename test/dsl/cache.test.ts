// `cache paged N` (docs/LANGUAGE.md, "Paged and strided caches"): parsing, the printer's round
// trip, the layout it gives the kernel, positioned diagnostics for malformed statements, `cache`
// as a name elsewhere, and the CUDA engines and args a paged kernel gets.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { CompileError } from '../../src/diagnostics.js';
import { frontend } from '../../src/dsl/index.js';
import { printProgram } from '../../src/dsl/print.js';

const decl = (body: string, params = ''): string => `attention t(${params}) {\n${body}\n  mask causal\n}\n`;

/** `line:column+length message` of every diagnostic. */
function diags(source: string): string[] {
  return frontend(source, 't.attn').diagnostics.map(
    (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message}`,
  );
}

describe('cache paged N', () => {
  it('parses, prints back and reaches the kernel as formats.paged', () => {
    const src = decl('  cache paged 64');
    const fe = frontend(src, 't.attn');
    expect(fe.diagnostics).toEqual([]);
    expect(fe.decls[0]!.decl.cache).toEqual([
      expect.objectContaining({ kind: 'cache', layout: 'paged', pageSize: 64 }),
    ]);
    const printed = printProgram(fe.program!);
    expect(printed).toContain('  cache paged 64\n');
    expect(frontend(printed, 't.attn').diagnostics).toEqual([]);
    const c = compile(src, { target: 'cuda', headDim: 64 });
    expect(c.kernel.formats.paged).toEqual({ pageSize: 64 });
    expect(compile(decl(''), { target: 'cuda', headDim: 64 }).kernel.formats.paged).toBeUndefined();
  });

  it('page sizes: powers of two from 1 to 65536, each refused one at its literal', () => {
    for (const n of [1, 2, 16, 65536]) expect(diags(decl(`  cache paged ${n}`))).toEqual([]);
    expect(diags(decl('  cache paged 48'))).toEqual([
      '2:15+2 a page size must be a power of two from 1 to 65536, found 48',
    ]);
    expect(diags(decl('  cache paged 0'))).toEqual([
      '2:15+1 a page size must be a power of two from 1 to 65536, found 0',
    ]);
    expect(diags(decl('  cache paged 131072'))).toEqual([
      '2:15+6 a page size must be a power of two from 1 to 65536, found 131072',
    ]);
  });

  it('an unknown layout word gets a did-you-mean; a missing size is a parse error', () => {
    const fe = frontend(decl('  cache pagd 64'), 't.attn');
    expect(fe.diagnostics.map((d) => [d.span.line, d.span.column, d.message, d.hint])).toEqual([
      [2, 9, 'unknown cache layout `pagd`', 'did you mean `paged`?'],
    ]);
    const missing = frontend(decl('  cache paged'), 't.attn').diagnostics;
    expect(missing.length).toBeGreaterThan(0);
    expect(missing[0]!.message).toContain('page size');
  });

  it('one cache statement; with store, per-channel token groups that divide a page', () => {
    expect(diags(decl('  cache paged 16\n  cache paged 32'))).toEqual([
      '3:3+5 only one `cache` statement is allowed',
    ]);
    expect(diags(decl('  store kv int8 scale f32 per token\n  cache paged 16'))).toEqual([]);
    expect(diags(decl('  store k int2 scale f16 per channel group 16 zero f16\n  cache paged 16'))).toEqual(
      [],
    );
    // A group's scale lives in its tokens' page (docs/LANGUAGE.md, "Paged quantized caches").
    expect(diags(decl('  store k int2 scale f16 per channel group 32 zero f16\n  cache paged 16'))).toEqual([
      '2:30+16 a page of 16 rows splits the groups of 32 tokens of `per channel group 32`',
    ]);
    expect(diags(decl('  cache paged 64\n  store v int4 scale f16 per channel group 3'))).toEqual([
      '3:30+15 a page of 64 rows splits the groups of 3 tokens of `per channel group 3`',
    ]);
    // Routing, selection and importance are decided per target (ir/storage-support.ts).
    expect(diags(decl('  cache paged 16\n  select topk(8) by q . k'))).toEqual([]);
    expect(diags(decl('  cache paged 16\n  importance sum'))).toEqual([]);
  });

  it('CUDA and WGSL run selection, ranked block routing and importance over a paged cache', () => {
    const refusal = (src: string, target: 'cuda' | 'wgsl'): string => {
      try {
        compile(src, { target, headDim: 64 });
      } catch (e) {
        expect(e).toBeInstanceOf(CompileError);
        const d = (e as CompileError).diagnostics[0]!;
        return `${d.span.line}:${d.span.column} ${d.message}`;
      }
      return 'compiled';
    };
    const select = decl('  cache paged 16\n  select topk(8) by q . k');
    const importance = decl('  cache paged 16\n  importance sum');
    const blocks = decl('  cache paged 16\n  route blocks(16) topk(2) by mean(q) . mean(k)');
    expect(refusal(select, 'cuda')).toBe('compiled');
    expect(refusal(importance, 'cuda')).toBe('compiled');
    // Its pooling pass reads through the block table too (test/cuda/paged-route-emu.test.ts).
    expect(refusal(blocks, 'cuda')).toBe('compiled');
    // WGSL's passes read through kv-load.ts's address functions (test/wgsl/paged.test.ts).
    expect(refusal(select, 'wgsl')).toBe('compiled');
    expect(refusal(importance, 'wgsl')).toBe('compiled');
    expect(refusal(blocks, 'wgsl')).toBe('compiled');
    // A paged quantized cache runs on both (test/cuda/paged-quant-emu, test/wgsl/paged-quant).
    const quant = decl('  cache paged 16\n  store kv int8 scale f32 per token');
    expect(refusal(quant, 'cuda')).toBe('compiled');
    expect(refusal(quant, 'wgsl')).toBe('compiled');
  });

  it('`cache` stays a name elsewhere', () => {
    expect(diags(decl('  let cache = 3\n  mask k < cache + q', 'paged: int = 1'))).toEqual([]);
  });

  it('CUDA: a paged kernel takes block_table and max_pages, never the TMA engine', () => {
    const src = decl('  cache paged 64');
    const c = compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16' });
    expect(c.kernel.schedule.engine).not.toBe('wgmma-ws');
    const manifest = JSON.parse(c.artifact.files!['t.json']!);
    const fields = manifest.args.fields.map((f: { field: string; ctype: string }) => `${f.field}:${f.ctype}`);
    expect(fields).toEqual(
      expect.arrayContaining(['block_table:ptr', 'max_pages:i32', 'k_stride_b:i64', 'v_stride_n:i64']),
    );
    const header = c.artifact.files!['t.h']!;
    expect(header).toContain('const int* block_table;');
    expect(header).toContain('long long k_stride_h;');
    expect(c.artifact.code).toContain('a->max_pages = (Nk + 63) / 64;');
    expect(() =>
      compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16', schedule: { engine: 'wgmma-ws' } }),
    ).toThrow(CompileError);
  });

  it('CUDA: every kernel takes K/V strides, packed by args_init', () => {
    const c = compile(decl(''), { target: 'cuda', headDim: 64, dtype: 'f16' });
    const code = c.artifact.code;
    expect(code).toContain('a->k_stride_h = (long long)Nk * 64;');
    expect(code).toContain('a->v_stride_b = (long long)Hkv * (long long)Nk * 64;');
    expect(code).toContain('its rows would overlap');
  });
});

describe('cache paged N on WGSL', () => {
  it('binds the block table and reads K/V rows through it (codegen/wgsl/kv-load.ts)', () => {
    const { artifact } = compile(decl('  cache paged 16'), { target: 'wgsl', headDim: 16 });
    expect(artifact.kvRows).toEqual({ align: 1, pageSize: 16 });
    expect(artifact.bindings.find((b) => b.role === 'block_table')).toMatchObject({
      name: 'block_table',
      dtype: 'i32',
      shape: ['B', 'max_pages'],
    });
    expect(artifact.uniforms.map((f) => f.name)).toContain('max_pages');
    expect(artifact.code).toContain('const KV_PAGE_SHIFT: u32 = 4u;');
    expect(artifact.code).toContain('k_buf[k_row(kv_b, kv_h, k0 + e / HEAD_DIM) + e % HEAD_DIM]');
  });
});
