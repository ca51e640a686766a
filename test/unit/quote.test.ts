import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { buildCommand, shq } from '../../src/shell/quote';

/** What a real /bin/sh makes of one quoted word. */
function throughSh(s: string): string {
  return execFileSync('/bin/sh', ['-c', 'printf %s ' + shq(s)]).toString('utf8');
}

describe('shq', () => {
  const tricky: [string, string][] = [
    ['empty string', ''],
    ['spaces', '  a  b  '],
    ['single quotes', "it's 'quoted' ''"],
    ['double quotes', 'say "hi" ""'],
    ['command substitution', '$(touch /tmp/shq-pwned) $HOME ${PATH}'],
    ['backticks', '`id` `echo x`'],
    ['newlines', 'line1\nline2\n\n'],
    ['semicolons and pipes', 'a; echo injected | cat && false || true &'],
    ['backslashes', "\\ \\n \\\\ \\'"],
    ['globs and redirections', '* ? [a-z] > /tmp/x < /etc/passwd'],
    ['unicode', 'héllo 日本語 🎉 ✓'],
    ['leading dash', '-n'],
    ['percent signs', '%s %d %%'],
    ['tabs and control characters', '\t\x01\x1b[31m'],
  ];

  for (const [what, s] of tricky) {
    test(`round-trips ${what} through /bin/sh unchanged`, () => {
      assert.equal(throughSh(s), s);
    });
  }

  test('always produces exactly one shell word', () => {
    const out = execFileSync('/bin/sh', ['-c', `printf '<%s>' ${shq('a b')} ${shq('')} ${shq("c'd")}`]).toString('utf8');
    assert.equal(out, "<a b><><c'd>");
  });

  test('refuses a string with a NUL byte', () => {
    assert.throws(() => shq('a\0b'), /NUL/);
  });
});

describe('buildCommand', () => {
  const echoArgs = 'printf "[%s]" "$0" "$@"';

  test('passes strings and integers as positional arguments that a shell sees unchanged', () => {
    const cmd = buildCommand(echoArgs, 'dispatch-test', ["it's $(x)", 7, 0, '']);
    const out = execFileSync('/bin/sh', ['-c', cmd]).toString('utf8');
    assert.equal(out, "[dispatch-test][it's $(x)][7][0][]");
  });

  test('starts with sh -c and the quoted script', () => {
    assert.equal(buildCommand('echo hi', 'x', []), "sh -c 'echo hi' x");
  });

  test('refuses negative numbers', () => {
    assert.throws(() => buildCommand(echoArgs, 'x', [-1]), /argument 0 of x is not a safe integer: -1/);
  });

  test('refuses non-integer numbers', () => {
    for (const n of [1.5, NaN, Infinity, 2 ** 53]) assert.throws(() => buildCommand(echoArgs, 'x', ['a', n]), /argument 1 of x/, String(n));
  });

  test('refuses arguments that are neither strings nor numbers', () => {
    assert.throws(() => buildCommand(echoArgs, 'x', [null as unknown as string]), /argument 0 of x is not a string/);
  });

  test('refuses a string argument with a NUL byte', () => {
    assert.throws(() => buildCommand(echoArgs, 'x', ['a\0b']), /NUL/);
  });

  test('refuses bad script names', () => {
    for (const name of ['', 'Bad', '1abc', '-x', 'a b', 'a;b', "a'b", 'a/b', 'a_b']) {
      assert.throws(() => buildCommand(echoArgs, name, []), /bad script name/, JSON.stringify(name));
    }
  });
});
