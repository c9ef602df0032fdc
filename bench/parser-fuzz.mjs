// Parser fuzz benchmark (issue #9): 10^5 generated and mutated sources through the front end
// (lexer, limits, parser, AST builder, checker), every clean one printed and parsed back, and one
// clean program in `COMPILE_EVERY` compiled for both targets and run through the reference
// interpreter. Asserts 0 uncaught exceptions (only diagnostics and CompileErrors) and records the
// worst-case time per case and the peak memory. The sources come from a seeded generator
// (test/dsl/fuzz-sources.ts), so a run is reproducible; CI runs a few thousand of the same kind.
// Usage (after npm run build): nice node bench/parser-fuzz.mjs [--cases N] [--seed S] [--out FILE]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { compile } from '../dist/src/compile.js';
import { CompileError } from '../dist/src/diagnostics.js';
import { frontend, parseProgram } from '../dist/src/dsl/index.js';
import { limits } from '../dist/src/dsl/limits.js';
import { printProgram } from '../dist/src/dsl/print.js';
import { declPredicates } from '../dist/src/runtime/ast-eval.js';
import { fuzzCase, seeded } from '../dist/test/dsl/fuzz-sources.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const CASES = Number(arg('cases', 100_000));
const SEED = Number(arg('seed', 20261203));
const OUT = arg('out', 'bench/results/parser-fuzz-2026-12-03.json');
const COMPILE_EVERY = 10;

const seeds = readdirSync('stdlib')
  .filter((f) => f.endsWith('.attn'))
  .sort()
  .map((f) => readFileSync(`stdlib/${f}`, 'utf8'));
const sizes = { B: 1, H: 2, Hkv: 1, Nq: 4, Nk: 4, D: 4 };
const dimSizes = { kv: sizes.Nk, queries: sizes.Nq, heads: sizes.H, kv_heads: sizes.Hkv, batch: sizes.B };
/** Zero-filled tensors for `decl`'s tensor params; undefined if a dim is not known here. */
function tensorsFor(decl) {
  const out = {};
  for (const p of decl.params) {
    if (p.type.kind !== 'tensor') continue;
    const shape = p.type.dims.map((d) =>
      d.kind === 'literal' ? d.value : d.kind === 'size' ? dimSizes[d.name] : NaN,
    );
    if (!shape.every((n) => n <= 64)) return undefined;
    out[p.name] = { data: new Float64Array(shape.reduce((a, b) => a * b, 1)), shape };
  }
  return out;
}

/** What runs after a clean parse; throws only on a defect. */
function laterPhases(source, fe, deep) {
  const printed = printProgram(fe.program);
  const again = parseProgram(printed, 'printed.attn');
  if (again.diagnostics.length > 0)
    throw new Error(`printed program does not parse: ${again.diagnostics[0].message}`);
  if (!deep) return;
  for (const target of ['wgsl', 'cuda']) {
    try {
      compile(source, { target });
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
    }
  }
  for (const { decl } of fe.decls) {
    const tensors = tensorsFor(decl);
    if (decl.sparsity || !tensors) continue; // routing has its own reference path
    const p = declPredicates(decl, { params: {}, tensors, sizes });
    for (let q = 0; q < 4; q++) for (let k = 0; k < 4; k++) p.mask(0, 1, q, k) && p.score(0.5, 0, 1, q, k);
  }
}

const rng = seeded(SEED);
const byKind = {};
const uncaught = [];
let worst = { ms: 0 };
let peakRss = 0;
let peakHeap = 0;
let clean = 0;
let compiled = 0;
const times = [];
const start = performance.now();
for (let i = 0; i < CASES; i++) {
  const { kind, source } = fuzzCase(rng, seeds);
  const k = (byKind[kind] ??= { cases: 0, clean: 0, worstMs: 0 });
  k.cases++;
  const t0 = performance.now();
  try {
    const fe = frontend(source, 'fuzz.attn');
    const ok = fe.diagnostics.length === 0;
    if (ok) {
      clean++;
      k.clean++;
      const deep = clean % COMPILE_EVERY === 0;
      if (deep) compiled++;
      laterPhases(source, fe, deep);
    }
  } catch (e) {
    if (uncaught.length < 20)
      uncaught.push({
        case: i,
        kind,
        error: String(e?.stack ?? e).slice(0, 600),
        source: source.slice(0, 300),
      });
    else uncaught.push({ case: i });
  }
  const ms = performance.now() - t0;
  times.push(ms);
  k.worstMs = Math.max(k.worstMs, ms);
  if (ms > worst.ms) worst = { ms, case: i, kind, chars: source.length };
  if (i % 100 === 0 || kind === 'huge') {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }
  if (i % 10_000 === 0)
    process.stderr.write(`${i} cases, ${((performance.now() - start) / 1000).toFixed(0)} s\n`);
}
times.sort((a, b) => a - b);
const q = (p) => Number(times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(3));
const mb = (x) => Number((x / 2 ** 20).toFixed(1));
const out = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, node ${process.version}`,
  seed: SEED,
  cases: CASES,
  limits,
  uncaughtExceptions: uncaught.length,
  cleanPrograms: clean,
  compiledForBothTargets: compiled,
  byKind: Object.fromEntries(
    Object.entries(byKind).map(([kind, v]) => [kind, { ...v, worstMs: Number(v.worstMs.toFixed(1)) }]),
  ),
  timeMs: { p50: q(0.5), p99: q(0.99), p999: q(0.999), worst: Number(worst.ms.toFixed(1)) },
  worstCase: worst,
  peakRssMiB: mb(peakRss),
  peakHeapMiB: mb(peakHeap),
  totalSeconds: Number(((performance.now() - start) / 1000).toFixed(1)),
  uncaught,
};
writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify({ ...out, uncaught: uncaught.slice(0, 3) }, null, 2));
process.exitCode = uncaught.length === 0 ? 0 : 1;
