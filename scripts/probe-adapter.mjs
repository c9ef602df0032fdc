// Exits 0 if the `webgpu` package finds an adapter in this environment, 1 otherwise; prints its info.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) process.exit(1);
const info = adapter.info;
console.log(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim());
process.exit(0);
