// The value checks of runWgslBackward (backward-webgpu.ts) that its size and length checks do not
// make: before them a misspelt param (`capp`) ran with the default, a NaN param, scale or offset
// gave NaN or truncated gradients, and a Float64Array q of the right byte length was read as f32
// words. The emitted module's backward() (codegen/emit-ts-backward.ts) refuses all of these; this
// mirrors it for the runtime entry point, with the forward run()'s wording (params.ts).
import type { WgslBackwardArtifact } from '../codegen/wgsl/backward.js';
import type { BackwardRunInputs } from './backward-webgpu.js';
import { misspeltKey } from '../misspelt.js';
import { describeValue, offsetProblems, paramProblem } from './params.js';
import { checkScale } from './validate-positions.js';

/** Every problem with the call's params, offsets, scale and array types; empty when it can run. */
export function backwardInputIssues(art: WgslBackwardArtifact, inp: BackwardRunInputs): string[] {
  const issues: string[] = [];
  strayKeyIssues(art, inp, issues);
  paramIssues(art, inp.params, issues);
  offsetIssues(inp, issues);
  if (inp.scale !== undefined) checkScale(inp.scale, art.headDim, issues);
  arrayIssues(art, inp, issues);
  return issues;
}

const INPUT_KEYS = [
  'q',
  'k',
  'v',
  'out',
  'lse',
  'dout',
  'dlse',
  'B',
  'H',
  'Hkv',
  'Nq',
  'Nk',
  'params',
  'tensors',
];
const OPTION_KEYS = ['qOffset', 'kOffset', 'scale'];

/**
 * Misspelt and misplaced keys, as the forward run() names them (stray-inputs.ts): `qoffset` ran
 * with the default offset and `dOut` beside `dout` went unread. Other keys pass (misspelt.ts).
 */
function strayKeyIssues(art: WgslBackwardArtifact, inp: BackwardRunInputs, issues: string[]): void {
  const known = [...INPUT_KEYS, ...OPTION_KEYS];
  const tensors = new Set(art.bindings.filter((b) => b.role === 'tensor').map((b) => b.name));
  const kernel = art.name.replace(/_backward$/, '');
  for (const key of Object.keys(inp)) {
    if (known.includes(key)) continue;
    const meant = misspeltKey(key, known, { plural: true, minLength: 2 });
    if (art.params.some((p) => p.name === key))
      issues.push(`"${key}" is a param of kernel "${kernel}": pass it as params: { ${key}: … }`);
    else if (tensors.has(key))
      issues.push(`"${key}" is a tensor of kernel "${kernel}": pass it as tensors: { ${key}: … }`);
    else if (meant) issues.push(`runWgslBackward(inputs): unknown key "${key}"; did you mean "${meant}"?`);
  }
}

function paramIssues(art: WgslBackwardArtifact, given: unknown, issues: string[]): void {
  if (given === undefined) return;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    issues.push(`params: expected an object of param values, got ${describeValue(given)}`);
    return;
  }
  const known = art.params.map((p) => p.name);
  for (const [name, value] of Object.entries(given)) {
    const p = art.params.find((x) => x.name === name);
    if (!p) {
      const list = known.length ? `known: ${known.join(', ')}` : 'it has none';
      issues.push(`param "${name}": the kernel has no such param (${list})`);
      continue;
    }
    // undefined means "the default", as in the forward run().
    const problem = value === undefined ? undefined : paramProblem(name, p.dtype, value);
    if (problem) issues.push(problem);
  }
}

/** The forward's rules (params.ts offsetProblems), non-integers written with their type. */
function offsetIssues(inp: BackwardRunInputs, issues: string[]): void {
  const qOffset = inp.qOffset ?? inp.Nk - inp.Nq;
  issues.push(...offsetProblems(qOffset, inp.Nq, inp.kOffset ?? 0, inp.Nk, describeValue));
}

/** q k v out lse dout (and dlse when given) are Float32Arrays; a tensor is the array type of its binding's dtype. */
function arrayIssues(art: WgslBackwardArtifact, inp: BackwardRunInputs, issues: string[]): void {
  const named: Record<string, unknown> = {
    q: inp.q,
    k: inp.k,
    v: inp.v,
    out: inp.out,
    lse: inp.lse,
    dout: inp.dout,
  };
  if (inp.dlse !== undefined) named.dlse = inp.dlse;
  for (const [name, data] of Object.entries(named))
    if (!(data instanceof Float32Array))
      issues.push(`${name}: expected a Float32Array, got ${describeValue(data)}`);
  const tensors = (inp.tensors ?? {}) as Record<string, unknown>;
  const bound = art.bindings.filter((b) => b.role === 'tensor');
  for (const [name, data] of Object.entries(tensors)) {
    const b = bound.find((x) => x.name === name);
    if (!b) {
      const list = bound.length ? `known: ${bound.map((x) => x.name).join(', ')}` : 'it reads none';
      issues.push(`tensor "${name}": the kernel has no such tensor (${list})`);
      continue;
    }
    const ctor = b.dtype === 'i32' ? Int32Array : Float32Array;
    if (!(data instanceof ctor))
      issues.push(
        `tensor "${name}": expected ${ctor === Int32Array ? 'an' : 'a'} ${ctor.name}, got ${describeValue(data)}`,
      );
  }
}
