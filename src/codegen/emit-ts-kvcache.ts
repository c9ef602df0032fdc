// The launch's K/V row addressing check of an emitted module, as text («TypeScript-only» notation
// as in emit-ts-runtime.ts): its own block because only kernels with float K/V carry it.
/**
 * Kernels with float K/V: resolve's check of the launch's \`kvCache\` (spliced in, or imported from
 * the shared runtime, only where a kernel has one, so no module carries it unused).
 */
export const kvCacheArgsSource = `
«/** A kernel's K/V row addressing as resolve passes it to kvCacheArgs (artifact.kvRows). */
interface KvGeometry {
  readonly D: number;
  readonly Dv: number;
  /** Elements every stride must be a multiple of (vec4 loads: 4). */
  readonly align: number;
  /** Paged kernels: rows per page. */
  readonly pageSize?: number;
  /** Which of k and v are float caches (a quantized one is read at its packed layout). */
  readonly k: boolean;
  readonly v: boolean;
}»

/**
 * K/V row addressing (docs/LANGUAGE.md "Paged and strided caches"): kvCache's fields, named as the
 * CUDA Args name them (k_stride_b, k_stride_h, k_stride_n, v_stride_*, max_pages), each left out
 * taking args_init's value (packed [B, Hkv, Nk, W]; paged: HND pages [pages, Hkv, N, W]), checked
 * as the CUDA launcher checks them. Also the elements each cache must hold.
 */
function kvCacheArgs(raw«: unknown», s«: Sizes», g«: KvGeometry», issues«: string[]»)«: KvArgs» {
  const P = g.pageSize;
  const names = [
    ...(g.k ? ['k_stride_b', 'k_stride_h', 'k_stride_n'] : []),
    ...(g.v ? ['v_stride_b', 'v_stride_h', 'v_stride_n'] : []),
    ...(P ? ['max_pages'] : []),
  ];
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    issues.push(\`kvCache: expected an object of \${names.join(', ')}, got \${describe(raw)}\`);
  } else unknownKeys('kvCache field', raw, names, issues);
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) «as Record<string, unknown>»;
  const maxPages = o.max_pages === undefined && P ? Math.max(1, Math.ceil(s.Nk / P)) : o.max_pages;
  const values«: Record<string, number>» = {};
  if (P) {
    if (!isI32(maxPages) || maxPages < 1) issues.push(\`kvCache.max_pages: expected an integer >= 1, got \${describe(maxPages)}\`);
    else if (maxPages * P < s.Nk) issues.push(\`kvCache.max_pages: the block table's \${maxPages} pages of \${P} rows hold fewer than Nk = \${s.Nk} keys\`);
    else values.max_pages = maxPages;
  }
  const need«: Record<string, number>» = {};
  const strides«: Record<string, { b: number; h: number; n: number; W: number }>» = {};
  for (const w of ['k', 'v']) {
    if (!(w === 'k' ? g.k : g.v)) continue;
    const W = w === 'k' ? g.D : g.Dv;
    const rows = P || s.Nk;
    const dflt«: Record<string, number>» = { b: s.Hkv * rows * W, h: rows * W, n: W };
    const st«: Record<string, number>» = {};
    for (const x of ['b', 'h', 'n']) {
      const name = \`\${w}_stride_\${x}\`;
      const v = o[name] === undefined ? dflt[x] : o[name];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= 2 ** 32) {
        issues.push(\`kvCache.\${name}: expected an integer in [0, 2^32) (elements), got \${describe(v)}\`);
      } else if (v % g.align !== 0) {
        issues.push(\`kvCache.\${name}: must be a multiple of \${g.align} elements, the kernel's vector loads (got \${v})\`);
      }
      st[x] = values[name] = Number(v);
    }
    if (s.Nk > 1 && st.n«!» < W) issues.push(\`kvCache.\${w}_stride_n: \${st.n} is smaller than a row (\${W} elements): rows would overlap\`);
    const [lastB, lastRow] = P ? [0, Math.min(P, s.Nk) - 1] : [s.B - 1, s.Nk - 1];
    // Packed strides keep the logical shape (and its exact length); others: what they address.
    const packed = !P && st.b === dflt.b && st.h === dflt.h && st.n === dflt.n;
    if (!packed) need[w] = s.Nk === 0 || s.B === 0 ? 0 : lastB * st.b«!» + (s.Hkv - 1) * st.h«!» + lastRow * st.n«!» + W;
    strides[w] = { b: st.b«!», h: st.h«!», n: st.n«!», W };
  }
  for (const [w, n] of Object.entries(need)) {
    if (n > 2 ** 32) issues.push(\`kvCache: "\${w}" would be addressed past element 2^32 (WGSL offsets are u32)\`);
  }
  return { values, need, strides, maxPages: Number(maxPages ?? 1), ...(P ? { pageSize: P } : {}) };
}
`;
