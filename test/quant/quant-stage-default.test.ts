// Staged prefill is the default for tensor-core prefill over quantized K/V (schedule-rules.ts
// stagesByDefault), and its float twin gets the schedule the plain float kernel gets (the dense
// wgmma-ws default at D 128: FA3 consumers + tweaks), while the fused fallback keeps the plain consumers.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { fusedSchedule } from '../../src/codegen/cuda/quant-stage.js';

const build = (body: string, schedule: Record<string, unknown> = {}, arch?: string) =>
  compile(`attention t() {\n  ${body}\n}`, {
    target: 'cuda',
    headDim: 128,
    dtype: 'bf16',
    schedule,
    ...(arch ? { arch } : {}),
  });

const int8 = 'store kv int8 scale f32 per token';

describe('staged prefill by default', () => {
  for (const mask of ['', 'mask causal'])
    it(`tensor-core prefill over int8 K/V is staged, the twin on the float schedule (${mask || 'full'})`, () => {
      const q = build(`${int8}\n  ${mask}`);
      const plain = build(mask);
      const { quantPrefill, ...twin } = q.kernel.schedule;
      expect(quantPrefill).toBe('staged');
      expect(twin).toEqual(plain.kernel.schedule);
      expect(twin.wsConsumers).toBe('fa3');
      expect(JSON.parse(q.artifact.files!['t.json']!).staged.twin).toBe('t__staged');
    });

  it('sm_80 (mma) is staged too', () => {
    const q = build(int8, {}, 'sm_80');
    expect(q.kernel.schedule.engine).toBe('mma');
    expect(q.kernel.schedule.quantPrefill).toBe('staged');
  });

  it("'fused' keeps the fused path, with the plain wgmma-ws consumers", () => {
    const f = build(int8, { quantPrefill: 'fused' });
    expect(f.kernel.schedule.quantPrefill).toBe('fused');
    expect(f.kernel.schedule.wsConsumers).toBeUndefined();
    expect(f.artifact.code).not.toContain('__staged');
  });

  it('SIMT kernels and float kernels are not staged', () => {
    expect(build(int8, { engine: 'simt' }).kernel.schedule.quantPrefill).toBeUndefined();
    expect(build('mask causal').kernel.schedule.quantPrefill).toBeUndefined();
  });

  it("the fused fallback drops the twin's FA3 consumers, tweaks and walk and fits its staging", () => {
    const q = build(int8);
    const f = fusedSchedule(q.kernel.schedule, q.kernel.formats);
    expect(f.wsConsumers).toBeUndefined();
    expect(f.wsTweaks).toBeUndefined();
    expect(f.wsProducerWalk).toBeUndefined();
    expect(f.blockK).toBe(128);
  });
});
