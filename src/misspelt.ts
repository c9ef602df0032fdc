// Keys a caller misspelt: the same name to a typist (case, `-` / `_`, and where asked a plural s).
// compile()'s options and run()'s inputs refuse such keys, since a dropped key means its default
// and a silent wrong answer; other unknown keys pass (callers spread wider objects into both).

/** The name of `known` that `key` misspells, or undefined. */
export function misspeltKey(
  key: string,
  known: readonly string[],
  { plural = false, minLength = 1 }: { readonly plural?: boolean; readonly minLength?: number } = {},
): string | undefined {
  const spelling = (name: string): string => {
    const bare = name.toLowerCase().replace(/[-_]/g, '');
    return plural ? bare.replace(/s$/, '') : bare;
  };
  return known.find((n) => n.length >= minLength && spelling(n) === spelling(key));
}
