// Structural checks of rendered CUDA artifacts (no compiler needed): every hand kernel renders,
// tile classification shows up as the right code, helpers appear only when used, the manifest
// and header describe the same launcher.
import { describe, expect, it } from 'vitest';
import { cudaScheduleProblem, renderCuda } from '../../src/codegen/cuda/index.js';
import { compile } from '../../src/compile.js';
import { Graph } from '../../src/ir/graph.js';
import type { AttentionKernel } from '../../src/ir/kernel.js';
import { Op } from '../../src/ir/ops.js';
import { dtypes, handKernels, meta, render, scheduleAndFormats, testScheduleWith } from './support.js';

const kernelBody = (code: string): string => code.slice(code.indexOf('_attention(const Args a'));

describe('cuda backend: rendering', () => {
  for (const [name, make] of Object.entries(handKernels)) {
    for (const dtype of dtypes) {
      it(`renders ${name} (${dtype})`, () => {
        const a = render(make(testScheduleWith({ dtype })));
        expect(a.target).toBe('cuda');
        expect(a.code).toContain(
          `extern "C" int attnc_${name}_launch(const AttncArgs_${name}* args, cudaStream_t stream)`,
        );
        expect(a.code).toContain(`extern "C" const char* attnc_${name}_last_error(void)`);
        expect(a.code).toContain(
          { f32: 'typedef float T;', f16: 'typedef __half T;', bf16: 'typedef __nv_bfloat16 T;' }[dtype],
        );
        const header = a.files?.[`${name}.h`];
        expect(header).toContain(`typedef struct AttncArgs_${name} {`);
        expect(header).toContain(
          `int attnc_${name}_launch(const AttncArgs_${name}* args, cudaStream_t stream);`,
        );
        const manifest = JSON.parse(a.files?.[`${name}.json`] ?? '{}');
        expect(manifest.functions.launch).toBe(`attnc_${name}_launch`);
        expect(manifest.schedule.dtype).toBe(dtype);
        expect(a.bindings.map((b) => b.index)).toEqual(a.bindings.map((_, i) => i));
        expect(a.entryPoints.at(-1)?.role).toBe('attention');
        expect(a.entryPoints.at(-1)?.grid).toEqual(['cdiv(Nq, 16)', 'H', 'B']);
      });
    }
  }

  it('is deterministic', () => {
    const k = handKernels.document!();
    expect(render(k).code).toBe(render(k).code);
  });

  it('a statically full kernel contains no predicate or classification code', () => {
    const a = render(handKernels.full!());
    const body = kernelBody(a.code);
    expect(body).not.toContain('predicate');
    expect(body).not.toContain('can_true');
    expect(body).not.toContain('can_false');
    expect(body).not.toContain('tile(Flag<true>');
    expect(body).toContain('tile(Flag<false>{}, Flag<false>{}, kt)');
    // No helper is needed either.
    expect(a.code).not.toMatch(/floordiv_i|\bload_(?!tile)|range_(min|max)_/);
  });

  it('a dynamic kernel skips empty tiles before loading and branches between full and partial', () => {
    const body = kernelBody(render(handKernels.sliding_window!()).code);
    const skip = body.indexOf('if (!can_true) continue;');
    expect(skip).toBeGreaterThan(0);
    expect(skip).toBeLessThan(body.indexOf('load_tile<D>('));
    expect(body).toContain('if (can_false) {');
    expect(body).toContain('tile(Flag<true>{}, Flag<false>{}, kt)');
    expect(body).toContain('tile(Flag<false>{}, Flag<false>{}, kt)');
    expect(body).toContain('/* predicate */');
  });

  it('static partial and empty classifiers resolve at codegen time', () => {
    const base = handKernels.sliding_window!();
    const partial = kernelBody(render({ ...base, tiles: { kind: 'static', value: 'partial' } }).code);
    expect(partial).not.toContain('can_true');
    expect(partial).toContain('tile(Flag<true>{}, Flag<false>{}, kt)');
    expect(partial).not.toContain('tile(Flag<false>');
    const empty = kernelBody(render({ ...base, tiles: { kind: 'static', value: 'empty' } }).code);
    expect(empty).not.toContain('load_tile<D>(');
    expect(empty).not.toContain('auto tile =');
    expect(empty).toContain('-INFINITY');
  });

  it('summaries: a kernel per tensor, launched before attention, read through range helpers', () => {
    const a = render(handKernels.document!());
    expect(a.code).toContain('attnc_document_summary_doc(const Args a)');
    const launcher = a.code.slice(a.code.indexOf('extern "C" int attnc_document_launch'));
    expect(launcher.indexOf('attnc_document_summary_doc<<<')).toBeGreaterThan(0);
    expect(launcher.indexOf('attnc_document_summary_doc<<<')).toBeLessThan(
      launcher.indexOf('attnc_document_attention<<<'),
    );
    expect(a.code).toContain('range_min_doc(a, q_lo, q_hi)');
    expect(a.code).toContain(`if (b1 - b0 >= 64) return INT_MIN;`);
    expect(a.entryPoints.map((e) => e.role)).toEqual(['summary', 'attention']);
    const summary = a.bindings.find((b) => b.role === 'summary');
    expect(summary).toMatchObject({ name: 'doc_summary', dtype: 'i32', shape: ['cdiv(Nk, 16)', '2'] });
  });

  it('hoists doc[q] per row into registers and doc[k] per tile into shared memory', () => {
    const body = kernelBody(render(handKernels.document!()).code);
    expect(body).toContain('hq0[r] = ');
    expect(body).toContain('__shared__ int hk0[BK];');
    expect(body).toMatch(/hq0\[r\] == hk0\[kk\]/);
  });

  it('renders int semantics through helpers and f32 through libm', () => {
    const g = new Graph();
    const [q, k] = [g.var('q'), g.var('k')];
    const two = g.const(2);
    const d = g.node(Op.DIV, 'i32', [g.node(Op.SUB, 'i32', [q, k]), two]);
    const m = g.node(Op.MOD, 'i32', [d, g.node(Op.PARAM, 'i32', [], 'n')]);
    const f = g.node(Op.MOD, 'f32', [g.var('score'), g.const(1.5)]);
    const score = g.node(Op.ADD, 'f32', [
      f,
      g.node(Op.CAST, 'f32', [g.node(Op.CAST, 'i32', [g.var('score')])]),
    ]);
    const kernel: AttentionKernel = {
      ...handKernels.full!(),
      name: 'ints',
      graph: g,
      score,
      mask: g.node(Op.EQ, 'bool', [m, g.const(0)]),
      tiles: { kind: 'static', value: 'partial' },
      params: [{ name: 'n', dtype: 'i32', default: 3 }],
    };
    const code = render(kernel).code;
    expect(code).toMatch(/floormod_i\(floordiv_i\(sub_i\(qpos, kpos\), 2\), a\.n\)/);
    expect(code).toContain('floormod_f(x, 1.5f)');
    expect(code).toContain('f2i(x)');
    expect(code).toContain('__float2int_rz');
  });

  it('renders f32 products in a mask uncontracted (__fmul_rn), as the reference rounds them', () => {
    // nvcc (-fmad=true by default) made `x * 0.1f - 0.3f` one fma.rn.f32: at q - k = 3 the mask
    // read -7.45e-9 < 0 (key allowed) where the reference's two roundings give 0 (key masked).
    const masked = compile('attention fm() { mask float(q - k) * 0.1 - 0.3 < 0.0 }', {
      target: 'cuda',
      headDim: 64,
    }).artifact.code;
    expect(masked).toContain(
      '(__fmul_rn(((float)(sub_i(qpos, kpos))), 0.10000000149011612f)) - 0.30000001192092896f',
    );
    expect(masked).not.toMatch(/\) \* 0\.10000000149011612f/);
    // f32 % subtracts an uncontracted product too; a product only in the score keeps `*`.
    expect(masked).not.toContain('floormod_f');
    const scored = compile('attention fs() { score score % 1.5 + float(k - q) * 0.25 mask causal }', {
      target: 'cuda',
      headDim: 64,
    }).artifact.code;
    expect(scored).toContain('return a - __fmul_rn(b, floorf(a / b));');
    expect(scored).toMatch(/\) \* 0\.25f/);
    expect(scored).not.toContain('__fmul_rn(((float)');
  });

  it('renames args fields that collide with built-in fields or C keywords', () => {
    const g = new Graph();
    const kernel: AttentionKernel = {
      ...handKernels.full!(),
      name: 'clash',
      graph: g,
      score: g.node(Op.MUL, 'f32', [g.var('score'), g.node(Op.PARAM, 'f32', [], 'scale')]),
      params: [
        { name: 'scale', dtype: 'f32', default: 2 },
        { name: 'int', dtype: 'i32', default: 1 },
      ],
    };
    const a = render(kernel);
    expect(a.files?.['clash.h']).toContain('float scale_; /* param f32, default 2 */');
    expect(a.files?.['clash.h']).toContain('int int_;');
    expect(a.code).toContain('x * a.scale_');
    expect(a.uniforms.map((u) => u.name)).toContain('scale_');
  });

  it('refuses schedules it cannot run, with the reason', () => {
    expect(cudaScheduleProblem(...scheduleAndFormats({ threads: 48 }))).toMatch(/multiple of 32/);
    expect(cudaScheduleProblem(...scheduleAndFormats({ blockK: 512, headDim: 128, valueDim: 128 }))).toMatch(
      /shared memory/,
    );
    expect(cudaScheduleProblem(...scheduleAndFormats({ threads: 1024 }))).toMatch(/tpr/);
    expect(() => renderCuda(handKernels.full!(testScheduleWith({ threads: 48 })), meta)).toThrow(
      /CUDA backend/,
    );
    expect(
      cudaScheduleProblem(...scheduleAndFormats({ blockQ: 64, threads: 256, headDim: 128, valueDim: 128 })),
    ).toBeUndefined();
  });

  it('lays out the args struct for FFI: pointers first, 64-bit K/V strides, 4-byte scalars after', () => {
    const manifest = JSON.parse(render(handKernels.softcap_alibi!()).files?.['softcap_alibi.json'] ?? '{}');
    const fields = manifest.args.fields as { field: string; ctype: string; offset: number }[];
    expect(fields.map((f) => f.field)).toEqual([
      'q',
      'k',
      'v',
      'out',
      'lse',
      'slopes',
      'k_stride_b',
      'k_stride_h',
      'k_stride_n',
      'v_stride_b',
      'v_stride_h',
      'v_stride_n',
      'q_stride_b',
      'q_stride_h',
      'q_stride_n',
      'out_stride_b',
      'out_stride_h',
      'out_stride_n',
      'B',
      'H',
      'Hkv',
      'Nq',
      'Nk',
      'q_offset',
      'k_offset',
      'scale',
      'cap',
    ]);
    expect(fields.map((f) => f.offset)).toEqual([
      0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 148, 152, 156, 160, 164,
      168, 172, 176,
    ]);
    expect(fields.filter((f) => f.ctype === 'i64').map((f) => f.offset % 8)).toEqual(Array(12).fill(0));
    expect(manifest.args.bytes).toBe(184);
    expect(manifest.expr.nodes.length).toBeGreaterThan(5);
  });
});
