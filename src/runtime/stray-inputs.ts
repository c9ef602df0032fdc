// Keys of run() inputs that are in the wrong place. A param given beside q/k/v instead of in
// `params` (`{ ..., window: 16 }`, the generated modules' style for tensors), or `param:` for
// `params:`, was dropped without a word and the kernel ran with the default: a silent wrong
// answer. Other unknown keys pass, because callers spread wider objects into the inputs.
import type { Artifact } from '../codegen/artifact.js';
import { misspeltKey } from '../misspelt.js';

/** RunInputs' keys (validate.ts). */
const INPUT_KEYS = [
  'q',
  'k',
  'v',
  'B',
  'H',
  'Hkv',
  'Nq',
  'Nk',
  'caches',
  'tensors',
  'params',
  'kvCache',
  'qOffset',
  'kOffset',
  'scale',
] as const;

/** One line per misplaced or misspelt key of `inputs` (an object), naming where it belongs. */
export function strayInputIssues(artifact: Artifact, inputs: object): string[] {
  const known: readonly string[] = INPUT_KEYS;
  const tensors = new Set(artifact.bindings.filter((b) => b.role === 'tensor').map((b) => b.name));
  const issues: string[] = [];
  for (const key of Object.keys(inputs)) {
    if (known.includes(key)) continue;
    if (artifact.params.some((p) => p.name === key))
      issues.push(`"${key}" is a param of kernel "${artifact.name}": pass it as params: { ${key}: … }`);
    else if (tensors.has(key))
      issues.push(`"${key}" is a tensor of kernel "${artifact.name}": pass it as tensors: { ${key}: … }`);
    else {
      // `qOffset`, `q_offset` and `qoffset` are one name to a typist; so are `param` and `params`.
      const meant = misspeltKey(key, INPUT_KEYS, { plural: true, minLength: 2 });
      if (meant) issues.push(`run(inputs): unknown key "${key}"; did you mean "${meant}"?`);
    }
  }
  return issues;
}
