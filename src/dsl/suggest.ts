// "Did you mean …?" hints: the closest known name to a misspelt one. Shared by the checker and
// the AST builder (which names the routing clauses' words).

/** Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`sikns`). */
export function editDistance(a: string, b: string): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      let v = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, sub);
      const swapped = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1];
      if (swapped) v = Math.min(v, (prev2[j - 2] ?? 0) + 1);
      row.push(v);
    }
    [prev2, prev] = [prev, row];
  }
  return prev[b.length] ?? 0;
}

/** A "did you mean" hint for the closest candidate, if one is close enough to be a typo. */
export function didYouMean(name: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: { name: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d <= limit && d < name.length && (best === undefined || d < best.d)) best = { name: c, d };
  }
  return best && `did you mean \`${best.name}\`?`;
}

/**
 * Words of Python and of FlexAttention's `mask_mod` / `score_mod` that this language spells
 * otherwise: someone porting a mask writes them first, and edit distance finds nothing near.
 */
const foreignWords: Readonly<Record<string, string>> = {
  True: '`true`',
  False: '`false`',
  and: '`&&`',
  or: '`||`',
  not: '`!`',
  q_idx: '`q` (the query position)',
  kv_idx: '`k` (the key position)',
};

/** torch functions a `score_mod` calls that the language writes otherwise. */
const foreignFunctions: Readonly<Record<string, string>> = {
  where: 'write `c ? a : b` for `where(c, a, b)`',
  sigmoid: 'write `1.0 / (1.0 + exp(-x))`',
  pow: 'there is no `pow`: write `x * x`, or `exp2(y * log2(x))` for x > 0',
  minimum: 'write `min(a, b)`',
  maximum: 'write `max(a, b)`',
  clip: 'write `clamp(x, lo, hi)`',
};

/** A hint for a call of a torch function the language spells otherwise, else undefined. */
export function foreignFunctionHint(name: string): string | undefined {
  return Object.hasOwn(foreignFunctions, name) ? foreignFunctions[name] : undefined;
}

/** "`and` is written `&&` here" for a word from Python or FlexAttention, else undefined. */
export function foreignHint(name: string): string | undefined {
  return Object.hasOwn(foreignWords, name) ? `\`${name}\` is written ${foreignWords[name]} here` : undefined;
}

/**
 * Where a name nothing declares would come from, for one no typo explains: params and tensors
 * are declared in the `attention` header (`mask q - k < window` with no `window` param said only
 * "unknown name"). None for a JavaScript object member, which cannot be a param.
 */
export function undeclaredHint(name: string, tensor: boolean): string | undefined {
  if (name in Object.prototype) return undefined;
  const param = tensor ? `${name}: i32[kv]` : `${name}: int = 8`;
  return `declare it as a ${tensor ? 'tensor ' : ''}param in the header's \`(…)\`, like \`(${param})\``;
}
