// An emitted module's decode mode: the artifact's WGSL decode variant (split-KV with an lse merge,
// for launches of few query rows over a long KV; artifact.ts's DecodeVariant), as tables, a layout
// function (its shapes, scratch included, and grids) and its WGSL. The runtime takes it per launch
// where the attnc runtime would (emit-ts-kernel.ts: decodeSplits), with the scratch made once per
// prepared launch (emit-ts-launch.ts).
import type { Artifact } from './artifact.js';
import {
  bindingRows,
  entryPointRows,
  gridsLiteral,
  shapesLiteral,
  templateLiteral,
} from './emit-ts-exprs.js';

/**
 * The decode variant's artifact when a module can run it: the main bindings plus scratch, the
 * same uniforms and params (so one resolve packs both). Otherwise undefined: no decode mode.
 */
export function usableDecode(a: Artifact): Artifact | undefined {
  const d = a.decode?.artifact;
  if (!d) return undefined;
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  const main = new Set(a.bindings.map((b) => b.name));
  const extra = d.bindings.filter((b) => !main.has(b.name));
  if (!extra.every((b) => b.role === 'scratch')) return undefined;
  if (!a.bindings.every((b) => d.bindings.some((x) => x.name === b.name && x.role === b.role)))
    return undefined;
  return same(d.uniforms, a.uniforms) && same(d.params, a.params) ? d : undefined;
}

/**
 * The decode tables, layout function and WGSL (module-private: createKernel hands them over);
 * `suffix` names a second engine's (emit-ts-engines.ts).
 */
export function decodeSource(a: Artifact, d: Artifact, suffix = ''): string {
  return [
    '/** Decode mode (split-KV + lse merge): bind group 0 of its entry points, and their order. */',
    `const decodeBindings${suffix}«: readonly KernelBinding[]» = [`,
    ...bindingRows(d),
    '];',
    `const decodeEntryPoints${suffix}«: readonly KernelEntryPoint[]» = [`,
    ...entryPointRows(d),
    '];',
    '',
    "/** Decode mode's shapes (its scratch included) and grids, from resolve's sizes and int params. */",
    `function decodeLayout${suffix}(e«: Readonly<Record<string, number>>»)«: DecodeLayout» {`,
    '  const shapes«: Record<string, number[]>» = {',
    ...shapesLiteral(d, '    ').map((line) => line.replace(/\be\.(\w+)/g, 'e.$1«!»')),
    '  };',
    '  checkShapes(kernelName, shapes);',
    '  const grids«: [number, number, number][]» = [',
    ...gridsLiteral(d, '    ').map((line) => line.replace(/\be\.(\w+)/g, 'e.$1«!»')),
    '  ];',
    '  return { shapes, grids };',
    '}',
    '',
    `/** The decode module's WGSL (${a.name}, ${d.entryPoints.map((ep) => ep.name).join(', ')}). */`,
    `const decodeWgsl${suffix} = ${templateLiteral(d.code)};`,
  ].join('\n');
}

/** The `decode` member of createKernel's spec (`suffix`: decodeSource's). */
export function decodeSpecMember(a: Artifact, suffix = ''): string {
  const v = a.decode!;
  const x = suffix;
  return (
    `    decode: { maxNq: ${v.maxNq}, splitKeys: ${v.splitKeys}, bindings: decodeBindings${x}, ` +
    `entryPoints: decodeEntryPoints${x}, wgsl: decodeWgsl${x}, layout: decodeLayout${x} },`
  );
}
