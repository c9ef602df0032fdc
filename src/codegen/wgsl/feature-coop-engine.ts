// The coop engine feature (features.ts): the prefill entry point whose invocations share query rows
// (coop.ts), for kernels the schedule puts on the coop engine (schedule.wgslEngine = 'coop').
export { coopBody } from './coop-select.js';
