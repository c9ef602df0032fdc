// The warp-specialized Hopper engine (engine 'wgmma-ws'): a TMA producer warpgroup and consumer
// warpgroups over an mbarrier ring. The CUDA default for f16/bf16 at D = 64/128 except dilated
// (residue classes run on wgmma) and routed kernels; every
// stdlib kernel builds for sm_90a — device code and the launcher that builds the tensor maps —
// and the generated code has the promised structure: consumers never load, the producer walks
// the consumers' tile sequence (empty tiles never loaded), full tiles stay predicate-free.
// Numerics: bench/ws/run.sh on an H100 (the CPU emulator cannot run wgmma or TMA).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCuda, wgmmaWsCore, wgmmaWsPlan, type WgmmaWsPlan } from '../../src/codegen/cuda/index.js';
import { tmaDataType, TMA_L2_256B, TMA_SWIZZLE_128B } from '../../src/codegen/cuda/wgmma-ws-device.js';
import { compile } from '../../src/compile.js';
import type { StorageDType } from '../../src/ir/kernel.js';
import { fullKernel, testSchedule } from '../support/hand-kernels.js';
import { expectOk, meta, run, scratchDir, sassOnly } from './support.js';
import { readStdlib, staticStdlib, stdlibPath } from '../support/stdlib.js';

const NVCC = process.env.NVCC ?? 'nvcc';
// Mask/score kernels; the routing/selection ones build in routing-nvcc and select-nvcc.test.ts.
const stdlib = staticStdlib;
// The serial consumers, untweaked: the core's own structure. The dense default at D = 128
// (FlashAttention-3 consumers with wsTweaks) is pinned in wgmma-ws-tweaks.test.ts.
const ws = { engine: 'wgmma-ws', wsConsumers: 'serial' } as const;

const build = (file: string, headDim: number, dtype: StorageDType, limits?: number) =>
  compile(readStdlib(file), {
    target: 'cuda',
    file: stdlibPath(file),
    headDim,
    dtype,
    schedule: ws,
    // The decode variant is the same whatever the prefill engine: mma.test.ts and decode.test.ts
    // build it, so this file's units hold the engine's kernels alone (half the nvcc time).
    decode: false,
    ...(limits !== undefined ? { limits: { maxWorkgroupStorageBytes: limits } } : {}),
  });

describe('wgmma-ws engine selection', () => {
  const byDefault = (file: string, headDim: number, dtype: StorageDType, limits?: number) =>
    compile(readStdlib(file), {
      target: 'cuda',
      file: stdlibPath(file),
      headDim,
      dtype,
      ...(limits !== undefined ? { limits: { maxWorkgroupStorageBytes: limits } } : {}),
    }).artifact.schedule;

  it('the default for 16-bit storage at D = 64 and 128: 2 stages (document at D = 128: 3), 176-key tiles when unmasked at D = 64', () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      for (const headDim of [64, 128]) {
        const base = { engine: 'wgmma-ws', blockQ: 128, threads: 384, stages: 2 };
        expect(byDefault('causal.attn', headDim, dtype)).toMatchObject({ ...base, blockK: 128 });
        // Document at D = 128: 96-key tiles in three stages (schedule-preferred.ts summaryFirst).
        const doc = headDim === 128 ? { blockK: 96, stages: 3 } : { blockK: 128 };
        expect(byDefault('document.attn', headDim, dtype)).toMatchObject({ ...base, ...doc });
        // D = 128: the dense default (FlashAttention-3 consumers, wsTweaks) at 128 keys.
        const fullK = headDim === 128 ? 128 : 176;
        expect(byDefault('full.attn', headDim, dtype)).toMatchObject({ ...base, blockK: fullK });
      }
    }
    // Asked for explicitly, masked or not, it takes the same tiles.
    expect(build('causal.attn', 128, 'bf16').artifact.schedule).toMatchObject({
      ...ws,
      blockK: 128,
      stages: 2,
    });
    // An sm_80-sized budget (99 KiB) at D = 128: 64-key tiles.
    expect(byDefault('causal.attn', 128, 'bf16', 101376)).toMatchObject({ engine: 'wgmma-ws', blockK: 64 });
  });

  it('dilated kernels and routing over 64-blocks keep wgmma; pooled routing over 128-blocks takes wgmma-ws', () => {
    // wgmma runs a dilated mask's residue classes (2.6× faster than row order at 16K).
    expect(byDefault('dilated.attn', 128, 'bf16')).toMatchObject({ engine: 'wgmma', threads: 256 });
    expect(build('dilated.attn', 128, 'bf16').artifact.schedule.engine).toBe('wgmma-ws');
    const routed = readFileSync('stdlib/biformer.attn', 'utf8');
    const opts = { target: 'cuda', headDim: 64, dtype: 'bf16' } as const;
    expect(compile(routed, opts).artifact.schedule.engine).toBe('wgmma');
    expect(compile(routed, { ...opts, headDim: 128 }).artifact.schedule).toMatchObject({
      engine: 'wgmma',
      blockQ: 64,
    });
    // Asked for, wgmma-ws runs block routing (its consumers test route_hit on masked tiles only).
    const asked = compile(routed, { ...opts, schedule: ws }).artifact;
    expect(asked.schedule.engine).toBe('wgmma-ws');
    expect(asked.code).toContain('route_hit(route_bits[r], route_kid0, kpos)');
    // Pooled 128-blocks at D = 128: FlashAttention-3's consumers with the dense tweaks, unasked
    // (the H100's same-process pick, schedule-preferred.ts); D = 64, explicit engines and raw
    // query sides keep theirs.
    const pooled128 = (mask: string) =>
      `attention b(top: int = 8) {\n  route blocks(128) topk(top) by mean(q) . mean(k)\n${mask}}\n`;
    for (const mask of ['', '  mask causal\n']) {
      const s = compile(pooled128(mask), { ...opts, headDim: 128 }).artifact.schedule;
      expect(s).toMatchObject({ engine: 'wgmma-ws', blockQ: 128, blockK: 128, wsConsumers: 'fa3' });
      expect(s.wsTweaks).toContain('splitKv');
    }
    expect(compile(pooled128(''), opts).artifact.schedule.engine).toBe('wgmma');
    expect(
      compile(pooled128(''), { ...opts, headDim: 128, schedule: { engine: 'wgmma' } }).artifact.schedule
        .engine,
    ).toBe('wgmma');
    const raw =
      'attention r(top: int = 4) {\n  route blocks(128) topk(top) by q . mean(k)\n  mask causal\n}\n';
    expect(compile(raw, { ...opts, headDim: 128 }).artifact.schedule.wsConsumers).toBeUndefined();
    // The tile list is built by the whole CTA: the producer cannot walk it alone.
    expect(() => compile(routed, { ...opts, schedule: { ...ws, wsProducerWalk: true } })).toThrow(
      /block routing on wgmma-ws builds its tile list with the whole CTA; leave wsProducerWalk out/,
    );
  });

  it('refuses overlap consumers with the producer walk over per-key values (racecheck found hazards)', () => {
    const asked = { ...ws, wsConsumers: 'overlap', wsProducerWalk: true } as const;
    const opts = { target: 'cuda', headDim: 128, dtype: 'bf16', schedule: asked } as const;
    expect(() => compile(readFileSync('stdlib/document.attn', 'utf8'), opts)).toThrow(
      /wsConsumers overlap with wsProducerWalk and per-key values \(hk0\) failed compute-sanitizer's racecheck/,
    );
    // Without per-key values (sinks + window), and with fa3's turns, it stays available.
    expect(compile(readFileSync('stdlib/sink_window.attn', 'utf8'), opts).artifact.schedule.wsConsumers).toBe(
      'overlap',
    );
    const fa3 = { ...opts, schedule: { ...asked, wsConsumers: 'fa3' } } as const;
    expect(compile(readFileSync('stdlib/document.attn', 'utf8'), fa3).artifact.schedule.wsProducerWalk).toBe(
      true,
    );
  });

  it("counts the walk's static arrays in whole KiBs against the shared-memory limit", () => {
    // Document's 3-stage walk: 230,456 dynamic bytes and 1,548 static ones, which ptxas places in
    // 2 KiB before the 1 KiB-aligned tiles; the launch failed on an H100 before this count.
    const s3 = { ...ws, wsConsumers: 'fa3', wsProducerWalk: true, blockK: 128, stages: 3 } as const;
    const opts = { target: 'cuda', headDim: 128, dtype: 'bf16', schedule: s3 } as const;
    expect(() => compile(readFileSync('stdlib/document.attn', 'utf8'), opts)).toThrow(
      /needs 232504 bytes of shared memory \(2048 for per-key values and tile codes, in whole KiBs before the aligned tiles\), the limit is 232448; use stages: 2/,
    );
    // 96-key tiles leave room for the third stage.
    const k96 = { ...opts, schedule: { ...s3, blockK: 96 } } as const;
    expect(compile(readFileSync('stdlib/document.attn', 'utf8'), k96).artifact.schedule.stages).toBe(3);
  });

  it('refuses schedules the core cannot run, saying why', () => {
    const base = {
      ...testSchedule,
      ...ws,
      dtype: 'bf16' as const,
      headDim: 64,
      valueDim: 64,
      blockQ: 128,
      blockK: 64,
    };
    const bad = [
      [{ ...base, dtype: 'f32', threads: 384, stages: 2 }, /f16 or bf16/],
      [{ ...base, threads: 256, stages: 2 }, /threads = 2·blockQ \+ 128/],
      [{ ...base, threads: 384, stages: 1 }, /2 to 4 stages/],
      [{ ...base, threads: 384, stages: 5 }, /2 to 4 stages/],
      [{ ...base, threads: 384, stages: 2, blockK: 256 }, /blockK in/],
      [{ ...base, threads: 384, stages: 2, headDim: 256, valueDim: 256 }, /headDim in \{64, 128\}/],
      [{ ...base, threads: 384, stages: 4, blockK: 128, headDim: 128, valueDim: 128 }, /shared memory/],
    ] as const;
    for (const [s, msg] of bad) expect(() => renderCuda(fullKernel(s), meta)).toThrow(msg);
  });
});

describe('wgmma-ws code structure', () => {
  const code = (file: string) => build(file, 128, 'bf16').artifact.code;
  // The attention kernel alone: from its signature to its closing brace in column 0.
  const kernelBody = (c: string) => {
    const start = c.indexOf('__launch_bounds__(THREADS, 1)');
    return c.slice(start, c.indexOf('\n}\n', start) + 2);
  };

  it('full: TMA into swizzled panels on mbarriers, setmaxnreg, consumers never load', () => {
    const c = code('full.attn');
    const body = kernelBody(c);
    expect(c).toContain('cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes');
    expect(c).toContain('mbarrier.try_wait.parity.shared::cta.b64');
    expect(body).toContain('const __grid_constant__ TmaMap tmq');
    expect(body).toMatch(/regs_dec<40>\(\);[\s\S]*\} else \{\s+regs_inc<232>\(\);/);
    // Loads come from the producer only: no cp.async, no CTA barrier after the role split.
    expect(body).not.toMatch(/load_panel<|cp_commit\(\)|cp_wait</);
    const split = body.indexOf('if (warp >= CWARPS)');
    expect(body.slice(split)).not.toContain('__syncthreads');
    expect(body.match(/tma_panels</g)).toBeNull();
    // Q, K, V: 4-D maps carrying the caller's strides (qo-rows.ts, kv-rows.ts).
    expect(body.match(/tma_kv_panels</g)?.length).toBe(3);
    expect(body).toContain('tma_kv_panels<D, BQ>(Qs, tmq, q0, h, b, qbar);');
    expect(c).toContain('cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes');
    expect(body).toContain('wg_qk(s, desc128(Qw');
    expect(c).not.toContain('/* predicate */');
    // The launcher builds the maps and passes them after (a, qscale).
    expect(c).toMatch(/make_tma_maps\(a, tma\)\) return fail\(ATTNC_ERR_CUDA/);
    expect(c).toMatch(/<<<grid, 384, smem, stream>>>\(a, qscale, tma\[0\], tma\[1\], tma\[2\]\);/);
    const manifest = JSON.parse(build('full.attn', 128, 'bf16').artifact.files!['full.json']!);
    expect(manifest.mapping).toMatchObject({ core: 'wgmma-ws', stages: 2, consumerWarpgroups: 2 });
  });

  it('causal: producer and consumers walk next_tile, so empty tiles are never loaded', () => {
    const c = code('causal.attn');
    const body = kernelBody(c);
    const producer = body.slice(body.indexOf('if (warp == CWARPS)'), body.indexOf('} else {'));
    expect(producer).toMatch(
      /for \(int kt = next_tile\(0, kt_full\); kt < nkt; kt = next_tile\(kt \+ 1, kt_full\)\)/,
    );
    expect(producer).toMatch(/if \(wrapped\) mbar_wait\(&empty_bar\[st\]/);
    const consumer = body.slice(body.indexOf('} else {'));
    // One tile at a time: classify the next, wait for this one, compute it, hand it back.
    expect(consumer).toMatch(
      /const int nk = next_tile\(kt \+ 1, nk_full\);\n\s+mbar_wait\(&full_bar\[st\], ph\);/,
    );
    expect(consumer).toContain('if (lane == 0) mbar_arrive(&empty_bar[st]);');
    expect(consumer).not.toContain('issue_qk');
    expect(consumer).not.toContain('pp_sync');
    expect(c).toContain('if (classify(kt, full)) return kt; // empty tile: skipped, nothing loaded');
    expect(c).toContain('else tile(Flag<false>{}, kt, st); // full tile: no predicate');
    expect(c).toMatch(/if constexpr \(MASKED\) \{ if \(!\(.*\)\) y = -INFINITY; \}/);
  });

  const withPlan = (file: string, over: Partial<WgmmaWsPlan>) => {
    const { kernel } = build(file, 128, 'bf16');
    const plan = { ...wgmmaWsPlan(kernel.schedule, kernel.formats, 227 * 1024), ...over };
    return renderCuda(kernel, meta, { core: wgmmaWsCore(plan) }).code;
  };

  it('overlap: the next S = Q·Kᵀ and its softmax run under this P·V; O rescaled after it', () => {
    const consumer = withPlan('causal.attn', { overlap: true }).split('regs_inc<232>();')[1]!;
    expect(consumer).toMatch(
      /const int nk = next_tile\(kt \+ 1, nk_full\);\n\s+if \(nk >= nkt\) \{[^}]*issue_pv\(p, st\);/,
    );
    expect(consumer).toMatch(
      /mbar_wait\(&full_bar\[st2\], ph2\);\n\s+float s\[NT\]\[4\];\n\s+issue_qk\(s, st2\);.*\n\s+issue_pv\(p, st\);\n\s+wg_wait<1>\(\);.*\n\s+acc_fence\(s\);\n\s+softmax_tile\(nk, nk_full, st2, s, alpha\);\n\s+wg_wait<0>\(\);/,
    );
    const release = consumer.indexOf('mbar_arrive(&empty_bar[st])');
    expect(consumer.indexOf('o[n][0] *= alpha[0];')).toBeGreaterThan(release);
    expect(consumer).toContain('else softmax(Flag<false>{}, kt, st, s, alpha); // full tile: no predicate');
    // One P register set: the next tile's P is packed only after this P·V has retired.
    expect(consumer).not.toContain('unsigned p2[');
    expect(consumer.indexOf('pack_p(s, p); // into the registers')).toBeGreaterThan(
      consumer.indexOf('o[n][0] *= alpha[0];'),
    );
  });

  it('fa3 (Schedule.wsConsumers): each warpgroup issues the next S = Q·Kᵀ and this P·V in its turn', () => {
    const s = { engine: 'wgmma-ws', blockQ: 128, blockK: 128, threads: 384, stages: 2 } as const;
    const c = compile(readStdlib('full.attn'), {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: { ...s, wsConsumers: 'fa3' },
    }).artifact.code;
    const consumer = c.split('regs_inc<232>();')[1]!;
    expect(consumer).toContain('if (wg == 1) pp_arrive();');
    expect(consumer).toMatch(
      /pp_sync\(\);.*\n\s+issue_qk\(s, st2\);.*\n\s+issue_pv\(p, st\);\n\s+pp_arrive\(\);/,
    );
    // Every issue is a turn: the first S, each pair, the last P·V (so both warpgroups pair up).
    expect(consumer.match(/pp_sync\(\);/g)?.length).toBe(3);
    expect(c).toMatch(
      /overlap=next S = Q·Kᵀ and softmax under this P·V pingpong=consumer warpgroups alternate/,
    );
    // Ping-pong needs two consumer warpgroups; an unknown mode is refused by name.
    const one = { ...s, blockQ: 64, threads: 256 };
    const build1 = (schedule: object) => () =>
      compile(readStdlib('full.attn'), { target: 'cuda', headDim: 128, dtype: 'bf16', schedule });
    expect(build1({ ...one, wsConsumers: 'fa3' })).toThrow(/wsConsumers fa3 .* needs blockQ 128/);
    expect(build1({ ...s, wsConsumers: 'fast' })).toThrow(
      /wsConsumers must be one of serial, overlap, pingpong, fa3, got fast/,
    );
    expect(() => build1({ ...one, wsConsumers: 'overlap' })()).not.toThrow();
  });

  it('producer walk (Schedule.wsProducerWalk): consumers read each tile from the ring', () => {
    const s = {
      engine: 'wgmma-ws',
      blockQ: 128,
      blockK: 128,
      threads: 384,
      stages: 2,
      wsProducerWalk: true,
    } as const;
    const doc = (over: object) =>
      kernelBody(
        compile(readStdlib('document.attn'), {
          target: 'cuda',
          headDim: 128,
          dtype: 'bf16',
          schedule: { ...s, ...over },
        }).artifact.code,
      );
    for (const body of [doc({}), doc({ wsConsumers: 'fa3' })]) {
      const split = body.indexOf('if (warp >= CWARPS)');
      const consumer = body.slice(body.indexOf('regs_inc<232>();'));
      // Only the producer classifies; the consumers run no classifier, ballot or shared barrier.
      expect(body.slice(0, split)).not.toContain('auto classify');
      expect(body.slice(split, body.indexOf('} else {', split))).toContain('auto classify');
      expect(consumer).not.toMatch(/next_tile|__ballot_sync|consumer_sync/);
      expect(consumer).toMatch(/const int k\w*_code = tile_code\[st2?\];/);
      // Per-key values: a ring of them, written by the producer before its second arrival.
      expect(body).toContain('__shared__ int tile_code[STAGES];');
      expect(body).toContain('__shared__ int hk0_ring[STAGES][BK];');
      expect(body).toContain('mbar_init(&full_bar[i], 2);');
      expect(body).toMatch(
        /hk0\[kk\] = kh0;\n\s+\}\n\s+\}\n\s+__syncwarp\(\);\n\s+if \(lane == 0\) mbar_arrive\(&full_bar\[st\]\);/,
      );
      expect(body).toMatch(
        /tile_code\[st\] = 2 \* nkt;\n\s+mbar_arrive\(&full_bar\[st\]\);\n\s+mbar_arrive\(&full_bar\[st\]\);/,
      );
      expect(consumer).toContain('const int* hk0 = hk0_ring[st];');
    }
    // Without per-key values one arrival completes a stage.
    const causal = compile(readStdlib('causal.attn'), {
      target: 'cuda',
      headDim: 128,
      dtype: 'bf16',
      schedule: s,
    }).artifact.code;
    expect(causal).toContain('mbar_init(&full_bar[i], 1);');
    expect(causal).toMatch(/tile_code\[st\] = 2 \* nkt;\n\s+mbar_arrive\(&full_bar\[st\]\);\n\s+\}/);
  });

  it('ping-pong: each consumer warpgroup waits its turn to issue S = Q·Kᵀ', () => {
    const consumer = withPlan('full.attn', { pingpong: true }).split('regs_inc<232>();')[1]!;
    expect(consumer).toContain('if (wg == 1) pp_arrive();');
    expect(consumer).toMatch(
      /pp_sync\(\);.*\n\s+wg_fence\(\);\n[\s\S]*wg_qk[\s\S]*wg_commit\(\);\n\s+pp_arrive\(\);.*\n\s+wg_wait0\(\);/,
    );
    expect(consumer).toContain('"r"(2 + wg)');
    expect(consumer).toContain('"r"(3 - wg)');
  });

  it('per-key values that overflow shared memory are refused with the way out', () => {
    // document hoists one per-key value (512 bytes at 128 keys; its default producer walk keeps
    // one ring slot per stage, 1032), counted in whole KiBs before the aligned tiles (1024 or
    // 2048): over a budget 100 bytes short of the 512.
    const { kernel } = build('document.attn', 128, 'bf16');
    const need = wgmmaWsPlan(kernel.schedule, kernel.formats, 227 * 1024).smemBytes;
    const plan = { ...wgmmaWsPlan(kernel.schedule, kernel.formats, 227 * 1024), sharedLimit: need + 412 };
    expect(() => renderCuda(kernel, meta, { core: wgmmaWsCore(plan) })).toThrow(
      /needs \d+ bytes of shared memory \((1024|2048) for per-key values and tile codes, in whole KiBs before the aligned tiles\).*use stages: 2/,
    );
  });

  it('one consumer warpgroup (blockQ 64): no register reallocation', () => {
    const k = fullKernel({
      ...testSchedule,
      ...ws,
      dtype: 'f16',
      headDim: 64,
      valueDim: 64,
      blockQ: 64,
      blockK: 64,
      threads: 256,
      stages: 3,
    });
    const c = renderCuda(k, meta).code;
    expect(c).toContain('constexpr int CWARPS = 4');
    expect(c).not.toMatch(/regs_(inc|dec)<\d+>\(\);/);
    expect(c).toContain('STAGES = 3');
  });
});

describe('wgmma-ws host side', () => {
  it("the tensor-map ABI this artifact declares matches the toolkit's cuda.h", async () => {
    const dir = scratchDir('ws-abi');
    const src = join(dir, 'abi.cu');
    writeFileSync(
      src,
      [
        '#include <cuda.h>',
        `static_assert(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 == ${tmaDataType.bf16}, "bf16");`,
        `static_assert(CU_TENSOR_MAP_DATA_TYPE_FLOAT16 == ${tmaDataType.f16}, "f16");`,
        `static_assert(CU_TENSOR_MAP_SWIZZLE_128B == ${TMA_SWIZZLE_128B}, "swizzle");`,
        `static_assert(CU_TENSOR_MAP_L2_PROMOTION_L2_256B == ${TMA_L2_256B}, "l2");`,
        'static_assert(CU_TENSOR_MAP_INTERLEAVE_NONE == 0 && CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE == 0, "zero");',
        'static_assert(sizeof(CUtensorMap) == 128 && sizeof(CUresult) == sizeof(int), "sizes");',
        'typedef int (*EncodeTiledFn)(CUtensorMap*, int, unsigned, void*, const unsigned long long*,',
        '    const unsigned long long*, const unsigned*, const unsigned*, int, int, int, int);',
        'static_assert(sizeof(cuuint64_t) == sizeof(unsigned long long) && sizeof(cuuint32_t) == sizeof(unsigned), "ints");',
        'int main() { return 0; }',
      ].join('\n'),
    );
    expectOk(await run(NVCC, ['-std=c++17', '-c', src, '-o', join(dir, 'abi.o')]), 'nvcc abi.cu');
  });
});

// Whole artifacts (-c: device code and the host launcher with its tensor maps), one translation
// unit per dtype. The consumers get their registers from setmaxnreg (ptxas reports the 168 of the
// 384-thread entry cap); a few bytes of spill remain in one kernel (alibi, D = 128: 4 bytes).
describe('stdlib on the wgmma-ws engine compiles with nvcc', () => {
  for (const [dtype, dims] of [
    ['bf16', [64, 128]],
    ['f16', [128]],
  ] as const) {
    it(`all ${stdlib.length} stdlib kernels, ${dtype}, D = ${dims.join(', ')}`, async () => {
      const dir = scratchDir(`ws-${dtype}`);
      const parts = dims.flatMap((headDim) =>
        stdlib.map((file) => {
          const { kernel } = build(file, headDim, dtype);
          expect(kernel.schedule.engine).toBe('wgmma-ws');
          return renderCuda({ ...kernel, name: `${kernel.name}_d${headDim}` }, meta).code;
        }),
      );
      const tu = join(dir, 'ws.cu');
      writeFileSync(tu, parts.join('\n'));
      const flags = [
        ...sassOnly('sm_90a'),
        '-std=c++17',
        '-Werror',
        'all-warnings',
        '-Xptxas',
        '-v',
        '-c', // an object: the launcher that builds the tensor maps goes through the host compiler
      ];
      const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'ws.o')]);
      expectOk(r, `nvcc ${tu}`);
      expect(r.stderr).not.toContain('C7508'); // setmaxnreg ignored
      const lines = r.stderr.split('\n');
      const spills = lines.flatMap((l, i) =>
        /Function properties for \w+_attention/.test(l) ? [lines[i + 1] ?? ''] : [],
      );
      expect(spills.length).toBe(dims.length * stdlib.length);
      for (const line of spills) {
        const m = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
        expect(m, line).not.toBeNull();
        expect(Number(m![1]), line).toBeLessThanOrEqual(8);
      }
    }, 600_000);
  }
});

// The consumer schedules and the producer walk (Schedule.wsConsumers, wsProducerWalk) the
// autotuner tries (bench/cuda/tune-list.mjs), in one translation unit: no warnings, no spills.
describe('wgmma-ws consumer schedules compile with nvcc', () => {
  it('serial / overlap / fa3, with and without the producer walk, on five masks', async () => {
    const dir = scratchDir('ws-modes');
    const modes = [
      { wsConsumers: 'fa3', wsProducerWalk: true },
      { wsConsumers: 'overlap' },
      { wsConsumers: 'serial', wsProducerWalk: true },
    ] as const;
    const files = ['full.attn', 'causal.attn', 'document.attn', 'sink_window.attn', 'softcap.attn'];
    const parts = files.flatMap((file, i) =>
      modes.map((mode, j) => {
        const schedule = {
          engine: 'wgmma-ws',
          blockQ: 128,
          blockK: 128,
          threads: 384,
          stages: 2,
          ...mode,
        } as const;
        const { kernel } = compile(readStdlib(file), {
          target: 'cuda',
          headDim: 128,
          dtype: 'bf16',
          schedule,
          decode: false, // as build(): the consumer schedules alone
        });
        return renderCuda({ ...kernel, name: `${kernel.name}_m${i}${j}` }, meta).code;
      }),
    );
    const tu = join(dir, 'modes.cu');
    writeFileSync(tu, parts.join('\n'));
    const flags = [...sassOnly('sm_90a'), '-std=c++17', '-Werror', 'all-warnings', '-Xptxas', '-v', '-cubin'];
    const r = await run(NVCC, [...flags, tu, '-o', join(dir, 'modes.cubin')]);
    expectOk(r, `nvcc ${tu}`);
    expect(r.stderr).not.toContain('C7508');
    const lines = r.stderr.split('\n');
    const spills = lines.flatMap((l, i) =>
      /Function properties for \w+_attention/.test(l) ? [lines[i + 1] ?? ''] : [],
    );
    expect(spills.length).toBe(files.length * modes.length);
    for (const line of spills) expect(line).toMatch(/ 0 bytes spill stores, 0 bytes spill loads/);
  }, 600_000);
});
