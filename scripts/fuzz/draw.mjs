// Draws one campaign case from a seed: a random .attn program and the run configuration it is
// compiled and executed with. The program is the CI property tests' arbProgram (masks, scores,
// int/f32 params, doc/keep/slopes tensors, a let; wrap-prone int arithmetic one draw in four)
// plus the features those draws never make, spliced into its text: bool params, 2-D and
// batch-indexed tensors with literal dims, f32 lets, int(f32) conversions, f32 `%`, several lets,
// int params without a default, and (compile-only: the oracle here runs plain attention) `store`
// formats, `route`/`select`/`emit` statements and the importance output.
import fc from 'fast-check';
import { printDecl } from '../../dist/src/dsl/print.js';
import { rng } from '../../dist/src/runtime/inputs.js';
import { STORE_STATEMENTS as STORES, arbProgram, arbShape } from '../../dist/test/support/arbitraries.js';
import { axes } from './axes.mjs';

/**
 * The per-draw seed of draw `index` of a campaign seeded `seed`. Round 14's hash (`round: 14`)
 * mixed seed and index with one XOR, so (seed, index) pairs collided: seeds 1..14 × 150 draws
 * were 160 distinct cases, and one seed's draws recurred at other indices of the next. Round 15
 * hashes the seed, then the index into it, through murmur3's finalizer (no such collisions).
 */
export function drawSeed(seed, index, opts = { round: 15 }) {
  if (opts.round < 15) {
    let h = (seed ^ 0x9e3779b9) >>> 0;
    h = Math.imul(h ^ (index + 0x7f4a7c15), 0x85ebca6b) >>> 0;
    return (h ^ (h >>> 13)) >>> 0;
  }
  return fmix32((fmix32(seed >>> 0) + Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

/** murmur3's 32-bit finalizer: a bijection of u32 that mixes every input bit into every output bit. */
function fmix32(x) {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const chance = (r, p) => r() < p;

/** Routing/selection statements: pooled blocks, tokens, votes, forced ids, emitted indices. */
export function sparsity(r) {
  const count = pick(r, ['2', '1', 'top', '0', 'Nk']);
  const unit = `blocks(${pick(r, [16, 32, 64, 8])})`;
  const side = (s) => (chance(r, 0.5) ? `${pick(r, ['mean', 'max', 'lnmean', 'first'])}(${s})` : s);
  const vote = chance(r, 0.3) ? ` vote ${pick(r, ['heads', 'groups'])}` : '';
  const force = chance(r, 0.3) ? ` force first(1) local(${pick(r, [1, 2])})` : '';
  const emitIdx = chance(r, 0.2) ? ' emit indices' : '';
  const forms = [
    `route ${unit} topk(${count}) by ${side('q')} . ${pick(r, ['mean', 'max', 'first'])}(k)${vote}${force}${emitIdx}`,
    `select topk(${count}) by q . k${vote}${force}${emitIdx}`,
    `emit topk(${count}) by q . k${vote}`,
  ];
  return { stmt: pick(r, forms), needsTop: count === 'top' };
}

/** Splits printDecl's text into its name, params and body lines. */
function parts(text) {
  const lines = text.trimEnd().split('\n');
  const header = /^attention (\w+)\((.*)\) \{$/.exec(lines[0]);
  if (!header) throw new Error(`unexpected printed header: ${lines[0]}`);
  return { params: header[2] ? [header[2]] : [], body: lines.slice(1, -1) };
}

/**
 * The extra features, each with its own chance; returns param texts, leading lets, a term added
 * to the score, extra statements, run-time tensor specs and run-time param values.
 */
function extras(r, compileOnly) {
  const x = { params: [], lets: [], scoreTerms: [], stmts: [], tensors: {}, runParams: {}, features: [] };
  if (chance(r, 0.3)) {
    const on = chance(r, 0.5);
    x.params.push(`on: bool = ${on}`);
    x.stmts.push(`mask on ? q - k < ${1 + Math.floor(r() * 24)} : k % 2 == 0 || causal`);
    x.features.push('bool-param');
  }
  if (chance(r, 0.3)) {
    const width = pick(r, [1, 7, 16]);
    x.params.push(`tb: f32[heads, ${width}]`);
    x.scoreTerms.push(`tb[h, clamp(q - k, 0, ${width - 1})]`);
    x.tensors.tb = { dtype: 'f32', dims: ['heads', width] };
    x.features.push('2d-tensor');
  }
  if (chance(r, 0.2)) {
    x.params.push('bt: i32[batch, kv]');
    x.stmts.push('mask bt[b, k] % 3 != 1 || k == q');
    x.tensors.bt = { dtype: 'i32', dims: ['batch', 'kv'] };
    x.features.push('batch-tensor');
  }
  if (chance(r, 0.25)) {
    x.lets.push(`let f0 = float(k % 16) * 0.0625`, `let f1 = f0 * f0 - 0.25`);
    x.scoreTerms.push('f1');
    x.features.push('f32-let');
  }
  if (chance(r, 0.2)) {
    x.stmts.push(`mask int(float(q) * 0.5) >= int(float(k) * 0.5) || k < 3`);
    x.features.push('int-of-f32');
  }
  if (chance(r, 0.2)) {
    x.scoreTerms.push('float(q - k) % 3.0 * 0.25');
    x.features.push('f32-mod');
  }
  if (chance(r, 0.15)) {
    x.params.push('nd: int');
    x.runParams.nd = Math.floor(r() * 20) - 4;
    x.lets.push('let e0 = q - nd', 'let e1 = e0 / 2');
    x.stmts.push('mask e1 <= k / 2 + nd');
    x.features.push('no-default-param', 'let-chain');
  }
  if (!compileOnly) return x;
  if (chance(r, 0.5)) {
    const s = sparsity(r);
    if (s.needsTop) x.params.push('top: int = 2');
    x.stmts.push(s.stmt);
    x.features.push(s.stmt.split(' ')[0]);
  } else if (chance(r, 0.6)) {
    x.stmts.push(pick(r, STORES));
    x.features.push('store');
  }
  return x;
}

/**
 * One case: source, features, and the configuration (dims, dtype, shape, tiles, inputs seed):
 * round 14's case plus round 15's axes (axes.mjs, a stream of their own), or round 14's alone.
 */
export function draw(seed, opts = { round: 18 }) {
  const c = drawRound14(seed);
  if (opts.round < 15) return { ...c, layout: 'packed', mmaArch: 'sm_80' };
  const a = axes(seed, c);
  if (opts.round >= 17) dilationAxis(seed, c, a);
  if (opts.round >= 18) neighbourhoodAxis(seed, c, a);
  const lines = c.source.trimEnd().split('\n');
  const header = lines[0].replace(/\) \{$/, `${/\(\)/.test(lines[0]) ? '' : ', '}${a.params.join(', ')}) {`);
  const source = [
    a.params.length > 0 ? header : lines[0],
    ...lines.slice(1, -1),
    ...a.stmts.map((s) => `  ${s}`),
    '}',
  ].join('\n');
  return {
    ...c,
    source: `${source}\n`,
    features: [...c.features, ...a.features],
    shape: { ...c.shape, ...a.shape },
    layout: a.layout,
    pageSize: a.pageSize,
    mmaArch: a.mmaArch,
    decodeMode: a.decodeMode,
    tokenOrder: a.tokenOrder,
    routed: a.routed,
    tensors: { ...c.tensors, ...a.tensors },
  };
}

/**
 * Round 17's axis, from a stream of its own: a dilation conjunct `(q - k) % d == 0` (d a literal,
 * negative too, or an int param), which the tensor-core CUDA engines run in residue-class order,
 * the backward's dK/dV kernel included (the bwd-emu target executes it). Rounds 15 and 16 drew it
 * about once in 200 draws (through arbProgram's `%`); here one draw in six. Not with routing or
 * selection, which CUDA refuses beside a residue order.
 */
function dilationAxis(seed, c, a) {
  const r = rng((seed ^ 0x165667b1) >>> 0);
  const routed = a.routed || [...c.features, ...a.features].some((f) => /^(route|select|emit)/.test(f));
  if (routed || !chance(r, 0.17)) return;
  if (chance(r, 0.4)) {
    a.params.push(`dil: int = ${pick(r, [2, 3, 4])}`);
    a.stmts.push(chance(r, 0.5) ? 'mask (q - k) % dil == 0' : 'mask k % dil == q % dil');
  } else a.stmts.push(`mask (q - k) % ${pick(r, [2, 3, 5, -3, 7])} == 0`);
  a.features.push('dilation');
}

/**
 * Round 18's axis, from a stream of its own: a 2-D neighbourhood (`abs(q / W - k / W) <= r &&
 * abs(q % W - k % W) <= r`, W and r literals or int params), which the tensor-core CUDA engines run
 * in 2-D patches, the backward's dK/dV kernel included (the bwd-emu target executes it). No
 * earlier round drew one. One draw in eight; not beside a dilation conjunct (a kernel with residue
 * classes is not patched) nor with routing or selection.
 */
function neighbourhoodAxis(seed, c, a) {
  const r = rng((seed ^ 0x2d1b5a3f) >>> 0);
  const taken =
    a.routed || [...c.features, ...a.features].some((f) => /^(route|select|emit)|^dilation$/.test(f));
  if (taken || !chance(r, 0.125)) return;
  const [w, radius] = [pick(r, [3, 5, 7, 12]), pick(r, [1, 2])];
  const params = chance(r, 0.5);
  if (params) a.params.push(`nbw: int = ${w}`, `nbr: int = ${radius}`);
  const [W, R] = params ? ['nbw', 'nbr'] : [w, radius];
  a.stmts.push(`mask abs(q / ${W} - k / ${W}) <= ${R} && abs(q % ${W} - k % ${W}) <= ${R}`);
  a.features.push('neighbourhood');
}

/** Round 14's case: what old seeds drew (`draw(seed, { round: 14 })`). */
function drawRound14(seed) {
  const r = rng(seed);
  const wrap = chance(r, 0.25);
  const [decl] = fc.sample(arbProgram({ depth: chance(r, 0.5) ? 2 : 3, wrap }), { seed, numRuns: 1 });
  const base = parts(printDecl(decl));
  const compileOnly = chance(r, 0.35);
  const x = extras(r, compileOnly);
  let body = base.body;
  if (x.scoreTerms.length > 0) {
    const i = body.findIndex((l) => l.startsWith('  score '));
    const term = x.scoreTerms.join(' + ');
    if (i >= 0) body = body.map((l, j) => (j === i ? `  score (${l.slice(8)}) + ${term}` : l));
    else
      body = [
        ...body.filter((l) => l.startsWith('  let ')),
        `  score score + ${term}`,
        ...body.filter((l) => !l.startsWith('  let ')),
      ];
  }
  const name = `fz${seed.toString(36)}`;
  const params = [...base.params, ...x.params].join(', ');
  const lines = [...x.lets.map((l) => `  ${l}`), ...body, ...x.stmts.map((s) => `  ${s}`)];
  const source = `attention ${name}(${params}) {\n${lines.join('\n')}\n}\n`;
  const D = pick(r, [3, 5, 8, 16, 20, 32, 33, 64, 64, 64, 128, 128]);
  const Dv = chance(r, 0.7) ? D : pick(r, [1, 8, 24, 40, 64]);
  const [shape] = fc.sample(arbShape({ maxN: 48, nearLimits: wrap && chance(r, 0.5) }), {
    seed: seed + 1,
    numRuns: 1,
  });
  return {
    seed,
    name,
    source,
    features: [...(wrap ? ['wrap'] : []), ...x.features],
    compileOnly,
    importance:
      compileOnly && !x.features.some((f) => ['route', 'select', 'emit'].includes(f)) && chance(r, 0.4)
        ? pick(r, ['sum', 'normalized'])
        : undefined,
    D,
    Dv,
    dtype: pick(r, ['f32', 'f16', 'bf16']),
    shape: { ...shape, D, Dv },
    tensors: x.tensors,
    runParams: x.runParams,
    tile: {
      blockQ: pick(r, [4, 8, 16, 32]),
      blockK: pick(r, [8, 16, 32]),
      rows: pick(r, [1, 2, 4]),
      tprLog: Math.floor(r() * 6),
    },
    coopVariant: Math.floor(r() * 6),
  };
}
