// The tail both emitted-code snapshots share (scripts/emit-sample.mjs for forwards,
// scripts/backward-sample.mjs for the tensor-core backwards): write the hashes, count the cases,
// and with --compare list what changed against an earlier snapshot (exit 1 when anything did).
import { readFileSync, writeFileSync } from 'node:fs';

/** `result`: case key → sha of the emitted text or `error: …`; `done`: the verb of a success. */
export function reportSample(result, values, done) {
  if (values.out) writeFileSync(values.out, JSON.stringify(result, null, 1) + '\n');
  const cases = Object.keys(result).length;
  const errors = Object.values(result).filter((v) => v.startsWith('error')).length;
  console.log(`${cases} cases, ${cases - errors} ${done}, ${errors} refused`);
  if (!values.compare) return;
  const before = JSON.parse(readFileSync(values.compare, 'utf8'));
  const keys = new Set([...Object.keys(before), ...Object.keys(result)]);
  const changed = [...keys].filter((k) => before[k] !== result[k]);
  for (const k of changed.slice(0, 40)) console.log(`changed: ${k}`);
  console.log(changed.length === 0 ? 'identical' : `${changed.length} cases differ`);
  process.exitCode = changed.length === 0 ? 0 : 1;
}
