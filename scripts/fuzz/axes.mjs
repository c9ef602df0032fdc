// Round 15's draw axes: features round 14's draw never made, drawn from a stream of their own
// (seeded from the draw's seed) so that an old seed still draws the same base program, shape,
// dtype and tiles; these axes then add to it. Executed: decode (Nq = 1 over a longer cache),
// large GQA ratios, strided K/V layouts (a capacity-padded cache, a BNHD view) and paged caches
// (`cache paged N`, shuffled HND/NHD pages) on lavapipe. Compiled only: composed `store` formats
// (every element type, scale dtype, granularity, group, zero, norm, recent), `qk int8` /
// `pv e4m3` with and without smoothing, chunk routing, `select from` / `route … from`, the CUDA
// key-major token order, and the tensor-core engines at sm_80/86/89.
import { rng } from '../../dist/src/runtime/inputs.js';
import { sparsity } from './draw.mjs';

const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const chance = (r, p) => r() < p;

/** A `store` statement composed clause by clause; some compositions are refused (positioned). */
function storeStatement(r) {
  const cache = pick(r, ['k', 'v', 'kv']);
  const elem = pick(r, ['int8', 'int4', 'int2', 'e4m3', 'e5m2', 'e3m4']);
  const isInt = elem.startsWith('int');
  const per = pick(r, ['tensor', 'token', 'channel']);
  const perWord = { int8: 4, int4: 8, int2: 16 }[elem] ?? 4;
  const group =
    per === 'tensor' || chance(r, 0.5)
      ? ''
      : ` group ${per === 'token' ? perWord * pick(r, [1, 2, 4]) : pick(r, [8, 16, 32, 64])}`;
  const scale = isInt || chance(r, 0.5) ? ` scale ${pick(r, ['f16', 'f32'])} per ${per}${group}` : '';
  const zero = isInt && chance(r, 0.5) ? ` zero ${pick(r, ['f16', 'f32'])}` : '';
  const norm = scale && per === 'token' && chance(r, 0.3) ? ` norm ${pick(r, ['f16', 'f32'])}` : '';
  const recent = chance(r, 0.3) ? ` recent ${pick(r, [1, 8, 16, 40])} ${pick(r, ['f16', 'bf16'])}` : '';
  return `store ${cache} ${elem}${scale}${zero}${norm}${recent}`;
}

/** A per-token int store with wider codes for the tokens a tensor flags ([B, Hkv, Nk]) or lists ([B, Hkv, 4]). */
function salientClause(r) {
  const elem = pick(r, ['int2', 'int4']);
  const wider = elem === 'int2' ? pick(r, ['int4', 'int8']) : 'int8';
  const group = chance(r, 0.5) ? ` group ${elem === 'int2' ? 16 : 8}` : '';
  const zero = chance(r, 0.5) ? ' zero f16' : '';
  const by = pick(r, ['flags', 'list']);
  const stmt = `store ${pick(r, ['k', 'v', 'kv'])} ${elem} scale f16 per token${group}${zero} salient ${wider} from sal`;
  const param = by === 'flags' ? 'sal: i32[batch, kv_heads, kv]' : 'sal: i32[batch, kv_heads, 4]';
  const dims = ['batch', 'kv_heads', by === 'flags' ? 'kv' : 4];
  return { stmt, by, param, tensor: { dtype: 'i32', dims, values: by } };
}

/** Routing forms round 14 never drew: chunks, `from` a tensor; params and statement. */
function routingForm(r) {
  const count = pick(r, [1, 2, 4]);
  const force = chance(r, 0.3) ? ` force local(${pick(r, [1, 2])})` : '';
  return pick(r, [
    {
      params: ['chunk: i32[kv]'],
      stmt: `route chunks(chunk) topk(${count}) by ${pick(r, ['lnmean(q)', 'mean(q)', 'q'])} . ${pick(r, ['lnmean(k)', 'mean(k)', 'max(k)'])}${force}`,
      feature: 'route-chunks',
    },
    {
      params: [`idx: i32[batch, kv_heads, queries, ${count}]`],
      stmt: `select from idx${force}`,
      feature: 'select-from',
    },
    {
      params: [`idx: i32[batch, kv_heads, queries, ${count}]`],
      stmt: `route blocks(${pick(r, [8, 16, 64])}) from idx${force}`,
      feature: 'route-from',
    },
  ]);
}

/**
 * The round-15 axes of draw `seed` (whose round-14 case is `c`): extra params and statements,
 * a shape override, the K/V layout of the lavapipe run, the tensor-core arch, the token order.
 */
export function axes(seed, c) {
  const r = rng((seed ^ 0x27d4eb2f) >>> 0);
  const a = { params: [], stmts: [], features: [], shape: {}, layout: 'packed' };
  const sparse = c.features.some((f) => ['route', 'select', 'emit'].includes(f));
  const stored = c.features.includes('store');
  if (chance(r, 0.12)) {
    const P = pick(r, [1, 4, 16, 64]);
    a.stmts.push(`cache paged ${P}`);
    a.features.push('paged');
    a.pageSize = P;
    a.layout = pick(r, ['hnd-pages', 'nhd-pages']);
  } else if (chance(r, 0.35)) a.layout = pick(r, ['capacity', 'bnhd']);
  if (a.layout !== 'packed') a.features.push(`layout-${a.layout}`);
  if (chance(r, 0.15)) {
    // The default q_offset (Nk - 1); a near-limit k_offset would put the longer cache past 2^31.
    const kOffset = Math.abs(c.shape.kOffset ?? 0) < 1e6 ? c.shape.kOffset : undefined;
    a.shape = { Nq: 1, Nk: 1 + Math.floor(r() * 160), qOffset: undefined, kOffset };
    a.features.push('decode');
  } else if (chance(r, 0.15)) {
    const Hkv = pick(r, [1, 2]);
    a.shape = { Hkv, Hq: Hkv * pick(r, [5, 6, 8]) };
    a.features.push('gqa-wide');
  }
  a.mmaArch = pick(r, ['sm_80', 'sm_80', 'sm_86', 'sm_89']);
  // Executed quantized caches (lavapipe binds random codes; the reference reads their values),
  // some with salient tokens flagged or listed in a tensor.
  if (!c.compileOnly && a.layout === 'packed' && chance(r, 0.2)) {
    const salient = chance(r, 0.35) ? salientClause(r) : undefined;
    a.stmts.push(salient ? salient.stmt : storeStatement(r));
    a.features.push(salient ? `store-salient-${salient.by}` : 'store-run');
    if (salient) {
      a.params.push(salient.param);
      a.tensors = { sal: salient.tensor };
    }
  }
  // Executed ranked routing (route blocks / select / emit) against the routing oracle.
  if (!c.compileOnly && chance(r, 0.2)) {
    const s = sparsity(r);
    if (s.needsTop) a.params.push('top: int = 2');
    a.stmts.push(s.stmt);
    a.features.push(`${s.stmt.split(' ')[0]}-run`);
    a.routed = true;
  }
  // The WGSL runtime's decode mode (split-KV + merge): forced on or off, else its own choice.
  a.decodeMode = pick(r, ['always', 'never', undefined, undefined, undefined]);
  if (!c.compileOnly) return a;
  // qk int8 needs 16-bit storage and an unquantized K, and has no routing form: drawn where it can run.
  const qkFits = c.dtype !== 'f32' && !stored && !sparse;
  if (qkFits && chance(r, 0.3)) {
    a.stmts.push(`qk int8${chance(r, 0.5) ? ' smooth k' : ''}`);
    a.features.push('qk-int8');
    if (chance(r, 0.5)) {
      a.stmts.push(`pv e4m3${chance(r, 0.5) ? ' smooth v' : ''}`);
      a.features.push('pv-e4m3');
    }
  }
  if (!stored && !sparse && !a.features.includes('qk-int8') && chance(r, 0.3)) {
    a.stmts.push(storeStatement(r));
    a.features.push('store-composed');
  }
  if (!sparse && !c.importance && !a.features.includes('qk-int8') && chance(r, 0.2)) {
    const f = routingForm(r);
    a.params.push(...f.params);
    a.stmts.push(f.stmt);
    a.features.push(f.feature);
  }
  if (sparse && chance(r, 0.5)) {
    a.tokenOrder = 'key';
    a.features.push('token-order-key');
  }
  return a;
}
