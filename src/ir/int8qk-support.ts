// `qk int8` (docs/LANGUAGE.md, "INT8 Q·Kᵀ"): which compilations may carry it. It is an option
// of the CUDA target over 16-bit Q and K, run by the SIMT engine (or, asked for, wgmma-ws's s8
// kernel at D = 128: schedule-preferred.ts, codegen/cuda/int8qk-wgmma.ts) with the decode path off
// (launcher.ts); everything else is refused with one positioned
// error at the statement, as unsupported routing and storage are (routing-check.ts,
// storage-support.ts), rather than emit a kernel that computes Q·Kᵀ in f32 and ignores it.
import type { AttentionDecl } from '../dsl/ast.js';
import type { Span } from '../diagnostics.js';
import { INT8_QK_SIMT_MAX_HEAD_DIM } from './int8qk.js';

export function unsupportedQk(
  decl: AttentionDecl,
  target: string,
  dtype: string | undefined,
  headDim: number | undefined,
): { message: string; span: Span } | undefined {
  const stmt = decl.qk?.[0];
  if (!stmt) return undefined;
  const refuse = (message: string) => ({ message, span: stmt.span });
  if (target !== 'cuda') return refuse(`\`qk int8\` is a CUDA prefill option; ${target}: not yet`);
  // CUDA stores bf16 when no dtype is asked (formats.ts defaultStorage).
  if (dtype === 'f32')
    return refuse('`qk int8` quantizes 16-bit Q and K: compile with dtype f16 or bf16, not f32');
  const sparse = decl.sparsity?.[0];
  if (sparse)
    return refuse(`\`qk int8\` with the routing statement on line ${sparse.keywordSpan.line}: not yet`);
  const imp = decl.importance?.[0];
  if (imp) return refuse(`\`qk int8\` with the importance output (line ${imp.keywordSpan.line}): not yet`);
  // The SIMT engine sums code products in f32, exact while 127²·D < 2²⁴ (codegen/cuda/int8qk-simt.ts).
  if (headDim !== undefined && headDim > INT8_QK_SIMT_MAX_HEAD_DIM)
    return refuse(`\`qk int8\` needs headDim at most ${INT8_QK_SIMT_MAX_HEAD_DIM}, found ${headDim}`);
  return undefined;
}

/**
 * `pv e4m3` (docs/LANGUAGE.md, "FP8 P·V"): an option of `qk int8`'s wgmma-ws kernel at D = 128
 * (codegen/cuda/int8qk-pv-wgmma.ts), asked for with `engine: 'wgmma-ws'` (its serial consumers;
 * qk int8's unasked schedules, ping-pong consumers or the SIMT engine, have no e4m3 P·V);
 * everything else is refused at the statement rather than emit a kernel that runs P·V in 16 bits
 * and ignores it. The order of the reasons is the order a user
 * fixes them in: target, dtype, the engine. Without `qk int8` it never gets here: the checker
 * refuses that (dsl/pv-stmt.ts checkPv); and `qk int8`'s refusals, checked first, cover target
 * and dtype today; pv's own stay so that a target `qk int8` gains does not take `pv e4m3` along
 * silently. The kernel's own limits (blockK 128, the serial schedule) are its render's errors.
 */
export function unsupportedPv(
  decl: AttentionDecl,
  target: string,
  dtype: string | undefined,
  engine: string | undefined,
  headDim: number | undefined,
): { message: string; span: Span } | undefined {
  const stmt = decl.pv?.[0];
  if (!stmt) return undefined;
  const refuse = (message: string) => ({ message, span: stmt.span });
  if (target !== 'cuda') return refuse(`\`pv e4m3\` is a CUDA prefill option; ${target}: not yet`);
  if (dtype === 'f32') return refuse('`pv e4m3` quantizes 16-bit V: compile with dtype f16 or bf16, not f32');
  if (engine !== 'wgmma-ws')
    return refuse(
      `\`pv e4m3\` runs on the wgmma-ws engine only: compile with schedule { engine: 'wgmma-ws' }${engine ? `, not ${engine}` : ''}`,
    );
  if (headDim !== undefined && headDim !== 128)
    return refuse(`\`pv e4m3\` needs headDim 128, found ${headDim}`);
  return undefined;
}
