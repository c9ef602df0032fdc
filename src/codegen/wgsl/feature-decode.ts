// The decode feature (features.ts): the split-KV module of few-query calls.
export { renderDecode } from './decode.js';
