// The emitted module's `resolve` (emit-ts.ts): checks a launch's sizes, params, offsets, scale and
// K/V cache strides, evaluates shapes and grids, and packs the uniforms — per alternate where the
// module carries variants whose grids or K/V row geometry differ (emit-ts-engines.ts).
import type { ParamSlot } from '../ir/kernel.js';
import type { Artifact } from './artifact.js';
import { gridsDiffer } from './emit-ts-engines.js';
import { gridsLiteral, lit, shapesLiteral, sizeNames } from './emit-ts-exprs.js';

function paramHelper(p: ParamSlot): string {
  return p.dtype === 'i32' ? 'intParam' : p.dtype === 'f32' ? 'floatParam' : 'boolParam';
}

/** A param's default as code: `${-0}` is '0', so -0.0 is spelled out. */
const defaultText = (p: ParamSlot): string =>
  p.default === undefined ? 'undefined' : Object.is(p.default, -0) ? '-0' : String(p.default);

const kvUniformFields = [
  'k_stride_b',
  'k_stride_h',
  'k_stride_n',
  'v_stride_b',
  'v_stride_h',
  'v_stride_n',
  'max_pages',
];
// kvCache.pages sizes the pools of a paged quantized cache; it is no uniform.

/** What kvCacheArgs (the runtime) needs of a kernel with float K/V: its artifact.kvRows and dims. */
function kvGeometry(a: Artifact) {
  if (!a.kvRows) return undefined;
  const has = (w: string): boolean => a.uniforms.some((f) => f.name === `${w}_stride_b`);
  return {
    D: a.schedule.headDim,
    Dv: a.schedule.valueDim,
    align: a.kvRows.align,
    ...(a.kvRows.pageSize ? { pageSize: a.kvRows.pageSize } : {}),
    k: has('k'),
    v: has('v'),
    // A paged quantized cache's pools (codegen/wgsl/dequant.ts shapes them by `pages`).
    ...(a.bindings.some((b) => b.shape[0] === 'pages') ? { pool: true } : {}),
  };
}

/**
 * resolve's lines for a paged quantized cache (pools [pages, Hkv, N, ·]): kvCache.pages (default
 * B · max_pages) sizes the pools; the rest of kvCache goes to kvCacheArgs; each quantized cache's
 * codes get page strides (in words), so dispatch's page check (checkHostPages) refuses a page id
 * past the pools. Only such kernels get these lines.
 */
function poolLines(a: Artifact, kv: NonNullable<ReturnType<typeof kvGeometry>>): string[] {
  const P = kv.pageSize!;
  // kvCacheArgs's geometry has no `pool` (its KvGeometry type would refuse the field).
  const geometry = Object.fromEntries(Object.entries(kv).filter(([key]) => key !== 'pool'));
  const words = (w: 'k' | 'v'): number | undefined => {
    const b = a.bindings.find((x) => x.role === w && x.part === 'codes' && x.shape[0] === 'pages');
    const per = b?.shape[3]?.match(/^cdiv\((D|Dv), (\d+)\)$/);
    if (!b) return undefined;
    if (!per) throw new Error(`emit ts: codes of ${w} have no word count (${b.shape.join(', ')})`);
    return Math.ceil((per[1] === 'D' ? kv.D : kv.Dv) / Number(per[2]));
  };
  const strides = (['k', 'v'] as const)
    .map((w) => [w, words(w)] as const)
    .filter((x): x is readonly ['k' | 'v', number] => x[1] !== undefined)
    .map(([w, W]) => `${w}: { b: s.Hkv * ${P * W}, h: ${P * W}, n: ${W}, W: ${W} }`);
  return [
    '  const rawKv = (o «as { kvCache?: unknown }»).kvCache;',
    '  const { pages: rawPages, ...kvRest } = (typeof rawKv === "object" && rawKv !== null ? rawKv : {}) «as Record<string, unknown>»;',
    `  const kv0 = kvCacheArgs(typeof rawKv === "object" && rawKv !== null ? kvRest : rawKv, s, ${JSON.stringify(geometry)}, issues);`,
    '  const pages = rawPages === undefined ? s.B * kv0.maxPages : rawPages;',
    '  if (!isI32(pages) || Number(pages) < 1)',
    "    issues.push(`kvCache.pages: expected an integer >= 1 (pages in the quantized cache's pools), got ${describe(pages)}`);",
    `  const kv = { ...kv0, strides: { ...kv0.strides, ${strides.join(', ')} } };`,
  ];
}

/** Whether some alternate's grids differ from the primary's (resolve then takes a variant index). */
export const ownGrids = (a: Artifact, alts: readonly Artifact[]): boolean =>
  alts.some((x) => gridsDiffer(a, x));

/** Whether some alternate's K/V row geometry differs from the primary's. */
export const ownKv = (a: Artifact, alts: readonly Artifact[]): boolean =>
  kvGeometry(a) !== undefined &&
  alts.some((x) => JSON.stringify(kvGeometry(x)) !== JSON.stringify(kvGeometry(a)));

/**
 * `resolve`: validates the launch options, evaluates shapes and grids, packs the uniforms. With
 * alternates whose grids or K/V row alignment differ, `alt` picks one (0: the primary, i: alternate i).
 */
export function resolveSource(a: Artifact, alts: readonly Artifact[]): string {
  const altGrids = ownGrids(a, alts);
  const altKv = ownKv(a, alts);
  const kv = kvGeometry(a);
  return [
    '/** Checks sizes, params, offsets and scale; evaluates shapes and grids; packs the uniforms. */',
    altGrids || altKv
      ? 'function resolve(o«: LaunchOptions», alt = 0)«: Resolved» {'
      : 'function resolve(o«: LaunchOptions»)«: Resolved» {',
    '  const s = checkSizes(kernelName, o.sizes);',
    '  const issues«: string[]» = [];',
    ...paramLines(a.params),
    '  const { qOffset, kOffset, scale } = launchScalars(o, s, schedule.headDim, issues);',
    ...kvLines(a, alts, altKv),
    '  if (issues.length > 0) throw new KernelInputError(issues, kernelName);',
    envLine(a.params, kv),
    ...shapeLines(a, kv),
    ...gridLines(a, alts, altGrids),
    '  const u = new DataView(new ArrayBuffer(uniformLayout.bytes));',
    ...uniformLines(a),
    `  return { shapes, grids, uniforms: u.buffer, env: e${kv ? ', kv' : ''} };`,
    '}',
  ].join('\n');
}

/** Refuses unknown param names, then reads each param through its dtype's checker (or default). */
function paramLines(params: readonly ParamSlot[]): string[] {
  const lines = [
    '  const given = (o «as { params?: unknown }»).params;',
    `  unknownKeys('param', given, [${params.map((p) => lit(p.name)).join(', ')}], issues);`,
  ];
  if (params.length === 0) return lines;
  return [
    ...lines,
    '  const p = (typeof given === "object" && given !== null ? given : {}) «as Record<string, unknown>»;',
    '  const params = {',
    ...params.map(
      (p) =>
        `    ${p.name}: ${paramHelper(p)}(${lit(p.name)}, p[${lit(p.name)}], ${defaultText(p)}, issues),`,
    ),
    '  };',
  ];
}

/**
 * The K/V cache argument: a paged quantized cache's pools, a float cache's strides (per variant
 * where they differ), or — for a quantized cache at its own layout — a refusal of any kvCache.
 */
function kvLines(a: Artifact, alts: readonly Artifact[], altKv: boolean): string[] {
  const kv = kvGeometry(a);
  if (kv?.pool) return poolLines(a, kv);
  if (!kv)
    return [
      '  if ((o «as { kvCache?: unknown }»).kvCache !== undefined)',
      "    issues.push('kvCache: this kernel reads quantized K/V caches at their own packed layout; it takes no strides');",
    ];
  const geometry = altKv
    ? `[${[a, ...alts].map((x) => JSON.stringify(kvGeometry(x))).join(', ')}][alt]«!»`
    : JSON.stringify(kv);
  return [`  const kv = kvCacheArgs((o «as { kvCache?: unknown }»).kvCache, s, ${geometry}, issues);`];
}

/** The environment shape and grid expressions read: sizes, int params, and the cache's page counts. */
function envLine(params: readonly ParamSlot[], kv: ReturnType<typeof kvGeometry>): string {
  const ints = params.filter((p) => p.dtype === 'i32').map((p) => `${p.name}: params.${p.name}`);
  if (kv) ints.push(...(kv.pageSize ? ['max_pages: kv.maxPages'] : []));
  if (kv?.pool) ints.push('pages: Number(pages)');
  return `  const e = { B: s.B, H: s.H, Hkv: s.Hkv, Nq: s.Nq, Nk: s.Nk${ints.map((x) => `, ${x}`).join('')} };`;
}

function shapeLines(a: Artifact, kv: ReturnType<typeof kvGeometry>): string[] {
  return [
    '  const shapes«: Record<string, number[]>» = {',
    ...shapesLiteral(a, '    '),
    '  };',
    // A float K/V cache: the elements its strides address (kvCacheArgs).
    ...(['k', 'v'] as const)
      .filter((w) => kv?.[w])
      .map((w) => `  if (kv.need.${w} !== undefined) shapes.${w} = [kv.need.${w}];`),
    '  checkShapes(kernelName, shapes);',
  ];
}

/** The launch grids: one list, or one per variant when an alternate's grids differ. */
function gridLines(a: Artifact, alts: readonly Artifact[], altGrids: boolean): string[] {
  if (!altGrids)
    return ['  const grids«: [number, number, number][]» = [', ...gridsLiteral(a, '    '), '  ];'];
  return [
    // Typed as a whole: an untyped literal of literals infers number[][] for each variant.
    '  const gridsOf«: [number, number, number][][]» = [',
    ...[a, ...alts].flatMap((x) => ['    [', ...gridsLiteral(x, '      '), '    ],']),
    '  ];',
    '  const grids = gridsOf[alt]«!»;',
  ];
}

/** One DataView store per uniform field, from a param, a size, a launch scalar or a cache stride. */
function uniformLines(a: Artifact): string[] {
  const fixed: Record<string, string> = {
    q_offset: 'qOffset',
    k_offset: 'kOffset',
    scale: 'scale',
    ...Object.fromEntries([...sizeNames].map((n) => [n, `s.${n}`])),
    ...Object.fromEntries(kvUniformFields.map((n) => [n, `kv.values.${n}«!»`])),
  };
  const paramNames = new Set(a.params.map((p) => p.name));
  return a.uniforms.map((f) => {
    const value = paramNames.has(f.name) ? `params.${f.name}` : fixed[f.name];
    if (value === undefined) throw new Error(`emit ts: uniform field "${f.name}" has no known source`);
    const set = f.dtype === 'f32' ? 'setFloat32' : f.dtype === 'u32' ? 'setUint32' : 'setInt32';
    return `  u.${set}(${f.offset}, ${value}, true); // ${f.name}: ${f.dtype}`;
  });
}
