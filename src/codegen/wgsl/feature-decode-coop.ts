// The coop decode feature (features.ts): the coop engine's split-KV module of few-query calls,
// apart from the row engine's (feature-decode.ts): a page compiles for one engine.
export { renderCoopDecode } from './decode-coop.js';
