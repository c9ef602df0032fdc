// The WGSL backend without a GPU: every hand kernel renders to WGSL that naga validates, the
// manifest (entry points, bindings, uniforms) is right, helpers appear only when used, and
// schedules that cannot run are refused with clear errors.
import { nagaValidate } from '../support/naga.js';
import { describe, expect, it } from 'vitest';
import {
  checkWgslSchedule,
  createWgslBackend,
  renderWgsl,
  wgslBackend,
  wgslScheduleProblem,
  wgslWorkgroupBytes,
} from '../../src/codegen/wgsl/index.js';
import { f32Literal, i32Literal, type WgslContext } from '../../src/codegen/wgsl/rules.js';
import {
  documentKernel,
  fullKernel,
  slidingWindowKernel,
  softcapAlibiKernel,
  testSchedule,
} from '../support/hand-kernels.js';
import { everyOpKernel, meta, withSchedule } from './harness.js';

const hand = { fullKernel, slidingWindowKernel, documentKernel, softcapAlibiKernel };

describe('hand kernels render to valid WGSL', () => {
  for (const [name, make] of Object.entries(hand)) {
    for (const dtype of ['f32', 'f16'] as const) {
      it(`${name} (${dtype})`, () => {
        const a = renderWgsl(make(withSchedule(testSchedule, { dtype })), meta);
        expect(() => nagaValidate(a.code)).not.toThrow();
        expect(a.code.startsWith(`// attnc kernel "${a.name}"`)).toBe(true);
        expect(a.code.includes('enable f16;')).toBe(dtype === 'f16');
        // Stable output: golden files diff only when the kernel changes.
        expect(renderWgsl(make(withSchedule(testSchedule, { dtype })), meta).code).toBe(a.code);
      });
    }
  }

  it('a kernel using every op validates', () => {
    const kernel = everyOpKernel();
    const a = renderWgsl(kernel, meta);
    expect(() => nagaValidate(a.code)).not.toThrow();
    for (const helper of [
      'floor_div_i32',
      'floor_mod_i32',
      'floor_mod_f32',
      'f32_to_i32',
      'f32_bits',
      'load_bias',
    ]) {
      expect(a.code).toContain(`fn ${helper}(`);
    }
  });
});

describe('the artifact manifest', () => {
  it('document: summary pass first, bindings and uniforms in order', () => {
    const a = wgslBackend(documentKernel(), { sourceHash: 'abc', scheduleHash: 'def' });
    expect(a.target).toBe('wgsl');
    expect([a.sourceHash, a.scheduleHash]).toEqual(['abc', 'def']);
    expect(a.entryPoints.map((e) => [e.name, e.role])).toEqual([
      ['summarize_doc', 'summary'],
      ['attention', 'attention'],
    ]);
    expect(a.entryPoints[0]!.grid).toEqual(['cdiv(cdiv(Nk, 16), 64)', '1', '1']);
    expect(a.entryPoints[1]!.grid).toEqual(['cdiv(Nq, 16)', 'H', 'B']);
    expect(a.entryPoints[1]!.workgroupSize).toEqual([16, 1, 1]);
    expect(
      a.bindings.map((b) => `${b.index}:${b.name}:${b.dtype}[${b.shape.join(',')}]:${b.access}`),
    ).toEqual([
      '0:q:f32[B,H,Nq,D]:read',
      '1:k:f32[B,Hkv,Nk,D]:read',
      '2:v:f32[B,Hkv,Nk,Dv]:read',
      '3:out:f32[B,H,Nq,Dv]:read_write',
      '4:lse:f32[B,H,Nq]:read_write',
      '5:doc:i32[Nk]:read',
      '6:doc_summary:i32[cdiv(Nk, 16),2]:read_write',
      '7:uniforms:u32[14]:read',
    ]);
    expect(a.uniforms.map((u) => `${u.name}:${u.dtype}@${u.offset}`)).toEqual([
      'q_offset:i32@0',
      'k_offset:i32@4',
      'scale:f32@8',
      'B:i32@12',
      'H:i32@16',
      'Hkv:i32@20',
      'Nq:i32@24',
      'Nk:i32@28',
      // Element strides of K and V (codegen/wgsl/kv-load.ts k_row / v_row); packed by default.
      'k_stride_b:u32@32',
      'k_stride_h:u32@36',
      'k_stride_n:u32@40',
      'v_stride_b:u32@44',
      'v_stride_h:u32@48',
      'v_stride_n:u32@52',
    ]);
  });

  it('params follow the fixed uniforms (sizes, offsets, scale, then the six K/V strides); no lse binding without the output', () => {
    const k = { ...slidingWindowKernel(), outputs: { lse: false } };
    const a = renderWgsl(k, meta);
    expect(a.uniforms.at(-1)).toEqual({ name: 'window', dtype: 'i32', offset: 56 });
    expect(a.bindings.some((b) => b.role === 'lse')).toBe(false);
    expect(a.code).not.toContain('lse_buf[');
    expect(() => nagaValidate(a.code)).not.toThrow();
  });

  it('static full tiles emit no classification or predicate; helpers only when used', () => {
    const a = renderWgsl(fullKernel(), meta);
    for (const absent of ['tile_class', 'var allowed', 'floor_div_i32', 'load_', 'range_', 'summarize_']) {
      expect(a.code).not.toContain(absent);
    }
    const w = renderWgsl(slidingWindowKernel(), meta);
    expect(w.code).toContain('fn tile_class(');
    expect(w.code).toContain('if (cls == TILE_PARTIAL)');
    expect(w.code).not.toContain('range_');
  });

  it('row-invariant parts of the mask are hoisted out of the key loop', () => {
    const a = renderWgsl(documentKernel(), meta);
    expect(a.code).toContain('let rw0: i32 = load_doc(q);');
    expect(a.code).toContain('load_doc(k)');
  });
});

describe('schedules and limits', () => {
  it('workgroup bytes are one f32 K tile, one f32 V tile and a flag word (16 bytes as WGSL lays it out)', () => {
    expect(wgslWorkgroupBytes(testSchedule)).toBe(4 * 16 * 32 + 16);
  });

  it('refuses bf16, mismatched threads, and schedules over the device limits', () => {
    expect(() => renderWgsl(fullKernel(withSchedule(testSchedule, { dtype: 'bf16' })), meta)).toThrow(
      /bf16 storage is not supported by the WGSL backend/,
    );
    expect(() => renderWgsl(fullKernel(withSchedule(testSchedule, { threads: 32 })), meta)).toThrow(
      /threads must equal blockQ/,
    );
    const small = { maxWorkgroupStorageBytes: 2063, maxInvocations: 8, shaderF16: false };
    expect(wgslScheduleProblem(testSchedule, small)).toMatch(
      /16 invocations per workgroup exceed the device limit of 8/,
    );
    const big = withSchedule(testSchedule, { blockQ: 8, threads: 8 });
    expect(() => checkWgslSchedule(big, small)).toThrow(
      /needs 2064 bytes of workgroup memory .* the device allows 2063; lower blockK/,
    );
    const f16 = withSchedule(testSchedule, { dtype: 'f16' });
    const backend = createWgslBackend({ ...small, maxInvocations: 256, maxWorkgroupStorageBytes: 1 << 15 });
    expect(() => backend(fullKernel(f16), meta)).toThrow(/shader-f16/);
    expect(() => renderWgsl(fullKernel(f16), meta)).not.toThrow(); // no limits: the runtime decides
  });

  it('refuses undeclared tensors and summaries', () => {
    const k = documentKernel();
    expect(() => renderWgsl({ ...k, tensors: [] }, meta)).toThrow(/does not declare/);
    expect(() => renderWgsl({ ...k, summaries: [] }, meta)).toThrow(/kernel.summaries does not list/);
  });
});

describe('literals', () => {
  const cx: WgslContext = {
    vars: {},
    params: new Map(),
    tensors: new Map(),
    summaryBlock: 16,
    used: new Set(),
  };
  it('i32 and f32 literals are valid WGSL and exact', () => {
    expect(i32Literal(-2147483648)).toBe('(-2147483647i - 1i)');
    expect(i32Literal(-3)).toBe('(-3i)');
    expect(f32Literal(0.1, cx)).toBe('0.1f');
    expect(f32Literal(2, cx)).toBe('2.0f');
    expect(f32Literal(-1e30, cx)).toBe('(-1e+30f)');
    expect(f32Literal(-Infinity, cx)).toBe('f32_bits(0xff800000u)');
    expect(cx.used.has('f32_bits')).toBe(true);
  });
});
