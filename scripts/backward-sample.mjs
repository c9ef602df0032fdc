// Emitted-code snapshot of the tensor-core CUDA backwards (emit-sample.mjs covers the forwards): every
// stdlib entry × bf16 D 128, f16 D 64, bf16 D 64 × engines (mma; wgmma without and with the producer
// warpgroup; each knob set of TUNE_ENGINES) × atomic and deterministic, one SHA-256 per case. For
// refactors of the backward that must leave the other kernels byte-identical. Needs a build
// (`npx tsc -p tsconfig.json`); --keep DIR also writes each source (for nvcc or a diff).
//
//   node scripts/backward-sample.mjs --out /tmp/bwd-before.json
//   node scripts/backward-sample.mjs --out /tmp/bwd-after.json --compare /tmp/bwd-before.json
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { reportSample } from './sample-report.mjs';
import { compile } from '../dist/src/compile.js';
import { frontend } from '../dist/src/dsl/index.js';
import { renderCudaBackwardMma } from '../dist/src/codegen/cuda/backward-mma.js';
import {
  backwardWgmmaUnsupported,
  renderCudaBackwardWgmma,
} from '../dist/src/codegen/cuda/backward-wgmma.js';
import { TUNE_ENGINES } from '../dist/src/codegen/cuda/backward-wgmma-tune.js';

const { values } = parseArgs({
  options: { out: { type: 'string' }, compare: { type: 'string' }, keep: { type: 'string' } },
});

const configs = [
  { dtype: 'bf16', headDim: 128 },
  { dtype: 'f16', headDim: 64 },
  { dtype: 'bf16', headDim: 64 },
];
const sha = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** engine name → render(kernel, { deterministic }) for every engine that takes `kernel`. */
function engines(kernel) {
  const all = { mma: (o) => renderCudaBackwardMma(kernel, o) };
  if (backwardWgmmaUnsupported(kernel)) return all;
  all.wg = (o) => renderCudaBackwardWgmma(kernel, { ...o, producer: false });
  all.ws = (o) => renderCudaBackwardWgmma(kernel, { ...o, producer: true });
  for (const [name, tune] of Object.entries(TUNE_ENGINES))
    all[name] = (o) => renderCudaBackwardWgmma(kernel, { ...o, producer: true, tune });
  return all;
}

const result = {};
for (const file of readdirSync('stdlib')
  .filter((f) => f.endsWith('.attn'))
  .sort()) {
  const source = readFileSync(join('stdlib', file), 'utf8');
  for (const entry of frontend(source, file).decls.map((d) => d.decl.name))
    for (const { dtype, headDim } of configs) {
      const at = `${file}:${entry}:${dtype}:D${headDim}`;
      let kernel;
      try {
        const opts = { target: 'cuda', file, entry, headDim, dtype, lse: true };
        kernel = compile(source, { ...opts, limits: { maxWorkgroupStorageBytes: 227 * 1024 } }).kernel;
      } catch (e) {
        result[at] = `error: ${String(e.message).split('\n')[0]}`;
        continue;
      }
      for (const [engine, render] of Object.entries(engines(kernel)))
        for (const deterministic of [false, true]) {
          const key = `${at}:${engine}:${deterministic ? 'det' : 'atomic'}`;
          try {
            const code = render({ deterministic }).code;
            result[key] = sha(code);
            if (values.keep) writeFileSync(join(values.keep, `${key.replaceAll(':', '_')}.cu`), code);
          } catch (e) {
            result[key] = `error: ${String(e.message).split('\n')[0]}`;
          }
        }
    }
}
reportSample(result, values, 'rendered');
