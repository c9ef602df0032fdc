// The coop engine feature (features.ts): the prefill entry point whose invocations share query rows
// (coop.ts) and the engine's split-KV decode module (decode-coop*.ts), for kernels the schedule
// puts on the coop engine (schedule.wgslEngine = 'coop'); one feature as the row engine's is.
export { coopBody } from './coop-select.js';
export { renderCoopDecode } from './decode-coop.js';
