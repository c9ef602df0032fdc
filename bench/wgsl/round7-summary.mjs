// The short summary of bench/wgsl/round7.sh: reads $OUT/round7-*.json and prints the matmul
// ceiling, prefill TFLOP/s (and the ratio to the ceiling), and the decode variants' GB/s with the
// split and merge passes' share, best first, against the default of the same run.
//   node bench/wgsl/round7-summary.mjs OUT_DIR
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.';
const read = (name) => {
  const path = join(dir, `round7-${name}.json`);
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')).rows : [];
};
const f = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));

const prefill = ['p', 'q', 'r'].flatMap(read);
const ceilings = prefill.filter((r) => r.kind === 'matmul' && r.tflops !== undefined).map((r) => r.tflops);
const ceiling = ceilings.length ? Math.max(...ceilings) : undefined;
console.log(
  `matmul ceiling (best of ${ceilings.length} in this run): ${f(ceiling)} TFLOP/s [${ceilings.map((x) => f(x)).join(', ')}]`,
);
console.log('prefill, H 8 (TFLOP/s, x ceiling):');
for (const r of prefill.filter((r) => r.kind === 'prefill')) {
  const what = `  ${r.kernel.padEnd(7)} N=${r.N} D=${String(r.D).padEnd(4)} ${r.engine.padEnd(32)}`;
  if (r.error) console.log(`${what} FAILED ${r.error}`);
  else
    console.log(
      `${what} ${f(r.tflops).padStart(6)}  ${f(ceiling ? r.tflops / ceiling : undefined, 2)}x  [${r.schedule}]`,
    );
}
const decode = read('d');
for (const r of decode.filter((r) => r.error)) console.log(`decode ${r.spec} ${r.N ?? ''} FAILED ${r.error}`);
for (const N of [...new Set(decode.filter((r) => !r.error).map((r) => r.N))]) {
  const ceilings = decode.filter((r) => !r.error && r.N === N && r.spec.startsWith('read-ceiling'));
  const rows = decode
    .filter((r) => !r.error && r.N === N && !r.spec.startsWith('read-ceiling'))
    .sort((a, b) => b.gbps - a.gbps);
  if (rows.length === 0) continue;
  const def = rows.find((r) => r.spec === 'default');
  console.log(
    `decode Nk ${N}, H ${rows[0].H} / ${rows[0].Hkv}, D 128 (GB/s of K+V by GPU time; split and merge ms alone; wall-clock spread over rounds):`,
  );
  const best = Math.max(...ceilings.map((r) => r.gbps));
  console.log(
    `  read ceiling (plain vec4 stream of K and V): ${ceilings.map((r) => `${f(r.gbps, 0)} GB/s [${r.spec}]`).join(', ')}`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.spec.padEnd(20)} ${f(r.gbps, 0).padStart(5)} GB/s  ${f(def ? r.gbps / def.gbps : undefined, 2)}x default  ${f(ceilings.length ? r.gbps / best : undefined, 2)}x ceiling` +
        `  full ${f(r.ms, 4)}  split ${f(r.splitMs, 4)}  merge ${f(r.mergeMs, 4)}  spread ${f(r.spreadPct, 0)}%  ${r.splits} splits`,
    );
  }
}
