// Host-name patterns for the `sni` and `host` match conditions: exact names and `*.domain`
// wildcards, compared without regard to ASCII case. The generic glob (config/glob.ts) does not
// fit: its `*` also matches the empty label (`.example.org`) and dots, and `?`/`[` have no
// meaning in a host name.

export type HostMatcher = (host: string | undefined) => boolean;

const WILDCARD = '*.';

/** Whether `pattern` is a name or `*.name` (for a configuration check to report the rest). */
export function isHostPattern(pattern: string): boolean {
  const name = pattern.startsWith(WILDCARD) ? pattern.slice(WILDCARD.length) : pattern;
  return name.length > 0 && !name.includes('*') && labelsNonEmpty(trimDot(name));
}

export function compileHostPatterns(patterns: readonly string[]): HostMatcher {
  const exact = new Set<string>();
  // Each wildcard kept as its suffix with the leading dot: `*.example.org` → `.example.org`.
  const suffixes: string[] = [];
  for (const pattern of patterns) {
    const p = normalize(pattern);
    if (p.startsWith(WILDCARD)) suffixes.push(p.slice(1));
    else exact.add(p);
  }
  return (host) => {
    if (host === undefined) return false;
    const h = normalize(host);
    if (h.length === 0) return false;
    if (exact.has(h)) return true;
    // One or more whole labels before the suffix, never the apex itself.
    return suffixes.some((s) => h.length > s.length && h.endsWith(s) && labelsNonEmpty(h.slice(0, -s.length)));
  };
}

// A fully qualified `example.org.` names the same host as `example.org`.
function normalize(name: string): string {
  return trimDot(name.toLowerCase());
}

function trimDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function labelsNonEmpty(name: string): boolean {
  return name.split('.').every((label) => label.length > 0);
}
