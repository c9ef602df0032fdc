// A K/V storage format as the `store` statement that declares it (docs/LANGUAGE.md, "Syntax"), for
// tests that generate formats with fast-check and compile them.
import type { Granularity, QuantFormat } from '../../src/quant/format.js';

function perText(p: Granularity): string {
  if (p.kind === 'tensor') return 'per tensor';
  return `per ${p.kind}${p.group !== undefined ? ` group ${p.group}` : ''}`;
}

/** `store <which> …` declaring `f`; salient tokens come `from` the tensor param `salientFrom`. */
export function storeStatement(which: 'k' | 'v' | 'kv', f: QuantFormat, salientFrom = 'sal'): string {
  const parts = [`store ${which} ${f.elem}`];
  if (f.scale) parts.push(`scale ${f.scale.dtype} ${perText(f.scale.per)}`);
  if (f.kind === 'int' && f.zero) parts.push(`zero ${f.zero}`);
  if (f.norm) parts.push(`norm ${f.norm}`);
  if (f.recent) parts.push(`recent ${f.recent.tokens} ${f.recent.dtype}`);
  if (f.kind === 'int' && f.salient) parts.push(`salient ${f.salient.elem} from ${salientFrom}`);
  return parts.join(' ');
}

/** `f` with its salient tokens (if any) flagged per token: what the WGSL backend runs today. */
export function withFlaggedSalient(f: QuantFormat): QuantFormat {
  if (f.kind !== 'int' || !f.salient) return f;
  return { ...f, salient: { ...f.salient, by: 'flags' } };
}
