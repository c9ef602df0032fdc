// The row engine feature (features.ts): the prefill entry point that gives each invocation a query
// row (attention.ts) and the engine's split-KV decode module of few-query calls (decode.ts), for
// kernels the schedule puts on the row engine. One feature, not two: every kernel but routed and
// all-empty ones renders both, and compileAsync's chunk of both compresses better than two files.
export { attentionBody } from './attention.js';
export { renderDecode } from './decode.js';
