// checkRunFits: what `attnc run` refuses before allocating, as one-line UsageErrors naming the
// sizes and the limit (device limits given here, so no GPU is needed).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { checkRunFits, formatSize, MAX_REFERENCE_MASK } from '../../src/cli/run-limits.js';
import { compile } from '../../src/compile.js';

const { artifact } = compile('attention c() { mask causal }', { target: 'wgsl', headDim: 16 });
const roomy = {
  maxStorageBufferBindingSize: 2 ** 30,
  maxBufferSize: 2 ** 31,
  maxComputeWorkgroupsPerDimension: 65535,
};
const sizes = { B: 1, H: 1, Hkv: 1, Nq: 64, Nk: 64, D: 16 };
const refusal = (f: () => void): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('checkRunFits', () => {
  it('accepts a small run', () => {
    expect(() => checkRunFits(artifact, sizes, {}, roomy)).not.toThrow();
  });

  it('names the largest buffer and the smaller per-buffer limit', () => {
    const small = { ...roomy, maxStorageBufferBindingSize: 1 << 20, maxBufferSize: 1 << 19 };
    expect(refusal(() => checkRunFits(artifact, { ...sizes, Nq: 32768, Nk: 16 }, {}, small))).toMatch(
      /--nq 32768 --nk 16 --dim 16: needs .* of buffers, "q" \[1, 1, 32768, 16\] alone 2\.10 MB; the device allows 524 KB per buffer \(maxBufferSize\)$/,
    );
  });

  it('refuses a launch grid over maxComputeWorkgroupsPerDimension', () => {
    const few = { ...roomy, maxComputeWorkgroupsPerDimension: 4 };
    expect(refusal(() => checkRunFits(artifact, { ...sizes, Nq: 4096 }, {}, few))).toMatch(
      /--nq 4096 .*: entry point \w+ needs a grid of \[.*\] workgroups; the device allows 4 per dimension/,
    );
  });

  it('refuses int32 overflow, and reference mask and work beyond their caps', () => {
    expect(refusal(() => checkRunFits(artifact, { ...sizes, B: 2 ** 31 }, {}, roomy))).toMatch(
      /^--batch 2147483648: sizes are int32/,
    );
    expect(
      refusal(() =>
        checkRunFits(artifact, { ...sizes, H: 64, Hkv: 64, Nq: 8192, Nk: 8192, D: 16 }, {}, roomy),
      ),
    ).toMatch(new RegExp(`mask of 4\\.29 GB; attnc run allows ${formatSize(MAX_REFERENCE_MASK)}`));
    expect(refusal(() => checkRunFits(artifact, { ...sizes, Nq: 30000, Nk: 30000 }, {}, roomy))).toMatch(
      /the float64 reference would do about .* multiply-adds/,
    );
  });

  it('refuses a param that makes a tensor dimension negative, naming the tensor and the param', () => {
    // `--param n=-3` reached `new Float32Array(-3)`: an internal error (exit 2) with a stack trace.
    const sized = compile('attention t(n: int = 2, w: f32[n, kv]) { mask w[q, k] > 0.0 }', {
      target: 'wgsl',
      headDim: 16,
    }).artifact;
    expect(() => checkRunFits(sized, sizes, { n: 0 }, roomy)).not.toThrow();
    expect(refusal(() => checkRunFits(sized, sizes, { n: -3 }, roomy))).toBe(
      'tensor "w" [n, Nk] would have shape [-3, 64]: a dimension must be ≥ 0 (--param n=-3)',
    );
    // A count in a shape expression is named too: `indices` is [B, 1, Nq, top + 0 + 0].
    const routed = compile('attention r(top: int = 2) { select topk(top) by q . k vote heads }', {
      target: 'wgsl',
      headDim: 16,
    }).artifact;
    expect(refusal(() => checkRunFits(routed, sizes, { top: -1 }, roomy))).toMatch(
      /^buffer "indices" \[B, 1, Nq, top .*\] would have shape \[1, 1, 64, -1\]: .* \(--param top=-1\)$/,
    );
  });
});
