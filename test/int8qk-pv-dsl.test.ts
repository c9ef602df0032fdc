// `pv e4m3 [smooth v]` (docs/LANGUAGE.md, "FP8 P·V"): parsing, the printer's round trip, the
// option it gives the IR, positioned diagnostics for malformed statements, `pv` as a name
// elsewhere, the checker's refusal without `qk int8`, and the compile-time refusals (targets,
// dtypes, engines other than wgmma-ws, head dims other than 128), at the statement.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileBackward, compileCudaBackward } from '../src/backward.js';
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

describe('pv e4m3 [smooth v]', () => {
  it('parses, prints back and reaches the IR as pvE4m3, next to qkInt8', () => {
    for (const [stmt, smoothV] of [
      ['pv e4m3', false],
      ['pv e4m3 smooth v', true],
    ] as const) {
      const fe = frontend(decl(`  qk int8 smooth k\n  ${stmt}`), 't.attn');
      expect(fe.diagnostics).toEqual([]);
      const d = fe.decls[0]!;
      expect(d.decl.pv).toEqual([expect.objectContaining({ kind: 'pv', elem: 'e4m3' })]);
      expect(d.decl.pv![0]!.span.length).toBe(stmt.length);
      const printed = printProgram(fe.program!);
      expect(printed).toContain(`  qk int8 smooth k\n  ${stmt}\n`);
      expect(frontend(printed, 't.attn').diagnostics).toEqual([]);
      const ir = lowerDecl(d.decl, d.defaults);
      expect(ir.pvE4m3).toEqual({ smoothV });
      expect(ir.qkInt8).toEqual({ smoothK: true });
    }
    const plain = frontend(decl('  qk int8'), 't.attn').decls[0]!;
    expect(plain.decl.pv).toBeUndefined();
    expect('pvE4m3' in lowerDecl(plain.decl, plain.defaults)).toBe(false);
  });

  it('malformed statements: each reported once, at its word', () => {
    expect(diags(decl('  pv e5m2'))).toEqual(['2:6+4 unknown P·V element type `e5m2`']);
    expect(frontend(decl('  pv e5m2'), 't.attn').diagnostics[0]!.hint).toContain('only e4m3 P·V');
    expect(diags(decl('  pv e4m2'))).toEqual(['2:6+4 unknown P·V element type `e4m2`']);
    expect(frontend(decl('  pv e4m2'), 't.attn').diagnostics[0]!.hint).toContain('e4m3');
    expect(diags(decl('  pv e4m3 smooth p'))).toEqual(['2:18+1 cannot smooth `p` in `pv`']);
    expect(frontend(decl('  pv e4m3 smooth p'), 't.attn').diagnostics[0]!.hint).toContain('no offset');
    expect(diags(decl('  pv e4m3 smooth k'))).toEqual(['2:18+1 cannot smooth `k` in `pv`']);
    expect(diags(decl('  pv e4m3 smooth'))).toEqual([
      '2:17+1 expected `e4m3` after `pv`, or `v` after `smooth`, found `mask`',
    ]);
    expect(diags(decl('  pv'))).toEqual([
      '2:5+1 expected `e4m3` after `pv`, or `v` after `smooth`, found `mask`',
    ]);
  });

  it('one pv statement, and V not also a quantized cache', () => {
    const qk = '  qk int8\n';
    expect(diags(decl(`${qk}  pv e4m3\n  pv e4m3 smooth v`))).toEqual([
      '4:3+2 only one `pv` statement is allowed',
    ]);
    // `kv` quantizes K too, which `qk int8` reads in 16 bits: both statements say so.
    expect(diags(decl(`${qk}  store kv int8 scale f32 per token\n  pv e4m3 smooth v`))).toEqual([
      '2:3+7 `qk int8` needs K in 16 bits, but a `store` statement quantizes it',
      '4:3+16 `pv e4m3` needs V in 16 bits, but a `store` statement quantizes it',
    ]);
    expect(diags(decl(`${qk}  pv e4m3\n  store v int4 scale f16 per token`))).toEqual([
      '3:3+7 `pv e4m3` needs V in 16 bits, but a `store` statement quantizes it',
    ]);
    // A quantized K leaves V alone: only `qk int8`, which reads K, objects.
    expect(diags(decl(`${qk}  pv e4m3\n  store k int8 scale f32 per token`))).toEqual([
      '2:3+7 `qk int8` needs K in 16 bits, but a `store` statement quantizes it',
    ]);
  });

  it('`pv e4m3` without `qk int8`: refused by the checker at the statement, on every target', () => {
    const alone =
      '2:3+16 `pv e4m3` runs after `qk int8` (SageAttention2): add `qk int8 smooth k`; alone: not yet';
    expect(diags(decl('  pv e4m3 smooth v'))).toEqual([alone]);
    // After the statement too: `qk` may follow `pv` in the body.
    expect(diags(decl('  pv e4m3 smooth v\n  qk int8 smooth k'))).toEqual([]);
    // A `qk` that does not build has its own error; the pairing rule does not repeat it.
    expect(diags(decl('  qk int9 smooth k\n  pv e4m3'))).toEqual(['2:6+4 unknown Q·Kᵀ element type `int9`']);
    // compile reports the checker's error, whatever the target, dtype or entry.
    for (const target of ['wgsl', 'cuda'] as const)
      expect(refusal(decl('  pv e4m3 smooth v'), { target, headDim: 128, dtype: 'f32' })).toBe(alone);
    expect(() => compileCudaBackward(decl('  pv e4m3 smooth v'), { headDim: 64 })).toThrow(
      'runs after `qk int8`',
    );
  });

  it('`pv` stays a name elsewhere', () => {
    expect(diags(decl('  let pv = 3\n  mask k < pv'))).toEqual([]);
    expect(diags(decl('  mask k < pv', 'pv: int = 4'))).toEqual([]);
  });

  it('compile: wgmma-ws at headDim 128; refused at the statement otherwise, for the first reason a user would fix', () => {
    const src = decl('  qk int8 smooth k\n  pv e4m3 smooth v');
    expect(refusal(src, { target: 'wgsl', headDim: 64 })).toBe(
      '2:3+16 `qk int8` is a CUDA prefill option; wgsl: not yet',
    );
    expect(refusal(src, { target: 'cuda', headDim: 128, dtype: 'f32' })).toBe(
      '2:3+16 `qk int8` quantizes 16-bit Q and K: compile with dtype f16 or bf16, not f32',
    );
    // qk int8's default engine (SIMT) has no e4m3 P·V: wgmma-ws is asked for, at headDim 128.
    expect(refusal(src, { target: 'cuda', headDim: 128, dtype: 'bf16' })).toBe(
      "3:3+16 `pv e4m3` runs on the wgmma-ws engine only: compile with schedule { engine: 'wgmma-ws' }",
    );
    expect(refusal(src, { target: 'cuda', headDim: 128, schedule: { engine: 'simt' } })).toBe(
      "3:3+16 `pv e4m3` runs on the wgmma-ws engine only: compile with schedule { engine: 'wgmma-ws' }, not simt",
    );
    expect(refusal(src, { target: 'cuda', headDim: 64, schedule: { engine: 'wgmma-ws' } })).toBe(
      '3:3+16 `pv e4m3` needs headDim 128, found 64',
    );
    const ws = compile(src, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { engine: 'wgmma-ws' },
    });
    expect(ws.kernel.pvE4m3).toEqual({ smoothV: true });
    expect(ws.artifact.code).toContain('.f32.e4m3.e4m3');
    // No backward differentiates e4m3 P·V: the entries compile through the same refusals.
    expect(() => compileCudaBackward(src, { headDim: 64 })).toThrow('`qk int8` quantizes 16-bit Q and K');
    expect(() => compileBackward(src, { headDim: 64 })).toThrow('wgsl: not yet');
  });

  it('the LANGUAGE.md example checks cleanly, prints back and compiles on wgmma-ws', () => {
    const doc = readFileSync('docs/LANGUAGE.md', 'utf8');
    const section = doc.slice(doc.indexOf('## FP8 P·V'));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(block).toContain('pv e4m3 smooth v');
    const fe = frontend(block, 'LANGUAGE.md');
    expect(fe.diagnostics).toEqual([]);
    expect(printProgram(fe.program!)).toBe(block);
    const c = compile(block, {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { engine: 'wgmma-ws' },
    });
    expect(c.kernel.pvE4m3).toEqual({ smoothV: true });
  });
});
