// The row engine feature (features.ts): the prefill entry point that gives each invocation a query
// row (attention.ts), for kernels the schedule puts on the row engine.
export { attentionBody } from './attention.js';
