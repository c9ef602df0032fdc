// `qk int8 [smooth k]` (docs/LANGUAGE.md, "INT8 Q·Kᵀ"): parsing, the printer's round trip, the
// option it gives the IR, positioned diagnostics for malformed statements, `qk` and `smooth` as
// names elsewhere, and the compile-time refusals (targets, dtypes, statements it does not run with).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileBackward, compileCudaBackward, compileCudaBackwardMma } from '../src/backward.js';
import { compile } from '../src/compile.js';
import { CompileError } from '../src/diagnostics.js';
import { frontend } from '../src/dsl/index.js';
import { printProgram } from '../src/dsl/print.js';
import { lowerDecl } from '../src/ir/lower.js';

const decl = (body: string, params = ''): string => `attention t(${params}) {\n${body}\n  mask causal\n}\n`;

/** `line:column+length message` of every diagnostic. */
function diags(source: string): string[] {
  return frontend(source, 't.attn').diagnostics.map(
    (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message}`,
  );
}

function refusal(src: string, options: Parameters<typeof compile>[1]): string {
  try {
    compile(src, options);
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError);
    const d = (e as CompileError).diagnostics[0]!;
    return `${d.span.line}:${d.span.column}+${d.span.length} ${d.message}`;
  }
  return 'compiled';
}

describe('qk int8 [smooth k]', () => {
  it('parses, prints back and reaches the IR as qkInt8', () => {
    for (const [stmt, smoothK] of [
      ['qk int8', false],
      ['qk int8 smooth k', true],
    ] as const) {
      const fe = frontend(decl(`  ${stmt}`), 't.attn');
      expect(fe.diagnostics).toEqual([]);
      const d = fe.decls[0]!;
      expect(d.decl.qk).toEqual([expect.objectContaining({ kind: 'qk', elem: 'int8' })]);
      expect(d.decl.qk![0]!.span.length).toBe(stmt.length);
      const printed = printProgram(fe.program!);
      expect(printed).toContain(`  ${stmt}\n`);
      expect(frontend(printed, 't.attn').diagnostics).toEqual([]);
      expect(lowerDecl(d.decl, d.defaults).qkInt8).toEqual({ smoothK });
    }
    const plain = frontend(decl(''), 't.attn').decls[0]!;
    expect(plain.decl.qk).toBeUndefined();
    expect('qkInt8' in lowerDecl(plain.decl, plain.defaults)).toBe(false);
  });

  it('malformed statements: each reported once, at its word', () => {
    expect(diags(decl('  qk int7'))).toEqual(['2:6+4 unknown Q·Kᵀ element type `int7`']);
    expect(diags(decl('  qk e4m3 smooth k'))).toEqual(['2:6+4 unknown Q·Kᵀ element type `e4m3`']);
    expect(diags(decl('  qk int8 smooth q'))).toEqual(['2:18+1 cannot smooth `q`']);
    expect(diags(decl('  qk int8 smooth v'))).toEqual(['2:18+1 cannot smooth `v`']);
    const hint = frontend(decl('  qk int8 smooth q'), 't.attn').diagnostics[0]!.hint;
    expect(hint).toContain('does not cancel in the softmax');
    expect(diags(decl('  qk int8 smooth'))).toEqual([
      '2:17+1 expected `int8` after `qk`, or `k` after `smooth`, found `mask`',
    ]);
    // A missing word is reported just after the last one read, as for the other statements.
    expect(diags(decl('  qk'))).toEqual([
      '2:5+1 expected `int8` after `qk`, or `k` after `smooth`, found `mask`',
    ]);
  });

  it('one qk statement, and K not also a quantized cache', () => {
    expect(diags(decl('  qk int8\n  qk int8 smooth k'))).toEqual([
      '3:3+2 only one `qk` statement is allowed',
    ]);
    expect(diags(decl('  store kv int8 scale f32 per token\n  qk int8 smooth k'))).toEqual([
      '3:3+16 `qk int8` needs K in 16 bits, but a `store` statement quantizes it',
    ]);
    expect(diags(decl('  qk int8\n  store k int4 scale f16 per token'))).toEqual([
      '2:3+7 `qk int8` needs K in 16 bits, but a `store` statement quantizes it',
    ]);
    // A quantized V leaves K alone.
    expect(diags(decl('  qk int8\n  store v int8 scale f32 per token'))).toEqual([]);
  });

  it('`qk` and `smooth` stay names elsewhere', () => {
    expect(diags(decl('  let qk = 3\n  let smooth = qk + 1\n  mask k < smooth', 'x: int = 1'))).toEqual([]);
    expect(diags(decl('  mask k < qk', 'qk: int = 4'))).toEqual([]);
  });

  it('compile: a CUDA prefill option on 16-bit storage; refused at the statement otherwise', () => {
    const src = decl('  qk int8 smooth k');
    expect(refusal(src, { target: 'wgsl', headDim: 64 })).toBe(
      '2:3+16 `qk int8` is a CUDA prefill option; wgsl: not yet',
    );
    expect(refusal(src, { target: 'cuda', headDim: 64, dtype: 'f32' })).toBe(
      '2:3+16 `qk int8` quantizes 16-bit Q and K: compile with dtype f16 or bf16, not f32',
    );
    expect(refusal(decl('  qk int8\n  select topk(8) by q . k'), { target: 'cuda', headDim: 64 })).toBe(
      '2:3+7 `qk int8` with the routing statement on line 3: not yet',
    );
    expect(refusal(decl('  qk int8\n  importance sum'), { target: 'cuda', headDim: 64 })).toBe(
      '2:3+7 `qk int8` with the importance output (line 3): not yet',
    );
    expect(refusal(decl('  qk int8'), { target: 'cuda', headDim: 2048 })).toBe(
      '2:3+7 `qk int8` needs headDim at most 1024, found 2048',
    );
  });

  it('CUDA: the s8 wgmma-ws kernel by default at D = 128 on sm_90a, else the SIMT engine, without the decode path; other tensor-core engines refused', () => {
    const src = decl('  qk int8 smooth k');
    const c = compile(src, { target: 'cuda', headDim: 128, dtype: 'bf16' });
    expect(c.kernel.qkInt8).toEqual({ smoothK: true });
    expect(c.kernel.schedule.engine).toBe('wgmma-ws');
    expect(c.artifact.code).toContain('.s32.s8.s8');
    expect(c.artifact.code).not.toContain('::dec::wanted');
    const simt = compile(src, { target: 'cuda', headDim: 64, dtype: 'bf16' });
    expect(simt.kernel.schedule.engine).toBe('simt');
    expect(simt.artifact.code).toContain('qk_block_max');
    expect(simt.artifact.code).not.toContain('::dec::wanted');
    const plain = compile(decl(''), {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { engine: 'simt' },
    });
    expect(plain.artifact.code).not.toContain('qk_');
    expect(plain.artifact.code).toContain('::dec::wanted');
    expect(() => compile(src, { target: 'cuda', headDim: 128, schedule: { engine: 'wgmma' } })).toThrow(
      'qk int8 runs on the simt and wgmma-ws engines; wgmma: not yet',
    );
    // wgmma-ws: the s8 tensor-core kernel (test/cuda/int8qk-wgmma.test.ts).
    const ws = compile(src, { target: 'cuda', headDim: 128, schedule: { engine: 'wgmma-ws' } });
    expect(ws.kernel.schedule.engine).toBe('wgmma-ws');
    expect(ws.artifact.code).toContain('.s32.s8.s8');
    // No backward differentiates int8 scores: every backward entry is refused (f32 or WGSL or a
    // tensor-core forward).
    expect(() => compileCudaBackward(src, { headDim: 64 })).toThrow('dtype f16 or bf16');
    expect(() => compileCudaBackwardMma(src, { headDim: 64, dtype: 'bf16' })).toThrow('mma: not yet');
    expect(() => compileBackward(src, { headDim: 64 })).toThrow('wgsl: not yet');
  });

  it('the LANGUAGE.md example checks cleanly and prints back', () => {
    const doc = readFileSync('docs/LANGUAGE.md', 'utf8');
    const section = doc.slice(doc.indexOf('## INT8 Q·Kᵀ'));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const fe = frontend(block, 'LANGUAGE.md');
    expect(fe.diagnostics).toEqual([]);
    expect(fe.decls[0]!.decl.qk?.[0]?.smoothK).toBeDefined();
    expect(printProgram(frontend(printProgram(fe.program), 'x').program)).toBe(printProgram(fe.program));
  });
});
