// Shell wildcards (`*`, `?`, `[...]`, `\x`) as a RegExp, for `#include` file patterns (one path
// component, glob(3) rules) and for `env` keep/unset name patterns (plain fnmatch).

export interface GlobOptions {
  /**
   * File-name rules: wildcards never match `/`, and a leading `.` must be matched literally
   * (glob(3)). Off: every character is ordinary (env variable names).
   */
  readonly pathname: boolean;
}

// Compile `glob`; a reversed range such as [z-a] matches nothing, as in glob(3).
export function globToRegExp(glob: string, options: GlobOptions = { pathname: true }): RegExp {
  const any = options.pathname ? '[^/]' : '.';
  let re = options.pathname && !glob.startsWith('.') ? '(?!\\.)' : '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') re += `${any}*`;
    else if (c === '?') re += any;
    else if (c === '\\' && i + 1 < glob.length) re += escapeRegExp(glob.charAt(++i));
    else if (c === '[') {
      const cls = parseClass(glob, i, options.pathname);
      if (cls) {
        re += cls.source;
        i = cls.end;
      } else re += '\\[';
    } else re += escapeRegExp(c);
  }
  try {
    return new RegExp(`^${re}$`, 'su');
  } catch {
    return /(?!)/;
  }
}

// `[...]` starting at `start`; null when unterminated, in which case `[` is literal. A `]`
// right after the opening (or the negation) is a member, not the end.
function parseClass(glob: string, start: number, pathname: boolean): { source: string; end: number } | null {
  let i = start + 1;
  let negate = false;
  if (glob[i] === '!' || glob[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  for (let first = true; i < glob.length; i++, first = false) {
    const c = glob.charAt(i);
    if (c === ']' && !first) return { source: `[${negate ? (pathname ? '^/' : '^') : ''}${body}]`, end: i };
    if (c === '-' && !first && glob[i + 1] !== ']') body += '-';
    else body += c === '\\' && i + 1 < glob.length ? escapeClassChar(glob.charAt(++i)) : escapeClassChar(c);
  }
  return null;
}

function escapeRegExp(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function escapeClassChar(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}
