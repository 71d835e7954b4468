/**
 * A tiny glob for layer names: `*` matches any run of characters (including `/` and none),
 * `?` exactly one character; everything else matches itself (case-sensitive). Layer names are
 * ONNX node names such as `/features/features.0/Conv`, so `*` deliberately crosses `/`.
 *
 * @example
 * globMatch('/features/*', '/features/features.0/Conv'); // true
 * globMatch('*Gemm', '/classifier/Gemm'); // true
 */
export function globMatch(pattern: string, name: string): boolean {
  // Iterative wildcard matching with backtracking to the last `*` (linear for typical names).
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** True when any pattern matches the name. */
export function matchesAny(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => globMatch(p, name));
}
