// Where a WGSL run's K/V rows live (docs/LANGUAGE.md "Paged and strided caches"): the caller's
// `kvCache` (strides per tensor, a paged kernel's block table), checked against the artifact
// and the arrays before anything reaches the GPU, and turned into the uniforms the kernel's
// address functions read (codegen/wgsl/kv-load.ts: `k_stride_b/_h/_n`, `v_stride_*`, `max_pages`).
// Absent, K and V are packed [B, Hkv, Nk, W] (a paged kernel: HND pages [pages, Hkv, N, W]).
import type { Artifact } from '../codegen/artifact.js';
import { misspeltKey } from '../misspelt.js';
import { describeValue } from './params.js';
import { kvCacheProblem, packedStrides, scatterKv, type KvCacheLayout, type KvStrides } from './kv-cache.js';

/** RunInputs.kvCache: the caller's K/V layout (the CUDA Args' k_stride_*, block_table, max_pages). */
export interface KvCacheInput {
  /** Element strides of k: per batch (a paged cache: per page), per kv head, per row. */
  readonly k?: KvStrides;
  readonly v?: KvStrides;
  /** Paged kernels (`cache paged N`): [B, maxPages] page ids, row-major, or longer (rows past B unused). */
  readonly blockTable?: Int32Array;
  /** Columns of the block table; default ceil(Nk / N), as the CUDA args_init sets it. */
  readonly maxPages?: number;
}

/** What a checked layout gives the run: uniform values, the block table's width, each cache's layout. */
export interface ResolvedKvRows {
  /** Uniform values by field name (k_stride_b …, max_pages). */
  readonly uniforms: ReadonlyMap<string, number>;
  /** Paged kernels: the block table's columns (the `max_pages` of its shape). */
  readonly maxPages?: number;
  /** Each float cache's layout (for the reference's gatherKv); absent for a quantized one. */
  readonly layouts: Readonly<Partial<Record<'k' | 'v', KvCacheLayout>>>;
  /**
   * The caches whose length their strides check (given strides, or a paged pool): any length
   * that holds what they address. The others are packed and must be exactly [B, Hkv, Nk, W].
   */
  readonly addressed: ReadonlySet<'k' | 'v'>;
}

const hasStrides = (a: Artifact, w: 'k' | 'v'): boolean => a.uniforms.some((f) => f.name === `${w}_stride_b`);

/** Largest element offset a u32 address can hold: the kernel's offsets are u32 sums. */
const U32_ELEMENTS = 2 ** 32;

interface KvRunSizes {
  readonly B: number;
  readonly Hkv: number;
  readonly Nk: number;
  readonly D: number;
  readonly Dv: number;
}

function checkedMaxPages(raw: KvCacheInput, s: KvRunSizes, P: number, issues: string[]): number {
  const maxPages = raw.maxPages ?? Math.max(1, Math.ceil(s.Nk / P));
  if (!Number.isSafeInteger(maxPages) || maxPages < 1 || maxPages > 2 ** 31 - 1) {
    issues.push(
      `kvCache.maxPages: expected an integer in [1, 2147483647], got ${describeValue(raw.maxPages)}`,
    );
    return 1;
  }
  return maxPages;
}

/** The layout of tensor `w`, or undefined after reporting why not. */
function layoutOf(
  w: 'k' | 'v',
  raw: KvCacheInput,
  s: KvRunSizes,
  paged: { P: number; maxPages: number; table: Int32Array } | undefined,
  align: number,
  issues: string[],
): KvCacheLayout | undefined {
  const W = w === 'k' ? s.D : s.Dv;
  const given = raw[w];
  const strides = given ?? packedStrides(s.Hkv, paged ? paged.P : s.Nk, W);
  const what = `kvCache.${w}`;
  const fields = [strides.batch, strides.head, strides.row];
  if (typeof strides !== 'object' || !fields.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    issues.push(
      `${what}: expected { batch, head, row } element strides (integers >= 0), got batch ${String(strides.batch)}, head ${String(strides.head)}, row ${String(strides.row)}`,
    );
    return undefined;
  }
  if (fields.some((x) => x % align !== 0)) {
    issues.push(
      `${what}: strides must be multiples of ${align} elements, the kernel's vector loads (got batch ${strides.batch}, head ${strides.head}, row ${strides.row})`,
    );
    return undefined;
  }
  return paged
    ? { kind: 'paged', pageSize: paged.P, strides, blockTable: paged.table, maxPages: paged.maxPages }
    : { kind: 'strided', strides };
}

/**
 * Why `table` is not the Int32Array [B, maxPages] of page ids a paged cache reads, or undefined.
 * At least that long: a longer table is an engine's, made for a larger batch, whose rows past B
 * are never read (an emitted module's dispatch and quantize take it too; runWgslQuantize says
 * the same in these words).
 */
export function blockTableProblem(
  table: unknown,
  P: number,
  B: number,
  maxPages: number,
): string | undefined {
  if (table instanceof Int32Array && table.length >= B * maxPages) return undefined;
  const got = table instanceof Int32Array ? `an Int32Array of ${table.length}` : describeValue(table);
  return `a paged cache (pages of ${P} rows) reads its keys through an Int32Array [B, maxPages] = [${B}, ${maxPages}] of page ids (at least ${B * maxPages}), got ${got}`;
}

const KV_FIELDS = ['k', 'v', 'blockTable', 'maxPages'];

/**
 * kvCache's fields are these four: one of another name (the emitted module's k_stride_b, a
 * misspelt maxpages) was ignored, and a strided cache was read as packed rows of the same length.
 */
function unknownFieldIssues(input: object, issues: string[]): void {
  for (const key of Object.keys(input)) {
    if (KV_FIELDS.includes(key)) continue;
    const strides = /stride/i.test(key) ? '; strides as k: { batch, head, row }' : '';
    const meant = misspeltKey(key, KV_FIELDS);
    issues.push(
      `kvCache.${key}: no such field (kvCache takes ${KV_FIELDS.join(', ')}${strides})` +
        (meant ? `; did you mean "${meant}"?` : ''),
    );
  }
}

/**
 * Checks `raw` (RunInputs.kvCache) against `artifact` and the k / v arrays' lengths; pushes each
 * problem (naming the argument) to `issues` and returns what the run needs.
 */
export function resolveKvRows(
  artifact: Artifact,
  raw: KvCacheInput | undefined,
  s: KvRunSizes,
  lengths: { k: number; v: number },
  issues: string[],
): ResolvedKvRows {
  const uniforms = new Map<string, number>();
  const addressed = new Set<'k' | 'v'>();
  const layouts: Partial<Record<'k' | 'v', KvCacheLayout>> = {};
  const input: KvCacheInput = raw ?? {};
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    issues.push('kvCache: expected { k?, v?, blockTable?, maxPages? }');
    return { uniforms, layouts, addressed };
  }
  unknownFieldIssues(input, issues);
  const P = artifact.kvRows?.pageSize;
  let paged: { P: number; maxPages: number; table: Int32Array } | undefined;
  if (P === undefined && (input.blockTable !== undefined || input.maxPages !== undefined))
    issues.push(
      'kvCache.blockTable: this kernel reads packed rows; only `cache paged N` kernels take a block table',
    );
  if (P !== undefined) {
    const maxPages = checkedMaxPages(input, s, P, issues);
    const table = input.blockTable;
    const problem = blockTableProblem(table, P, s.B, maxPages);
    if (problem !== undefined) issues.push(`kvCache.blockTable: ${problem}`);
    else paged = { P, maxPages, table: table as Int32Array };
    uniforms.set('max_pages', maxPages);
  }
  for (const w of ['k', 'v'] as const) {
    if (!hasStrides(artifact, w)) {
      if (input[w] !== undefined)
        issues.push(
          `kvCache.${w}: ${w} is a quantized cache, read at its own packed layout; it takes no strides`,
        );
      continue;
    }
    const l = layoutOf(w, input, s, paged, artifact.kvRows?.align ?? 1, issues);
    // Set even when refused: the cache is then checked by its strides, not as packed rows.
    const st = l?.strides ?? input[w] ?? packedStrides(s.Hkv, s.Nk, w === 'k' ? s.D : s.Dv);
    uniforms.set(`${w}_stride_b`, st.batch);
    uniforms.set(`${w}_stride_h`, st.head);
    uniforms.set(`${w}_stride_n`, st.row);
    if (input[w] === undefined && P === undefined) continue; // packed: validate checks its shape
    addressed.add(w);
    if (l === undefined || (P !== undefined && paged === undefined)) continue;
    const n = { B: s.B, Hkv: s.Hkv, Nk: s.Nk, W: w === 'k' ? s.D : s.Dv };
    const problem = kvCacheProblem(`kvCache.${w}`, l, n, lengths[w]);
    if (problem) issues.push(problem.replace(/the cache has/, `input "${w}" has`));
    else if (lengths[w] > U32_ELEMENTS)
      issues.push(`input "${w}": ${lengths[w]} elements; WGSL kernels address at most 2^32 (u32 offsets)`);
    else layouts[w] = l;
  }
  return { uniforms, layouts, addressed, ...(paged ? { maxPages: paged.maxPages } : {}) };
}

/** A paged pool (FlashInfer HND pages) holding logical K and V, for `attnc run` and tests. */
export interface PagedRun {
  readonly kvCache: KvCacheInput;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The block table over the pool, for a quantized cache's pools (kv-quant-pages.ts). */
  readonly pages: { pageSize: number; blockTable: Int32Array; maxPages: number; pages: number };
  /** How the cache is laid out, in a line (the CLI prints it). */
  readonly description: string;
}

/**
 * Logical [B, Hkv, Nk, D] / [.., Dv] K and V placed in a pool of HND pages of `pageSize` rows
 * (args_init's default strides), each sequence's pages in a shuffled order from `rand`, with one
 * spare page in the pool, so the run reads them through a block table.
 */
export function randomPagedRun(
  logical: { k: Float32Array; v: Float32Array },
  s: KvRunSizes,
  pageSize: number,
  rand: () => number,
): PagedRun {
  const maxPages = Math.max(1, Math.ceil(s.Nk / pageSize));
  const pool = s.B * maxPages + 1;
  const ids = Array.from({ length: pool }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const blockTable = Int32Array.from({ length: s.B * maxPages }, (_, i) => ids[i]!);
  const place = (x: Float32Array, W: number): Float32Array => {
    const strides = packedStrides(s.Hkv, pageSize, W);
    const cache = new Float32Array(pool * strides.batch);
    const layout: KvCacheLayout = { kind: 'paged', pageSize, strides, blockTable, maxPages };
    scatterKv(x, cache, layout, { B: s.B, Hkv: s.Hkv, Nk: s.Nk, W });
    return cache;
  };
  return {
    kvCache: { blockTable, maxPages },
    pages: { pageSize, blockTable, maxPages, pages: pool },
    k: place(logical.k, s.D),
    v: place(logical.v, s.Dv),
    description: `paged: ${pool} HND pages [Hkv, ${pageSize}, D] in a shuffled block table [${s.B}, ${maxPages}]`,
  };
}

/**
 * A paged quantized cache's pool size (shape symbol `pages` of its bindings, quant/paged-layout.ts):
 * read off the codes of k (else v), whose rows are [pages, Hkv, P, words]; every page id the block
 * table uses for tokens 0..Nk-1 must be one of them (WGSL clamps out-of-range reads to garbage, so
 * the run refuses them here). Undefined when no binding is paged by pages.
 */
export function quantPoolPages(
  artifact: Artifact,
  codes: (b: Artifact['bindings'][number]) => unknown,
  rowElems: (b: Artifact['bindings'][number]) => number | undefined,
  s: { B: number; Nk: number },
  table: { blockTable?: Int32Array; maxPages?: number },
  issues: string[],
): number | undefined {
  const b = artifact.bindings.find((x) => x.part === 'codes' && x.shape[0] === 'pages');
  const P = artifact.kvRows?.pageSize;
  if (!b || P === undefined) return undefined;
  const data = codes(b);
  const per = rowElems(b);
  if (!(data instanceof Uint32Array) || per === undefined || per <= 0) return undefined; // shape check reports it
  if (data.length % per !== 0) {
    issues.push(
      `cache tensor caches.${b.role}.codes: a pool of pages [pages, Hkv, ${P}, words] has a multiple of ${per} words, got ${data.length}`,
    );
    return undefined;
  }
  const pages = data.length / per;
  const t = table.blockTable;
  const maxPages = table.maxPages ?? Math.max(1, Math.ceil(s.Nk / P));
  if (t instanceof Int32Array && t.length === s.B * maxPages)
    for (let i = 0; i < s.B; i++)
      for (let p = 0; p < Math.ceil(s.Nk / P); p++) {
        const id = t[i * maxPages + p]!;
        if (!(id >= 0 && id < pages)) {
          issues.push(
            `kvCache.blockTable[${i}][${p}] = ${id} is not a page of the quantized cache's pool (${pages} pages)`,
          );
          return pages;
        }
      }
  return pages;
}
