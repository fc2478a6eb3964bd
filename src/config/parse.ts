// The only importer of the generated parser: turns config text into a FileNode, with
// `#line` directives applied to every location and syntax errors turned into diagnostics.
import type { FileNode, Location, ValueNode } from './ast.js';
import type { Diagnostic } from './diagnostics.js';
import { parse, SyntaxError as PeggySyntaxError } from './generated/parser.js';

export interface ParseResult {
  readonly file: FileNode | null;
  readonly diagnostics: readonly Diagnostic[];
}

interface LineDirective {
  /** Where the directive's effect starts: the start of the line after it. */
  readonly offset: number;
  readonly physLine: number;
  readonly line: number;
  readonly file: string | undefined;
}

// Parse one config file's text; `file` names it in every location.
export function parseConfigText(text: string, file: string): ParseResult {
  return run(text, file, 'File') as ParseResult;
}

// Parse a single value (used by tests of the lexical rules and by print round-trips).
export function parseValueText(text: string, file = '<value>'): { value: ValueNode | null; diagnostics: readonly Diagnostic[] } {
  const result = run(text, file, 'Value');
  return { value: (result.file as unknown as ValueNode | null) ?? null, diagnostics: result.diagnostics };
}

// The offset at which each line starts (lines end at "\n", as Peggy counts them).
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', nl + 1)) starts.push(nl + 1);
  return starts;
}

// The index of the last element of the ascending `list` that is <= `value`, or -1.
function lastAtOrBefore(list: readonly number[], value: number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! <= value) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi;
}

function run(text: string, file: string, startRule: 'File' | 'Value'): ParseResult {
  // Every node's location comes from here, so it must be cheap: a binary search in the line
  // starts, and another in the directives when there are any.
  const starts = lineStarts(text);
  // The #line directives by offset. The parser may report one more than once when it
  // backtracks over it (same offset, same values); they nearly always come in ascending
  // order, so keeping the list sorted costs next to nothing.
  const directives: LineDirective[] = [];
  const directiveOffsets: number[] = [];
  const locate = (offset: number): Location => {
    const index = lastAtOrBefore(starts, offset);
    const line = index + 1;
    const column = offset - starts[index]! + 1;
    if (directives.length === 0) return { file, line, column };
    const d = directives[lastAtOrBefore(directiveOffsets, offset)];
    if (!d) return { file, line, column };
    return { file: d.file ?? file, line: d.line + (line - d.physLine), column };
  };
  const addDirective = (start: number, offset: number, line: number, name: string | undefined): void => {
    const at = lastAtOrBefore(directiveOffsets, offset);
    if (at >= 0 && directiveOffsets[at] === offset) return;
    // `#line N` without a file keeps the name an earlier directive set, as grecs does.
    const physLine = lastAtOrBefore(starts, start) + 2;
    const d = { offset, physLine, line, file: name ?? locate(offset).file };
    directives.splice(at + 1, 0, d);
    directiveOffsets.splice(at + 1, 0, offset);
  };
  const diagnostics: Diagnostic[] = [];
  const warnings = new Map<number, string>();
  const warningDiagnostics = (): Diagnostic[] =>
    [...warnings].map(([offset, message]) => ({ rule: 'syntax', severity: 'warning', message, location: locate(offset), notes: [] }));
  try {
    const tree = parse(text, {
      grammarSource: file,
      startRule,
      locate,
      lineDirective: addDirective,
      warn: (offset: number, message: string) => warnings.set(offset, message),
    });
    diagnostics.push(...warningDiagnostics());
    return { file: tree as FileNode, diagnostics };
  } catch (error) {
    if (!(error instanceof PeggySyntaxError)) throw error;
    diagnostics.push({
      rule: 'syntax',
      severity: 'error',
      message: describeSyntaxError(error, text),
      location: locate(error.location.start.offset),
      notes: [],
    });
    diagnostics.push(...warningDiagnostics());
    return { file: null, diagnostics };
  }
}

// Peggy's "Expected A, B or C but X found." reworded in the diagnostics' lower-case style.
function describeSyntaxError(error: PeggySyntaxError, text: string): string {
  if (!error.expected) return error.message;
  // "#" is only ever expected as the start of an #include line: not worth suggesting.
  const wanted = [...new Set(error.expected.map(describeExpectation))].filter((e) => e !== '"#"').sort();
  const list = wanted.length <= 1 ? (wanted[0] ?? 'nothing') : `${wanted.slice(0, -1).join(', ')} or ${wanted.at(-1)}`;
  const word = /^[A-Za-z0-9_.*/:@-]+/.exec(text.slice(error.location.start.offset))?.[0];
  const shown = word ?? error.found;
  const found = error.found === null ? 'end of file' : error.found === '\n' ? 'end of line' : shown?.includes('"') ? `'${shown}'` : `"${shown}"`;
  return `syntax error: expected ${list}, found ${found}`;
}

function describeExpectation(e: PeggySyntaxError['expected'][number]): string {
  switch (e.type) {
    case 'literal':
      return `"${e.text}"`;
    case 'other':
      return e.description;
    case 'end':
      return 'end of file';
    case 'any':
      return 'any character';
    case 'class':
      return 'character';
  }
}
