// The Hopper backward's opt-in producer warpgroup (codegen/cuda/backward-wgmma-ws.ts). Neither
// this machine nor the CPU emulator runs wgmma, mbarriers or setmaxnreg, so here: the default stays
// byte-identical, the 16-byte dQ atomics' lane exchange checked on the host, the emitted
// structure (roles, barriers and their parities, launch size), and nvcc sm_90a builds with
// warnings as errors and bounded spills. The numerics are checked on the H200 by
// bench/cuda/backward.py (ENGINES=wg,ws: every kernel against torch autograd before timing).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCudaBackwardWgmma } from '../../src/backward.js';
import { WGMMA_BWD_PRODUCER } from '../../src/codegen/cuda/backward-wgmma.js';
import { ALL_TUNE } from '../../src/codegen/cuda/backward-wgmma-tune.js';
import { DQ_BULK_BYTES, dqDoubleExtraBytes } from '../../src/codegen/cuda/backward-wgmma-dq-bulk.js';
import { expectNoSpills, expectOk, run, scratchDir } from './support.js';

const stdlib = (name: string): string => readFileSync(`stdlib/${name}.attn`, 'utf8');
const ws = (name: string, headDim: number, deterministic = false, dtype: 'bf16' | 'f16' = 'bf16') =>
  compileCudaBackwardWgmma(stdlib(name), {
    file: `${name}.attn`,
    headDim,
    dtype,
    deterministic,
    producer: true,
  }).backward;

describe('wgmma backward with a producer warpgroup: the knob', () => {
  it('is WGMMA_BWD_PRODUCER when not asked, and producer: false is the cp.async kernel as it was', () => {
    for (const name of ['causal', 'softcap']) {
      const opts = { file: `${name}.attn`, headDim: 128, dtype: 'bf16' as const };
      const plain = compileCudaBackwardWgmma(stdlib(name), { ...opts, producer: false }).backward;
      const unasked = compileCudaBackwardWgmma(stdlib(name), opts).backward;
      expect(unasked.code).toBe(WGMMA_BWD_PRODUCER ? ws(name, 128).code : plain.code);
      expect(plain.code).not.toContain('mbar_');
      expect(plain.code).toContain('THREADS, SMEM, stream>>>(*a);');
      expect(plain.threads).toBe(256);
      expect(ws(name, 128).code).toContain('mbar_wait(');
    }
  });
});

/**
 * dqAdd4's exchange for one warp: lane (g, t4) holds acc[n][e] of row g + 8·(e >> 1), column
 * n·8 + 2·t4 + (e & 1). Returns (row, column) → value as the 16-byte atomics add them.
 */
function v4Adds(acc: (lane: number, n: number, e: number) => number): Map<string, number> {
  const adds = new Map<string, number>();
  for (let lane = 0; lane < 32; lane++) {
    const [g, t4] = [lane >> 2, lane & 3];
    const odd = t4 & 1;
    const partner = lane ^ 1;
    for (let n = 0; n < 8; n++) {
      // The partner sends the row this lane keeps (s0, s1 of the emitted code).
      const pOdd = partner & 1;
      const r0 = pOdd ? acc(partner, n, 0) : acc(partner, n, 2);
      const r1 = pOdd ? acc(partner, n, 1) : acc(partner, n, 3);
      const v = odd ? [r0, r1, acc(lane, n, 2), acc(lane, n, 3)] : [acc(lane, n, 0), acc(lane, n, 1), r0, r1];
      const row = g + 8 * odd;
      const col = (t4 - odd) * 2 + n * 8;
      v.forEach((x, k) => {
        const key = `${row},${col + k}`;
        expect(adds.has(key), key).toBe(false);
        adds.set(key, x);
      });
    }
  }
  return adds;
}

describe('wgmma backward with a producer warpgroup: 16-byte dQ atomics', () => {
  it('adds every element of the 16 × 64 block once, with the value the 8-byte path adds there', () => {
    const value = (row: number, col: number) => row * 1000 + col;
    const acc = (lane: number, n: number, e: number) =>
      value((lane >> 2) + 8 * (e >> 1), n * 8 + 2 * (lane & 3) + (e & 1));
    const adds = v4Adds(acc);
    expect(adds.size).toBe(16 * 64);
    for (const [key, x] of adds) {
      const [row, col] = key.split(',').map(Number) as [number, number];
      expect(col % 4 === 0 || adds.has(`${row},${col - (col % 4)}`)).toBe(true);
      expect(x).toBe(value(row, col));
    }
  });
  it('emits the exchange the host model follows, 16-byte aligned, with the 8-byte fallback', () => {
    // The default tune adds dQ by bulk reductions (dqBulk, pingPong) and round 9's by plain 8-byte
    // atomics (dq8); the 16-byte exchange is round 9's other knobs without dq8.
    const tune = { ...ALL_TUNE };
    const c = compileCudaBackwardWgmma(stdlib('full'), {
      file: 'full.attn',
      headDim: 128,
      dtype: 'bf16',
      producer: true,
      tune,
    }).backward.code;
    expect(ws('full', 128).code).not.toContain('atomicAdd(reinterpret_cast<float4*>(dst + n * 8), v);');
    expect(c).toContain('const float s0 = odd ? acc[n][0] : acc[n][2], s1 = odd ? acc[n][1] : acc[n][3];');
    expect(c).toContain(
      'make_float4(r0, r1, acc[n][2], acc[n][3]) : make_float4(acc[n][0], acc[n][1], r0, r1)',
    );
    expect(c).toContain('float* dst = a.dq_acc + (qrow0 + i) * D + c0 + (t4 - odd) * 2;');
    expect(c).toContain('atomicAdd(reinterpret_cast<float4*>(dst + n * 8), v);');
    expect(c).toContain('const bool v4 = (reinterpret_cast<size_t>(a.dq_acc) & 15) == 0;');
    expect(c).toContain('add2(dst + n * 8, acc[n][2 * r], acc[n][2 * r + 1])');
  });
});

describe('wgmma backward with a producer warpgroup: emitted structure', () => {
  const causal = ws('causal', 128);
  const c = causal.code;
  const body = c.slice(c.indexOf('bwd_dkdv(const Args a)'), c.indexOf('bwd_dq_out(const Args a)'));
  it('launches 256 consumer threads and a 128-thread producer with setmaxnreg 40 / 232', () => {
    expect(c).toContain('constexpr int WS_PRODUCER = 128, DKDV_THREADS = THREADS + WS_PRODUCER;');
    expect(c).toContain('__launch_bounds__(DKDV_THREADS, 1) bwd_dkdv');
    expect(c).toContain('DKDV_THREADS, SMEM, stream>>>(*a);');
    expect(body).toContain('regs_dec<40>();');
    expect(body).toContain('regs_inc<232>();');
    expect(causal.smemBytes).toBe(
      compileCudaBackwardWgmma(stdlib('causal'), {
        file: 'c.attn',
        headDim: 128,
        dtype: 'bf16',
        producer: false,
      }).backward.smemBytes +
        32 +
        DQ_BULK_BYTES + // dqBulk's blocks and barriers (the default since round 10)
        dqDoubleExtraBytes(128), // pingPong's D-wide block twice (dqDouble, the default since round 23)
    );
  });
  it('pairs fills and releases: full waits on parity (it >> 1) & 1, empty on the release before', () => {
    expect(body).toContain('mbar_init(&full_bar[i], DQ_LOADERS);'); // dqBulk: one producer warp adds dQ
    expect(body).toContain('mbar_init(&empty_bar[i], 2);'); // pingPong: each warpgroup releases
    expect(body).toContain('if (it >= 2) mbar_wait(&empty_bar[buf], ((it >> 1) - 1) & 1);');
    expect(body).toContain('mbar_wait(&full_bar[buf], (it >> 1) & 1);');
    expect(body).toMatch(/cp_wait<0>\(\);\n\s*proxy_fence\(\);[^\n]*\n\s*mbar_arrive\(&full_bar\[buf\]\);/);
    expect(body).toContain('if ((tid & 127) == 0) mbar_arrive(&empty_bar[buf]);'); // pingPong: per warpgroup
    // Both roles walk the q-tiles with the same classifier.
    expect(body.split('auto next_tile = [&]').length - 1).toBe(2);
  });
  it('has no CTA-wide barrier after the roles part: the tile body syncs the consumers alone', () => {
    const after = body.slice(body.indexOf('the roles part here'));
    expect(after).not.toContain('__syncthreads');
    expect(after).toContain('wg_sync(); // dS complete in shared memory'); // pingPong: per warpgroup
    expect(after).toContain('wg_sync(); // this Q/dO buffer and its lse/delta (and dS) are free again');
    expect(c).toContain('asm volatile("bar.sync 1, %0;\\n" ::"n"(THREADS) : "memory");');
    // The producer's loaders (three warps under dqBulk) cover the 256-thread loader's stride.
    expect(body).toContain('for (int t = ptid; t < THREADS; t += DQ_LOADERS) {');
  });
  it('deterministic mode: no dQ in bwd_dkdv, bwd_dq on mma.sync as before', () => {
    const det = ws('softcap', 64, true, 'f16');
    const dkdv = det.code.slice(
      det.code.indexOf('bwd_dkdv(const Args a)'),
      det.code.indexOf('bwd_dq(const Args a)'),
    );
    expect(dkdv).not.toContain('wg_dq(');
    expect(dkdv).not.toContain('dq_acc');
    expect(dkdv).toContain('regs_dec<40>();');
    expect(det.code).toContain('bwd_reduce<<<');
  });
});

/**
 * Measured spills of the producer variant's bwd_dkdv (CUDA 13, bf16, 40/232 registers), with the
 * default tile-body knobs (WGMMA_BWD_TUNE): D = 128 8-44 bytes (full 8, causal 16, softcap 44),
 * D = 64 none; document's ping-pong kernel (round 21: its tile walk handed over, its mask cheap)
 * stores 144 / loads 188 bytes at D = 128 and 104 / 112 at D = 64 (deterministic 68 / 76 and none),
 * and was faster all the same (H100: 16K 3.58 → 3.20 ms at D 128, 2.84 → 2.59 at D 64); modality's
 * 196 / 240 and 112 / 136 (not timed: no benchmark pattern; its kernel before had its wgmmas
 * serialised). Round 22's dsMatrix (dS by stmatrix, D = 128): modality's loads 240 → 244 (document
 * 188 → 220, and faster: backward-wgmma.test.ts). The bounds keep them from growing.
 */
describe('wgmma backward with a producer warpgroup: nvcc sm_90a', () => {
  it('builds full, causal, document, softcap and modality (atomic and deterministic, D 64 and 128): warnings as errors', async () => {
    const dir = scratchDir('bwd-wgmma-ws');
    const parts: string[] = [];
    for (const headDim of [64, 128])
      for (const name of ['full', 'causal', 'document', 'softcap', 'modality'])
        for (const deterministic of [false, true])
          parts.push(
            ws(name, headDim, deterministic).code.replaceAll(
              `attnc_${name}_backward`,
              `attnc_${name}_${headDim}_${deterministic ? 'det' : 'at'}_backward`,
            ),
          );
    const cu = join(dir, 'backward.cu');
    writeFileSync(cu, parts.join('\n'));
    const flags = ['-arch=sm_90a', '-O3', '-c', '-Werror', 'all-warnings', '-Xptxas', '-v'];
    const r = await run('nvcc', [...flags, cu, '-o', join(dir, 'b.o')], undefined, 900_000);
    expectOk(r, 'nvcc sm_90a');
    // bwd_dkdv at D = 128 within the measured bound; the deterministic bwd_dq keeps the mma
    // backward's exceptions (document, softcap); everything else spill-free.
    expectNoSpills(
      r.stderr,
      3 * parts.length,
      [
        [/attnc_(document|modality)_(64|128)_at_backward\w*bwd_dkdvE/, 248],
        /attnc_\w+_128_\w+_backward\w*bwd_dkdvE/,
        /attnc_(document|softcap)_\w+_det_backward\w*bwd_dqE/,
      ],
      80,
    );
    // No wgmma serialised (C7512, C7520) or arrive injected (C7519): modality's kernel had them
    // before its tile walk was handed over (a costly mask's knobs, the classifier in the consumers).
    expect(r.stderr.split('\n').filter((l) => /C7512|C7520|C7519/.test(l))).toEqual([]);
  }, 900_000);
});
