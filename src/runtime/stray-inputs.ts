// Keys of run() inputs that are in the wrong place. A param given beside q/k/v instead of in
// `params` (`{ ..., window: 16 }`, the generated modules' style for tensors), or `param:` for
// `params:`, was dropped without a word and the kernel ran with the default: a silent wrong
// answer. Other unknown keys pass, because callers spread wider objects into the inputs. Inside
// `caches`, a part the kernel's format lacks (or a cache for a k/v it reads as floats) is named:
// those were ignored too.
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
  // An emitted module's dispatch takes sizes: { B, H, Hkv, Nq, Nk }; run() takes them beside q/k/v.
  const nested = (inputs as { sizes?: unknown }).sizes;
  if (typeof nested === 'object' && nested !== null && !('B' in inputs) && 'B' in nested)
    issues.push(
      'run(inputs): the sizes go beside q, k, v ({ q, k, v, B, H, Hkv, Nq, Nk, ... }), not in sizes: { ... } as an emitted module takes them',
    );
  if ('caches' in inputs) issues.push(...strayCacheIssues(artifact, (inputs as { caches?: unknown }).caches));
  return issues;
}

/**
 * A quantized cache's parts that the kernel's format does not have (`caches.k.norm` for a format
 * without `norm`), or a cache for a k/v the kernel reads as floats: the kernel ignored them and
 * dequantized the codes its own way, so a cache made for another format gave garbage without a word.
 */
function strayCacheIssues(artifact: Artifact, caches: unknown): string[] {
  if (typeof caches !== 'object' || caches === null) return []; // validateRun names it
  const bindings = [...artifact.bindings, ...(artifact.decode?.artifact.bindings ?? [])];
  const issues: string[] = [];
  for (const [role, cache] of Object.entries(caches)) {
    if (cache === undefined) continue;
    if (role !== 'k' && role !== 'v') {
      issues.push(`caches.${role}: caches takes the quantized k and v caches: { k?, v? }`);
      continue;
    }
    const parts = new Set(
      bindings.filter((b) => b.role === role && b.part !== undefined).map((b) => b.part!),
    );
    if (parts.size === 0) {
      issues.push(
        `caches.${role}: kernel "${artifact.name}" reads ${role} as floats (no \`store\` for it); pass them as ${role}`,
      );
      continue;
    }
    if (typeof cache !== 'object' || cache === null) continue; // validateRun names it
    for (const part of Object.keys(cache))
      if (!parts.has(part as never))
        issues.push(
          `caches.${role}.${part}: the ${role} format of kernel "${artifact.name}" has no ${part} (its parts: ${[...parts].join(', ')}); was this cache made for another format?`,
        );
  }
  return issues;
}
