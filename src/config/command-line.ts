// Splits a `command` line into argv the way a Bourne shell splits words (pies' wordsplit):
// blanks separate words; '…' is literal; "…" honours \" \\ \$ \` and \newline; a
// backslash outside quotes escapes the next character. No expansion happens here.

export type SplitResult = { readonly argv: readonly string[] } | { readonly error: string };

// Split `command` into words; unbalanced quotes are an error, never guessed at.
export function splitCommandLine(command: string): SplitResult {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) return { error: `unbalanced ' in command line` };
      word += command.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const d = command[j]!;
        const next = command[j + 1];
        if (d === '\\' && next !== undefined && '"\\$`\n'.includes(next)) {
          if (next !== '\n') word += next;
          j++;
        } else word += d;
      }
      if (j >= command.length) return { error: 'unbalanced " in command line' };
      i = j;
    } else if (c === '\\') {
      const next = command[i + 1];
      if (next === undefined) return { error: 'command line ends with a backslash' };
      if (next !== '\n') word += next;
      i++;
    } else word += c;
  }
  if (inWord) argv.push(word);
  return { argv };
}

// Quote one word so splitCommandLine gives it back unchanged.
export function quoteWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
