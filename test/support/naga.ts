// naga (naga-wasm) as the WGSL tests' validator: parse and validate a module, throwing naga's
// error; the wasm objects are freed either way.
import { parseWgsl, validate } from 'naga-wasm';

export function nagaValidate(code: string): void {
  const module = parseWgsl(code);
  try {
    validate(module).free();
  } finally {
    module.free();
  }
}
