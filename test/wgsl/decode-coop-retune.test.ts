// The knobs a coop decode module records (DecodeVariant.coop, src/codegen/wgsl/decode-coop.ts) and
// re-tuning from them, without a GPU: the record tells what the WGSL says (lanes 'wide16' halves
// for int4 / int2, the lanes wide code loads were made for), re-tuning to it leaves the module as
// it was, Schedule.coopDecodeLanes renders wide loads for other lanes, and a sweep as
// bench/wgsl/decode.mjs builds it (every knob over the rendered ones, other lanes compiled anew)
// works for every cache format under every code-load mode, each module validated by naga.
import { nagaValidate } from '../support/naga.js';
import { describe, expect, it } from 'vitest';
import type { DecodeVariant } from '../../src/codegen/artifact.js';
import {
  coopDecodeRetuneProblem,
  renderedCoopDecodeTuning,
  retuneCoopDecode,
} from '../../src/codegen/wgsl/decode-coop.js';
import {
  defaultCoopDecodeTuning,
  type CoopDecodeCodes,
  type CoopDecodeTuning,
} from '../../src/codegen/wgsl/decode-coop-tuning.js';
import { compile } from '../../src/compile.js';
import { readStdlib } from '../support/stdlib.js';

// naga has no subgroups: the modules take the workgroup-memory lane sums.
const limits = { maxWorkgroupStorageBytes: 49152, maxInvocations: 1024, subgroups: false };

/** bench/quant-decode-wgsl.mjs's caches (and bench/wgsl/decode-dry.mjs's), causal, D = 128. */
const FORMATS: Readonly<Record<string, string>> = {
  f32: '',
  int8: 'store kv int8 scale f16 per token',
  e4m3: 'store kv e4m3 scale f16 per token',
  int4: 'store kv int4 scale f16 per token group 32 zero f16',
  'KIVI int2': readStdlib('kivi.attn').match(/store k .*\n\s*store v .*/)![0],
};
const CODES: readonly CoopDecodeCodes[] = ['words', 'wide', 'wide16'];

function decodeOf(store: string, codes: CoopDecodeCodes, lanes?: number): DecodeVariant {
  const { artifact } = compile(`attention t() {\n  ${store}\n  mask causal\n}`, {
    target: 'wgsl',
    headDim: 128,
    wgslEngine: 'coop',
    limits,
    schedule: { coopDecodeCodes: codes, ...(lanes !== undefined ? { coopDecodeLanes: lanes } : {}) },
  });
  if (!artifact.decode) throw new Error('no decode variant');
  return artifact.decode;
}

/** A WGSL constant of the module's text (the test checks the record against it). */
const constant = (d: DecodeVariant, name: string): number | undefined => {
  const m = new RegExp(`^const ${name}: u32 = (\\d+)u;`, 'm').exec(d.artifact.code);
  return m ? Number(m[1]) : undefined;
};

describe('a coop decode module records the knobs it was rendered with', () => {
  it("'wide16' int4 / int2: half the default lanes, and the runs made for them", () => {
    for (const store of [FORMATS.int4!, FORMATS['KIVI int2']!]) {
      const d = decodeOf(store, 'wide16');
      const defaults = defaultCoopDecodeTuning(d.artifact.schedule);
      expect(d.coop).toEqual({ tuning: { ...defaults, lanes: 4 }, codes: 'wide16', codeLanes: 4 });
    }
  });

  it('the record says what the WGSL says, for every format and code-load mode', () => {
    for (const [name, store] of Object.entries(FORMATS))
      for (const codes of CODES) {
        const d = decodeOf(store, codes);
        const what = `${name} ${codes}`;
        expect(d.coop?.codes, what).toBe(codes);
        expect(constant(d, 'DC_LANES'), what).toBe(d.coop?.tuning.lanes);
        expect(constant(d, 'DC_THREADS'), what).toBe(d.coop?.tuning.threads);
        expect(constant(d, 'DC_SPLIT_KEYS'), what).toBe(d.splitKeys);
        expect(constant(d, 'DC_CODE_LANES'), what).toBe(d.coop?.codeLanes);
        // Float caches and 'words' have no wide loads: any lanes re-tune.
        expect(d.coop?.codeLanes === undefined, what).toBe(name === 'f32' || codes === 'words');
      }
  });

  it("the row engine's decode module has no record, and cannot be re-tuned", () => {
    const { artifact } = compile(readStdlib('causal.attn'), {
      target: 'wgsl',
      headDim: 64,
      wgslEngine: 'row',
    });
    expect(artifact.decode?.coop).toBeUndefined();
    expect(() => renderedCoopDecodeTuning(artifact.decode!)).toThrow(/no decode tuning block/);
  });
});

describe('re-tuning from the record', () => {
  it('to the rendered knobs leaves an int4 / int2 wide16 module as it was', () => {
    for (const store of [FORMATS.int4!, FORMATS['KIVI int2']!]) {
      const d = decodeOf(store, 'wide16');
      const r = retuneCoopDecode(d, renderedCoopDecodeTuning(d));
      expect(r.artifact.code).toBe(d.artifact.code);
      expect(r).toEqual(d);
    }
  });

  it('records the new knobs, and only the rendered lanes are allowed for wide code loads', () => {
    const d = decodeOf(FORMATS.int4!, 'wide16');
    const t: CoopDecodeTuning = { ...renderedCoopDecodeTuning(d), threads: 128, splitKeys: 512, prefetch: 1 };
    const r = retuneCoopDecode(d, t);
    expect(r.coop).toEqual({ ...d.coop, tuning: t });
    expect(constant(r, 'DC_THREADS')).toBe(128);
    expect(retuneCoopDecode(r, renderedCoopDecodeTuning(d)).artifact.code).toBe(d.artifact.code);
    const eight = { ...t, lanes: 8 };
    expect(coopDecodeRetuneProblem(d, eight)).toMatch(/rendered for 4 lanes, not 8 \(allowed lanes: 4 under/);
    expect(() => retuneCoopDecode(d, eight)).toThrow(
      /retuneCoopDecode: wide code loads were rendered for 4 lanes/,
    );
    // The same cache with word loads takes any lanes.
    const words = decodeOf(FORMATS.int4!, 'words');
    expect(coopDecodeRetuneProblem(words, { ...renderedCoopDecodeTuning(words), lanes: 16 })).toBeUndefined();
  });

  it('Schedule.coopDecodeLanes renders the wide code loads for other lanes', () => {
    const unhashed = (d: DecodeVariant): string =>
      d.artifact.code.replace(/schedule [0-9a-f]+/, 'schedule #');
    const eight = decodeOf(FORMATS.int4!, 'wide16', 8);
    expect(eight.coop).toMatchObject({ codeLanes: 8, tuning: { lanes: 8 } });
    // 'wide16' at 8 lanes is 'wide' (8 lanes by default): the same module but for the schedule hash.
    expect(unhashed(eight)).toBe(unhashed(decodeOf(FORMATS.int4!, 'wide')));
    // int2 at 16 lanes: runs of 8 channels, half a code word: word loads, any lanes.
    const sixteen = decodeOf(FORMATS['KIVI int2']!, 'wide16', 16);
    expect(sixteen.coop).toMatchObject({ tuning: { lanes: 16 } });
    expect(sixteen.coop?.codeLanes).toBeUndefined();
    expect(() => decodeOf(FORMATS.int4!, 'wide16', 3)).toThrow(/decode lanes: expected a power of 2/);
  });

  it('a sweep over every cache format and code-load mode builds, and naga validates it', () => {
    // As bench/wgsl/decode.mjs's sweptModules: each knob set over the module's rendered knobs,
    // lanes that wide code loads were not rendered for compiled anew (Schedule.coopDecodeLanes).
    const sweep: readonly Partial<CoopDecodeTuning>[] = [
      {},
      { threads: 128, splitKeys: 512, prefetch: 1 },
      { chunk: 4, rows: 8, mergeCols: undefined },
      { lanes: 16 },
    ];
    let built = 0;
    for (const [name, store] of Object.entries(FORMATS))
      for (const codes of CODES) {
        const d = decodeOf(store, codes);
        for (const knobs of sweep) {
          const what = `${name} ${codes} ${JSON.stringify(knobs)}`;
          const problem = coopDecodeRetuneProblem(d, { ...renderedCoopDecodeTuning(d), ...knobs });
          // Only the lanes point, only where wide loads fixed the lanes, is refused.
          const refused = knobs.lanes !== undefined && d.coop?.codeLanes !== undefined;
          expect(problem !== undefined, what).toBe(refused);
          const base = refused ? decodeOf(store, codes, knobs.lanes) : d;
          const r = retuneCoopDecode(base, { ...renderedCoopDecodeTuning(base), ...knobs });
          expect(r.coop?.tuning.lanes, what).toBe(knobs.lanes ?? d.coop?.tuning.lanes);
          expect(() => nagaValidate(r.artifact.code), what).not.toThrow();
          built++;
        }
      }
    expect(built).toBe(5 * 3 * 4);
  });
});
