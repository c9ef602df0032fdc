// The decode feature (features.ts): the row engine's split-KV module of few-query calls (the
// coop engine's is feature-decode-coop.ts).
export { renderDecode } from './decode.js';
