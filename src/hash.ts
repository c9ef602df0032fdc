// A small stable hash (FNV-1a, 64-bit via two 32-bit lanes) for cache keys. Not cryptographic;
// pure JS so the compiler core runs in a browser bundle too.
export function hashString(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** Hash of a plain value with keys sorted, so equal schedules hash equally. */
export function hashValue(v: unknown): string {
  const canon = (x: unknown): unknown =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, canon((x as Record<string, unknown>)[k])]),
        )
      : x;
  return hashString(JSON.stringify(canon(v)));
}
