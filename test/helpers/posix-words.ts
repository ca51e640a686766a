/** A strict reader of the command lines dispatch sends to nodes, shared by the property tests. */

/**
 * Parses a command line made only of single-quoted runs, `\'`, and bare [A-Za-z0-9_-], separated by
 * single spaces, into its words. Throws on anything else (a `;`, `$`, `"`, a newline outside
 * quotes, an unterminated quote, two spaces...).
 */
export function parsePosixWords(cmd: string): { words: string[]; raw: string[] } {
  const words: string[] = [];
  const raw: string[] = [];
  let i = 0;
  while (i < cmd.length) {
    if (words.length > 0) {
      if (cmd[i] !== ' ') throw new Error(`expected one space between words at ${i}, got ${JSON.stringify(cmd[i])}`);
      i++;
    }
    const start = i;
    let w = '';
    while (i < cmd.length && cmd[i] !== ' ') {
      const c = cmd[i]!;
      if (c === "'") {
        const end = cmd.indexOf("'", i + 1);
        if (end < 0) throw new Error(`unterminated single quote at ${i}`);
        w += cmd.slice(i + 1, end);
        i = end + 1;
      } else if (c === '\\') {
        if (cmd[i + 1] !== "'") throw new Error(`a backslash outside quotes may only escape a quote (at ${i})`);
        w += "'";
        i += 2;
      } else if (/^[A-Za-z0-9_-]$/.test(c)) {
        w += c;
        i++;
      } else {
        throw new Error(`unquoted shell character ${JSON.stringify(c)} at ${i}`);
      }
    }
    if (i === start) throw new Error(`empty word at ${i}`);
    words.push(w);
    raw.push(cmd.slice(start, i));
  }
  return { words, raw };
}
