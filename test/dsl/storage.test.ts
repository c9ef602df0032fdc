// `store` and `importance` (docs/LANGUAGE.md, "K/V storage formats"): parsing, the printer's
// round trip, the formats they declare, diagnostics for malformed declarations with their
// spans, soft keywords, and compile()'s refusal until code generators read them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { compile } from '../../src/compile.js';
import { frontend } from '../../src/dsl/index.js';
import { printProgram } from '../../src/dsl/print.js';
import { checkedFormats, type QuantFormat } from '../../src/quant/format.js';
import { formatArb } from '../quant/arbitrary.js';
import { byteMutation, seeded, tokenMutation } from './fuzz-sources.js';

const decl = (
  body: string,
  params = 'sal: i32[batch, kv_heads, kv], idx: i32[batch, kv_heads, 16]',
): string => `attention t(${params}) {\n${body}\n  mask causal\n}\n`;

/** `line:column+length message` of every diagnostic. */
function diags(source: string): string[] {
  return frontend(source, 't.attn').diagnostics.map(
    (d) => `${d.span.line}:${d.span.column}+${d.span.length} ${d.message}`,
  );
}

function formats(source: string): ReturnType<typeof checkedFormats> {
  const fe = frontend(source, 't.attn');
  expect(fe.diagnostics.map((d) => d.message)).toEqual([]);
  return checkedFormats(fe.decls[0]!);
}

/** The `store` statement of a format (what a user would write for it). */
function storeSource(target: string, f: QuantFormat, salientTensor: string): string {
  const parts = ['store', target, f.elem];
  if (f.scale) {
    const p = f.scale.per;
    const per = p.kind === 'tensor' ? 'per tensor' : `per ${p.kind}${p.group ? ` group ${p.group}` : ''}`;
    parts.push(`scale ${f.scale.dtype} ${per}`);
  }
  if (f.kind === 'int' && f.zero) parts.push(`zero ${f.zero}`);
  if (f.norm) parts.push(`norm ${f.norm}`);
  if (f.recent) parts.push(`recent ${f.recent.tokens} ${f.recent.dtype}`);
  if (f.kind === 'int' && f.salient) parts.push(`salient ${f.salient.elem} from ${salientTensor}`);
  return parts.join(' ');
}

describe('store', () => {
  it('KIVI: keys per channel in groups of tokens, values per token, recent tokens in f16', () => {
    const src = decl(
      '  store k int2 scale f16 per channel group 32 zero f16 recent 128 f16\n' +
        '  store v int2 scale f16 per token group 32 zero f16 recent 128 f16',
    );
    const recent = { tokens: 128, dtype: 'f16' };
    expect(formats(src)).toEqual({
      k: {
        kind: 'int',
        elem: 'int2',
        scale: { dtype: 'f16', per: { kind: 'channel', group: 32 } },
        zero: 'f16',
        recent,
      },
      v: {
        kind: 'int',
        elem: 'int2',
        scale: { dtype: 'f16', per: { kind: 'token', group: 32 } },
        zero: 'f16',
        recent,
      },
    });
  });

  it('ZipCache: a per-channel normalizer and salient tokens by flags or by indices', () => {
    const flags = formats(
      decl('  store kv int2 scale f16 per token zero f16 norm f16 salient int4 from sal'),
    );
    const f = {
      kind: 'int',
      elem: 'int2',
      scale: { dtype: 'f16', per: { kind: 'token' } },
      zero: 'f16',
      norm: 'f16',
    };
    expect(flags).toEqual({
      k: { ...f, salient: { elem: 'int4', by: 'flags' } },
      v: { ...f, salient: { elem: 'int4', by: 'flags' } },
      salientTensor: { k: 'sal', v: 'sal' },
    });
    const index = formats(decl('  store k int4 scale f32 per token salient int8 from idx'));
    expect(index.k).toMatchObject({ salient: { elem: 'int8', by: 'index' } });
    expect(index.v).toBeUndefined();
  });

  it('group sizes and window lengths are folded constants', () => {
    const f = formats(decl('  store k int4 scale f16 per channel group 4 * 8 recent 64 + 64 bf16'));
    expect(f.k).toMatchObject({
      scale: { per: { kind: 'channel', group: 32 } },
      recent: { tokens: 128, dtype: 'bf16' },
    });
  });

  it('fp8 with and without a scale; importance', () => {
    const src = decl('  store k e4m3 scale f32 per tensor\n  store v e5m2\n  importance normalized');
    expect(formats(src)).toEqual({
      k: { kind: 'fp8', elem: 'e4m3', scale: { dtype: 'f32', per: { kind: 'tensor' } } },
      v: { kind: 'fp8', elem: 'e5m2' },
    });
    const d = frontend(src, 't.attn').program.decls[0]!;
    expect(d.importance?.map((i) => i.variant)).toEqual(['normalized']);
  });

  it('parse → print → parse is the identity, for random formats', () => {
    const target = fc.constantFrom('k', 'v', 'kv');
    fc.assert(
      fc.property(formatArb, target, fc.constantFrom('sal', 'idx'), fc.boolean(), (f, t, tensor, imp) => {
        const body = `  ${storeSource(t, f, tensor)}${imp ? '\n  importance sum' : ''}`;
        const src = decl(body);
        const fe = frontend(src, 't.attn');
        expect(fe.diagnostics.map((d) => d.message)).toEqual([]);
        const printed = printProgram(fe.program);
        expect(printed).toBe(src);
        const again = frontend(printed, 't.attn');
        expect(printProgram(again.program)).toBe(printed);
        const fs = checkedFormats(again.decls[0]!);
        const by = tensor === 'sal' ? 'flags' : 'index';
        const want = f.kind === 'int' && f.salient ? { ...f, salient: { ...f.salient, by } } : f;
        for (const x of t === 'kv' ? ['k', 'v'] : [t]) expect(fs[x as 'k' | 'v']).toEqual(want);
      }),
      process.env['CI'] ? { seed: 12, numRuns: 200 } : { numRuns: 200 },
    );
  });

  it('the LANGUAGE.md examples check cleanly and print back', () => {
    const doc = readFileSync('docs/LANGUAGE.md', 'utf8');
    const section = doc.slice(doc.indexOf('## K/V storage formats'));
    const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const fe = frontend(block, 'LANGUAGE.md');
    expect(fe.diagnostics).toEqual([]);
    expect(fe.decls.map((d) => d.decl.name)).toEqual(['kivi', 'zipcache', 'fp8_cache']);
    expect(printProgram(frontend(printProgram(fe.program), 'x').program)).toBe(printProgram(fe.program));
  });

  it('its words stay usable as names', () => {
    const src =
      'attention t(scale: f32 = 2.0, norm: int = 1, group: int = 2, per: int = 3, zero: int = 0) {\n' +
      '  let store = q - k\n  let recent = store < group * per + norm + zero\n  let importance = recent\n' +
      '  let salient = 1\n  mask importance && salient > 0\n  score score * scale\n}\n';
    expect(diags(src)).toEqual([]);
  });
});

describe('store diagnostics', () => {
  it.each([
    ['  store k int3 scale f16 per token', '2:11+4 unknown element type `int3`'],
    ['  store k f16', '2:11+3 unknown element type `f16`'],
    ['  store q int8 scale f16 per token', '2:9+1 unknown cache `q`'],
    ['  store k int4', '2:11+4 `int4` codes need a `scale` clause'],
    [
      '  store k int2 scale f16 per token zero',
      '2:40+1 expected a type like `int4`, `e4m3`, `f16` or `f32`, found `mask`',
    ],
    ['  store k e4m3 zero f16', '2:16+8 `e4m3` codes take no zero point'],
    [
      '  store k int4 scale f16 per token group 12',
      '2:42+2 a group of 12 channels splits the 32-bit words of `int4` codes (8 per word)',
    ],
    ['  store k int4 scale f16 per channel group 0', '2:44+1 a group size must be at least 1, found 0'],
    ['  store k int4 scale f16 per tensor group 4', '2:43+1 `per tensor` takes no `group`'],
    ['  store k int4 scale f16 per tokn', '2:30+4 unknown scale granularity `tokn`'],
    ['  store k int4 scale f8 per token', '2:22+2 unknown scale dtype `f8`'],
    [
      '  store k int4 scale f16 token',
      '2:26+5 expected `per` and what one scale covers (`tensor`, `token` or `channel`), found `token`',
    ],
    [
      '  store k int2 scale f16 per channel recent 128 f32',
      '2:49+3 recent tokens are kept in 16 bits, found `f32`',
    ],
    [
      '  store k int2 scale f16 per channel recent 128 int8',
      '2:49+4 unknown dtype for the recent tokens `int8`',
    ],
    ['  store k int2 scale f16 per channel norm f16', '2:38+8 a normalizer needs per-token scales'],
    [
      '  store k int4 scale f16 per token salient int2 from sal',
      '2:44+4 salient tokens must be stored wider than the others, found `int2`',
    ],
    [
      '  store k e4m3 scale f16 per token salient int8 from sal',
      '2:44+4 salient tokens need int codes for both the tensor and the salient tokens',
    ],
    [
      '  store k int2 scale f16 per channel salient int4 from sal',
      '2:30+7 salient tokens need per-token scales',
    ],
    ['  store k int2 scale f16 per token salient int4 from sl', '2:54+2 unknown tensor `sl`'],
    ['  store k int4 scale f16 per token scale f32 per channel', '2:36+5 `scale` is given twice'],
    ['  store kv int8 scale f32 per tensor\n  store v e5m2', '3:9+1 the storage of `v` is given twice'],
    ['  importance avg', '2:14+3 unknown importance variant `avg`'],
    ['  importance sum\n  importance normalized', '3:3+10 only one `importance` statement is allowed'],
  ])('%s', (body, want) => {
    expect(diags(decl(body))).toEqual([want]);
  });

  it('a recent window must be a constant; salient tensors must be flags or indices', () => {
    const params = 'n: int = 4, f: f32[kv], w: i32[kv]';
    expect(diags(decl('  store k int2 scale f16 per channel recent n f16', params))).toEqual([
      '2:45+1 the number of recent tokens must be a constant int',
    ]);
    expect(diags(decl('  store k int2 scale f16 per token salient int4 from w', params))[0]).toMatch(
      /^2:54\+1 `salient … from` takes `i32\[batch, kv_heads, kv\]` \(flags\) or `i32\[batch, kv_heads, N\]` \(token indices\), but `w` is i32\[kv\]/,
    );
  });

  it('a parameter named like the importance output clashes with it', () => {
    expect(diags(decl('  importance sum', 'importance: f32[kv]'))).toEqual([
      '1:13+10 parameter `importance` clashes with the output of `importance`',
    ]);
    expect(diags(decl('  mask importance[k] > 0.0', 'importance: f32[kv]'))).toEqual([]);
  });

  it('an expression cut short before `store` or `importance` is reported where it ends', () => {
    expect(diags('attention a() {\n  mask causal &&\n  store k int8 scale f16 per token\n}')).toEqual([
      '2:17+1 expected an expression, found `store`',
    ]);
    expect(diags('attention a() {\n  mask causal &&\n  importance sum\n}')).toEqual([
      '2:17+1 expected an expression, found `importance`',
    ]);
  });

  it('a broken statement does not hide the next one', () => {
    expect(
      diags(decl('  store k int3 scale f16 per token\n  store v int4 scale f16 per token group 4')),
    ).toEqual([
      '2:11+4 unknown element type `int3`',
      '3:42+1 a group of 4 channels splits the 32-bit words of `int4` codes (8 per word)',
    ]);
  });
});

describe('compile()', () => {
  it('compiles a storage format for WGSL and for CUDA, token selection over it included', () => {
    const src = decl('  store k int8 scale f16 per token\n  store v int8 scale f16 per token');
    expect(compile(src, { target: 'wgsl' }).kernel.formats.k.kind).toBe('quant');
    expect(compile(src, { target: 'cuda' }).kernel.formats.k.kind).toBe('quant');
    const routed = decl('  store kv int8 scale f16 per token\n  select topk(8) by q . k');
    expect(compile(routed, { target: 'wgsl' }).kernel.formats.k.kind).toBe('quant');
    expect(compile(routed, { target: 'cuda' }).kernel.formats.k.kind).toBe('quant');
  });

  it('compiles the importance statement into the kernel output (the option overrides it)', () => {
    for (const target of ['wgsl', 'cuda'] as const) {
      const sum = compile(decl('  importance sum'), { target });
      expect(sum.kernel.outputs).toEqual({ lse: true, importance: 'sum' });
      expect(sum.artifact.bindings.map((b) => b.name)).toContain('importance');
      const normalized = compile(decl('  importance sum'), { target, importance: 'normalized' });
      expect(normalized.kernel.outputs.importance).toBe('normalized');
    }
    expect(compile(decl(''), { target: 'wgsl' }).kernel.outputs.importance).toBeUndefined();
  });

  it('the examples in examples/quant check cleanly and compile for WGSL', () => {
    const files = readdirSync('examples/quant').filter((f) => f.endsWith('.attn'));
    expect(files.sort()).toEqual(['kivi.attn', 'zipcache.attn']);
    for (const f of files) {
      const src = readFileSync(`examples/quant/${f}`, 'utf8');
      const fe = frontend(src, f);
      expect(fe.diagnostics).toEqual([]);
      expect(printProgram(frontend(printProgram(fe.program), f).program)).toBe(printProgram(fe.program));
      expect(compile(src, { target: 'wgsl', file: f }).artifact.code).toContain('fn k_dequant');
    }
  });
});

describe('store fuzz', () => {
  it('mutated storage programs never throw; diagnostics point inside the source; clean ones print back', () => {
    const seeds = ['kivi.attn', 'zipcache.attn'].map((f) => readFileSync(`examples/quant/${f}`, 'utf8'));
    seeds.push(
      decl(
        '  store k e4m3 scale f32 per tensor\n  store v int4 scale f32 per token group 8 zero f32\n  importance sum',
      ),
    );
    const seed = fc.readConfigureGlobal().seed ?? Date.now();
    const rng = seeded(seed);
    for (let i = 0; i < 600; i++) {
      const base = seeds[i % seeds.length]!;
      const src = i % 2 === 0 ? tokenMutation(rng, base) : byteMutation(rng, base);
      const where = `seed ${seed}, case ${i}:\n${src}`;
      const fe = frontend(src, 'f.attn');
      for (const d of fe.diagnostics) {
        const ok = d.span.offset >= 0 && d.span.offset + d.span.length <= src.length + 1;
        if (!ok) throw new Error(`span outside the source: ${JSON.stringify(d.span)} in ${where}`);
      }
      if (fe.diagnostics.length > 0) continue;
      const printed = printProgram(fe.program);
      const again = frontend(printed, 'f.attn');
      if (again.diagnostics.length > 0 || printProgram(again.program) !== printed)
        throw new Error(`print round trip broke for ${where}\nprinted:\n${printed}`);
    }
  });
});
