// Wide code loads of the coop decode module (Schedule.coopDecodeCodes, src/codegen/wgsl/dequant-run.ts)
// without a GPU: goldens of two modules at the H200 bench's shape (D = 128; stdlib KIVI through
// u32 runs with its recent window and per-channel scales, int8 through vec4<u32> runs), naga
// validation of every load width and of a paged cache, the lanes 'wide16' picks, the knob off or
// unusable leaving the module byte-identical, and re-tuning kept to the lanes the runs were made for.
// Regenerate the goldens with `UPDATE_GOLDEN=1 npx vitest run test/wgsl/decode-coop-wide-golden.test.ts`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { nagaValidate } from '../support/naga.js';
import { describe, expect, it } from 'vitest';
import type { DecodeVariant } from '../../src/codegen/artifact.js';
import { renderedCoopDecodeTuning, retuneCoopDecode } from '../../src/codegen/wgsl/decode-coop.js';
import { compile } from '../../src/compile.js';
import type { Schedule } from '../../src/ir/kernel.js';
import { readStdlib } from '../support/stdlib.js';

const update = process.env.UPDATE_GOLDEN === '1';
// naga has no subgroups: the validation modules take the workgroup-memory lane sums.
const limits = (subgroups: boolean) => ({ maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups });

function decodeOf(
  source: string,
  codes: Schedule['coopDecodeCodes'],
  opts: { headDim?: number; subgroups?: boolean } = {},
): DecodeVariant {
  const { artifact } = compile(source, {
    target: 'wgsl',
    headDim: opts.headDim ?? 128,
    wgslEngine: 'coop',
    limits: limits(opts.subgroups ?? true),
    ...(codes ? { schedule: { coopDecodeCodes: codes } } : {}),
  });
  if (!artifact.decode) throw new Error('no decode variant');
  return artifact.decode;
}

const store = (s: string): string => `attention t() {\n  ${s}\n  mask causal\n}`;
const INT8 = store('store kv int8 scale f16 per token');
const lanesOf = (d: DecodeVariant): number => renderedCoopDecodeTuning(d).lanes;

describe('wide code loads: goldens', () => {
  const cases: [string, string, Schedule['coopDecodeCodes']][] = [
    ['decode-wide-kivi', readStdlib('kivi.attn'), 'wide'],
    ['decode-wide-int8', INT8, 'wide'],
  ];
  it.each(cases)('%s', (name, source, codes) => {
    const code = decodeOf(source, codes).artifact.code;
    const path = `test/golden/coop/${name}.wgsl`;
    if (update || (!existsSync(path) && !process.env.CI)) writeFileSync(path, code);
    expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
    expect(code).toBe(readFileSync(path, 'utf8'));
  });
});

describe('wide code loads: modules', () => {
  const valid: [string, string, Schedule['coopDecodeCodes'], string][] = [
    ['int8 vec4<u32>', INT8, 'wide', 'k_codes4'],
    ['e4m3 vec4<u32>', store('store kv e4m3 scale f16 per token'), 'wide', 'k_codes4'],
    ['int4 vec2<u32>', store('store kv int4 scale f16 per token group 32 zero f16'), 'wide', 'k_codes2'],
    [
      'int4 vec4<u32> (wide16)',
      store('store kv int4 scale f16 per token group 32 zero f16'),
      'wide16',
      'k_codes4',
    ],
    ['KIVI int2 u32', readStdlib('kivi.attn'), 'wide', 'k_buf'],
    ['KIVI int2 vec2<u32> (wide16)', readStdlib('kivi.attn'), 'wide16', 'k_codes2'],
    [
      'paged int8',
      'attention t() {\n  cache paged 16\n  store kv int8 scale f16 per token\n}',
      'wide',
      'k_codes4',
    ],
  ];
  it.each(valid)('%s validates in naga', (_, source, codes, view) => {
    const code = decodeOf(source, codes, { subgroups: false }).artifact.code;
    expect(code).toContain(`let dq_w0 = ${view}[dq_at]`);
    expect(() => nagaValidate(code)).not.toThrow();
  });

  it("'wide16' takes fewer lanes only where a run would be under 16 bytes, down to 32-channel runs", () => {
    expect(lanesOf(decodeOf(INT8, 'wide16'))).toBe(8); // 16 int8 channels = 16 bytes
    expect(lanesOf(decodeOf(store('store kv int4 scale f16 per token'), 'wide16'))).toBe(4); // 32 int4
    expect(lanesOf(decodeOf(readStdlib('kivi.attn'), 'wide16'))).toBe(4); // 32 int2 = 8 bytes: the cap
    expect(lanesOf(decodeOf(readStdlib('kivi.attn'), 'wide'))).toBe(8);
  });

  it("'words', or no cache whose rows split into whole runs, leaves the module as it was", () => {
    for (const source of [readStdlib('causal.attn'), store('store kv int4 scale f16 per token')]) {
      // The header names the schedule's hash, which counts the knob: compare past it.
      const unhashed = (codes: Schedule['coopDecodeCodes']): string =>
        decodeOf(source, codes, { headDim: 32 }).artifact.code.replace(/schedule [0-9a-f]+/, 'schedule #');
      const off = unhashed('words');
      // causal: float caches; int4 at D = 32 over 8 lanes: runs of 4 channels, half a code word.
      expect(unhashed('wide')).toBe(off);
      expect(off).not.toContain('_dequant_run');
    }
    expect(decodeOf(INT8, 'words').artifact.code).not.toContain('dequant_run');
    // Absent, the knob is 'wide16' (the H200's pick, round 10).
    const past = (c: string): string => c.replace(/schedule [0-9a-f]+/, 'schedule #');
    expect(past(decodeOf(INT8, undefined).artifact.code)).toBe(past(decodeOf(INT8, 'wide16').artifact.code));
    expect(decodeOf(INT8, undefined).artifact.code).toContain('dequant_run');
  });

  it('re-tuning keeps the lanes the runs were made for', () => {
    const d = decodeOf(INT8, 'wide');
    const t = renderedCoopDecodeTuning(d);
    const r = retuneCoopDecode(d, { ...t, threads: 128, splitKeys: 512, prefetch: 1 });
    expect(r.artifact.code).toContain('fn k_dequant_run(');
    expect(() => retuneCoopDecode(d, { ...t, lanes: 4 })).toThrow(
      /rendered for 8 lanes, not 4 \(allowed lanes: 8/,
    );
  });
});
