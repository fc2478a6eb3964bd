// Prints a syntax tree back as canonical grecs text that parses to the same tree, so
// `parse(print(tree))` equals `tree` apart from locations and the documented kind changes.
import type { IncludeNode, Node, StatementNode, ValueNode } from './ast.js';

// Kind changes, all deliberate (the value itself never changes):
//  - a HereDoc prints as a quoted string and so comes back as a String;
//  - a Word whose text is not a valid unquoted word (empty, `#`, blanks, a leading `//`
//    that would open a comment, …) prints quoted and comes back as a String;
//  - adjacent quoted strings are one value in grecs ("a" "b" is "ab"), so when two
//    neighbouring statement values would both print quoted, one of them changes form.
//    In order of preference: the second, else the first, prints as a here-document if
//    its value ends in a newline (or is empty), as here-documents naturally do; else the
//    second prints bare if it is a valid word; else the second prints as a here-document
//    whose last line ends in a backslash (which joins away the final newline). A value
//    printed as a here-document comes back as a HereDoc, one printed bare as a Word.
//    The choice looks at values, never at kinds, so printing what was read back
//    reproduces the same text.
// Other control characters stay raw inside quotes: grecs has no numeric escape and takes
// any byte but a newline there. (grecs itself, being C, would still stop at a NUL.)

const INDENT = '    ';
const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
// The grammar's Word rule; a leading `//` is excluded because it opens a comment there.
const WORD = /^[A-Za-z0-9_.*/:@-](?:[A-Za-z0-9_./:@-][A-Za-z0-9_.*/:@-]*)?$/;
const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '"': '\\"',
  '\n': '\\n',
  '\t': '\\t',
  '\r': '\\r',
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\v': '\\v',
};
const HEREDOC_WORD = 'EOT';

type Form = 'bare' | 'quoted' | 'heredoc' | 'list';

/** True when `text` reads back as one unquoted word in value position. */
export function isBareWord(text: string): boolean {
  return WORD.test(text) && !text.startsWith('//');
}

/** `text` as a grecs quoted string with the standard escapes; other control bytes as \xHH. */
export function quote(text: string): string {
  return `"${text.replace(/[\\"\x00-\x1f\x7f]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

/** One value on one line: a bare word, a quoted string, or a `( … )` list. */
export function printValue(v: ValueNode): string {
  if (v.type === 'List') return `(${v.items.map(printValue).join(', ')})`;
  return defaultForm(v) === 'bare' ? v.value : quote(v.value);
}

/** A statement list as canonical text: one statement per line, 4-space indentation. */
export function printTree(body: readonly Node[]): string {
  return body.map((node) => printNode(node, '')).join('');
}

function printNode(node: Node, pad: string): string {
  return node.type === 'Include' ? `${pad}${printInclude(node)}\n` : printStatement(node, pad);
}

function printInclude(node: IncludeNode): string {
  const directive = node.once ? '#include_once' : '#include';
  const target = node.target;
  if (node.system) {
    if (/^[^>\n]+$/.test(target)) return `${directive} <${target}>`;
  } else if (/^[^"\n]+$/.test(target)) {
    return `${directive} "${target}"`;
  } else if (/^[^ \t\n]+$/.test(target) && !/^"[^"\n]+"/.test(target) && !/^<[^>\n]+>/.test(target)) {
    // A name holding a quote can only be written bare, and only if no other form claims it.
    return `${directive} ${target}`;
  }
  throw new RangeError(`cannot print ${directive} target ${JSON.stringify(target)}: no grecs form spells it`);
}

function printStatement(node: StatementNode, pad: string): string {
  if (!IDENT.test(node.name)) throw new RangeError(`cannot print statement name ${JSON.stringify(node.name)}: not an identifier`);
  const forms = chooseForms(node.values);
  let text = `${pad}${node.name}`;
  let afterHereDoc = false;
  // A here-document's terminator ends its line (only a `;` may follow it there), so the
  // next value or the `{` starts a continuation line.
  const separator = (): string => (afterHereDoc ? `\n${pad}${INDENT}` : ' ');
  node.values.forEach((v, i) => {
    const form = forms[i] ?? defaultForm(v);
    text += separator() + (v.type === 'List' ? printValue(v) : form === 'heredoc' ? hereDocument(v.value) : form === 'bare' ? v.value : quote(v.value));
    afterHereDoc = form === 'heredoc';
  });
  if (node.block === undefined) return `${text};\n`;
  if (node.block.length === 0) return `${text}${separator()}{}\n`;
  const inner = node.block.map((child) => printNode(child, pad + INDENT)).join('');
  return `${text}${separator()}{\n${inner}${pad}}\n`;
}

function defaultForm(v: ValueNode): Form {
  if (v.type === 'List') return 'list';
  return v.type === 'Word' && isBareWord(v.value) ? 'bare' : 'quoted';
}

// Picks a form per value so that no two neighbouring values both print quoted.
function chooseForms(values: readonly ValueNode[]): Form[] {
  const forms = values.map(defaultForm);
  for (let i = 1; i < values.length; i++) {
    const prev = values[i - 1];
    const cur = values[i];
    if (forms[i - 1] !== 'quoted' || forms[i] !== 'quoted' || !prev || !cur || prev.type === 'List' || cur.type === 'List') continue;
    if (endsLikeHereDoc(cur.value)) forms[i] = 'heredoc';
    else if (endsLikeHereDoc(prev.value)) forms[i - 1] = 'heredoc';
    else if (isBareWord(cur.value)) forms[i] = 'bare';
    else forms[i] = 'heredoc';
  }
  return forms;
}

// Every here-document body line keeps its newline, so these values need no trick.
function endsLikeHereDoc(value: string): boolean {
  return value === '' || value.endsWith('\n');
}

// An unquoted-form here-document (`<<EOT`), whose body is unescaped like a quoted string:
// backslashes are doubled, a leading backslash keeps a line from being read as the
// terminator, as an m4 `#line` sync line, or (by grecs) as an `#include`, and a trailing
// one drops the newline after a last line that had none.
function hereDocument(value: string): string {
  const natural = endsLikeHereDoc(value);
  const lines = value === '' ? [] : (natural ? value.slice(0, -1) : value).split('\n');
  const terminator = new RegExp(`^${HEREDOC_WORD}[ \\t]*(;[ \\t]*)?$`);
  const body = lines.map((line, i) => {
    const escaped = line.replace(/\\/g, '\\\\');
    const guarded = /^[ \t]*#/.test(escaped) || terminator.test(escaped) ? `\\${escaped}` : escaped;
    return !natural && i === lines.length - 1 ? `${guarded}\\\n` : `${guarded}\n`;
  });
  return `<<${HEREDOC_WORD}\n${body.join('')}${HEREDOC_WORD}`;
}
