/**
 * Property tests for the commands sent to nodes (src/shell/quote.ts, src/shell/scripts.ts).
 * Every property runs 10,000 times except the two that spawn /bin/sh (300 runs each, named so).
 *
 * The claim under test: a node command is always `sh -c '<fixed script>' <name>` followed by
 * positional arguments that are single-quoted words (or bare digits for integers). A small POSIX
 * single-quote parser below reads the command back; it accepts nothing outside quotes except a space
 * between words, the `\'` that shq writes between quoted runs, and the characters [A-Za-z0-9_-].
 * So if it gives back exactly the arguments, no input can add a word, end the quoting early or
 * change the script.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { buildCommand, shq, type CommandArg } from '../../src/shell/quote';
import { identifyCommand, killCommand, launchCommand, probeCommand, pruneListCommand, pruneRemoveCommand } from '../../src/shell/scripts';
import { parsePosixWords } from '../helpers/posix-words';

const RUNS = { numRuns: 10_000 };
const SPAWN_RUNS = { numRuns: 300 };

/** Checks the whole shape: sh -c '<script>' <name> <args...>, args read back unchanged. */
function assertCommandShape(cmd: string, script: string | null, name: string, args: readonly CommandArg[]): string {
  const { words, raw } = parsePosixWords(cmd);
  assert.equal(words.length, 4 + args.length, 'word count');
  assert.equal(words[0], 'sh');
  assert.equal(words[1], '-c');
  if (script !== null) assert.equal(words[2], script, 'the script word');
  assert.equal(raw[2], shq(words[2]!), 'the script is one quoted word');
  assert.equal(words[3], name);
  assert.ok(cmd.startsWith(`sh -c ${shq(words[2]!)} ${name}`));
  for (let k = 0; k < args.length; k++) {
    const a = args[k]!;
    assert.equal(words[4 + k], String(a), `argument ${k}`);
    // Strings are always one single-quoted word; integers are bare digits.
    if (typeof a === 'string') assert.equal(raw[4 + k], shq(a));
    else assert.match(raw[4 + k]!, /^[0-9]+$/);
  }
  return words[2]!;
}

// ---- generators ----

const noNul = (s: string): boolean => !s.includes('\0');
/** Characters that matter to a shell, plus anything at all. */
const shellChar = fc.constantFrom(
  "'",
  "''",
  "'\\''",
  '\\',
  '"',
  '$',
  '`',
  ' ',
  '\n',
  '\r',
  '\t',
  ';',
  '|',
  '&',
  '(',
  ')',
  '<',
  '>',
  '!',
  '*',
  '?',
  '[',
  ']',
  '#',
  '~',
  '{',
  '}',
  '=',
  '%',
  '-',
  'a',
  'Z',
  '0',
  '\u00e9',
  '\u{1F389}',
  '\x1b',
  '\x7f',
);
const anyArgString = fc.oneof(
  fc.string({ unit: shellChar, maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 40 }).filter(noNul),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).filter(noNul),
  fc.constantFrom('', "'", "'; rm -rf / #", '$(touch /tmp/pwned)', '`id`', "' '", "'\\''", '\\', '\n', '--', '-c', 'a b'),
);
const anyArg: fc.Arbitrary<CommandArg> = fc.oneof(anyArgString, fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(0));
const scriptName = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'.split('')), maxLength: 20 }),
  )
  .map(([a, b]) => a + b);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'.split('');
const validId = fc
  .tuple(fc.constantFrom(...ALNUM), fc.string({ unit: fc.constantFrom(...ALNUM, '.', '_', '-'), maxLength: 127 }))
  .map(([a, b]) => a + b);
const validPid = fc.integer({ min: 2, max: 4_194_304 });
const startTime = fc.oneof(
  fc.nat().map(String),
  fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), minLength: 1, maxLength: 20 }),
);
const bootId = fc.uuid().map((u) => u.toLowerCase());

const junk = fc.anything({
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withDate: true,
  withTypedArray: true,
  withNullPrototype: true,
  maxDepth: 1,
});

/** Reference scripts: the fixed text each builder must send, whatever its arguments. */
const REF_BOOT = '00000000-0000-4000-8000-000000000000';
const REF = {
  launch: parsePosixWords(launchCommand('/r/t/attempt-1', 't', 1, 'true', false)).words[2]!,
  probe: parsePosixWords(probeCommand({ dir: '/r', pid: 2, starttime: '1', bootId: REF_BOOT })).words[2]!,
  kill: parsePosixWords(killCommand(REF_BOOT, 10, [{ pid: 2, starttime: '1' }])).words[2]!,
  identify: parsePosixWords(identifyCommand([2])).words[2]!,
  pruneList: parsePosixWords(pruneListCommand('/r', 1)).words[2]!,
  pruneRm: parsePosixWords(pruneRemoveCommand('/r', ['/r/t/attempt-1'])).words[2]!,
};

describe('fuzz: node command builder', () => {
  test('the test parser itself refuses unquoted metacharacters, a second space and an open quote', () => {
    for (const bad of [
      "sh -c 'x' n ;",
      "sh -c 'x' n $(id)",
      "sh -c 'x'  n",
      "sh -c 'x",
      "sh -c 'x' n\nid",
      'sh -c "x" n',
      "sh -c 'x' n \\n",
    ]) {
      assert.throws(() => parsePosixWords(bad), Error, bad);
    }
    assert.deepEqual(parsePosixWords("sh -c 'a'\\''b' n 12 ''").words, ['sh', '-c', "a'b", 'n', '12', '']);
  });

  test('shq(s) run through /bin/sh -c "printf %s <quoted>" prints exactly s for arbitrary strings without NUL (300 runs, spawns processes)', () => {
    fc.assert(
      fc.property(anyArgString, (s) => {
        const r = spawnSync('/bin/sh', ['-c', `printf %s ${shq(s)}`], { encoding: 'buffer' });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.ok(
          Buffer.from(s, 'utf8').equals(r.stdout),
          `${JSON.stringify(s)} came back as ${JSON.stringify(r.stdout.toString('utf8'))}`,
        );
      }),
      SPAWN_RUNS,
    );
  });

  test('a command from buildCommand run by /bin/sh gives the script exactly its arguments as $1..$n (300 runs, spawns processes)', () => {
    const script = 'for a in "$@"; do printf "%s\\0" "$a"; done; printf "%s" "$0"';
    fc.assert(
      fc.property(scriptName, fc.array(anyArg, { maxLength: 6 }), (name, args) => {
        const r = spawnSync('/bin/sh', ['-c', buildCommand(script, name, args)], { encoding: 'buffer' });
        assert.equal(r.status, 0, r.stderr.toString());
        const parts = r.stdout.toString('utf8').split('\0');
        assert.deepEqual(parts, [...args.map(String), name]);
      }),
      SPAWN_RUNS,
    );
  });

  test('buildCommand output parses back to sh, -c, the script, the name and exactly the arguments for arbitrary args', () => {
    const script = fc.oneof(fc.string({ unit: shellChar, maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 60 }).filter(noNul));
    fc.assert(
      fc.property(script, scriptName, fc.array(anyArg, { maxLength: 8 }), (sc, name, args) => {
        const cmd = buildCommand(sc, name, args);
        assertCommandShape(cmd, sc, name, args);
      }),
      RUNS,
    );
  });

  test('buildCommand refuses NUL bytes, negative or non-integer numbers, non-string arguments and bad script names', () => {
    const badArg = fc.oneof(
      fc.string({ maxLength: 10 }).map((s) => `${s}\0${s}`),
      fc.oneof(
        fc.integer({ max: -1 }),
        fc.double().filter((d) => !Number.isSafeInteger(d) || d < 0),
        fc.constant(Number.MAX_SAFE_INTEGER + 1),
      ),
      junk.filter((v) => typeof v !== 'string' && typeof v !== 'number'),
    );
    const badName = fc.oneof(
      fc.string({ maxLength: 10 }).filter((s) => !/^[a-z][a-z0-9-]*$/.test(s)),
      fc.constantFrom('', 'A', '1x', 'x;id', 'x y', "x'", 'x\n'),
    );
    fc.assert(
      fc.property(fc.array(anyArg, { maxLength: 3 }), badArg, fc.nat(), scriptName, (good, bad, at, name) => {
        const args = [...good];
        args.splice(at % (good.length + 1), 0, bad as CommandArg);
        assert.throws(() => buildCommand('true', name, args));
      }),
      RUNS,
    );
    fc.assert(
      fc.property(badName, fc.array(anyArg, { maxLength: 3 }), (name, args) => {
        assert.throws(() => buildCommand('true', name, args), /bad script name/);
      }),
      RUNS,
    );
  });

  test('launchCommand always sends the fixed launch script with dir, task id, attempt, command, the spec flag, the attempt token, the fence settings and the exit wait as its only arguments', () => {
    const token = fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-f]{32}$/));
    const fence = fc.record({ afterS: fc.nat({ max: 100_000 }), graceS: fc.nat({ max: 600 }) });
    fc.assert(
      fc.property(
        anyArgString,
        validId,
        fc.nat(),
        anyArgString,
        fc.boolean(),
        token,
        fence,
        fc.nat({ max: 60_000 }),
        (dir, id, attempt, command, hasSpec, tok, f, wait) => {
          const cmd = launchCommand(dir, id, attempt, command, hasSpec, tok, f, wait);
          assertCommandShape(cmd, REF.launch, 'dispatch-launch', [
            dir,
            id,
            attempt,
            command,
            hasSpec ? 1 : 0,
            tok,
            f.afterS,
            f.graceS,
            wait,
          ]);
        },
      ),
      RUNS,
    );
  });

  test('probeCommand, killCommand and identifyCommand always send their fixed scripts with only validated arguments', () => {
    const targets = fc.array(fc.record({ pid: validPid, starttime: startTime }), { maxLength: 6 });
    fc.assert(
      fc.property(
        anyArgString,
        validPid,
        startTime,
        bootId,
        fc.double({ min: -5, max: 1e6, noNaN: true }),
        targets,
        (dir, pid, st, boot, grace, ts) => {
          assertCommandShape(probeCommand({ dir, pid, starttime: st, bootId: boot }), REF.probe, 'dispatch-probe', [dir, pid, st, boot]);
          const g = Math.max(0, Math.round(grace));
          assertCommandShape(killCommand(boot, grace, ts), REF.kill, 'dispatch-kill', [
            boot,
            g,
            ...ts.flatMap((t) => [t.pid, t.starttime]),
          ]);
          const pids = ts.map((t) => t.pid);
          assertCommandShape(identifyCommand(pids), REF.identify, 'dispatch-identify', pids);
        },
      ),
      RUNS,
    );
  });

  test('pruneListCommand and pruneRemoveCommand send their fixed scripts, and prune removes only <work dir>/<valid id>/attempt-<n>', () => {
    const workDir = fc.oneof(
      fc.constantFrom('.dispatch/runs', '/srv/runs/', '/tmp/a b/runs', "/it's/runs"),
      anyArgString.filter((s) => s !== '' && !s.includes('\n')),
    );
    const entry = fc.oneof(
      fc.tuple(validId, fc.nat()).map(([id, n]) => `${id}/attempt-${n}`),
      fc.constantFrom(
        '../etc/attempt-1',
        'a/../../attempt-1',
        '.x/attempt-1',
        'a/attempt-',
        'a/attempt-1/..',
        'a/b/attempt-1',
        '/attempt-1',
        'a/attempt-1 ',
        'a/attempt-1\n',
        '-rf/attempt-1',
      ),
      fc.tuple(anyArgString, anyArgString).map(([a, b]) => `${a}/${b}`),
    );
    fc.assert(
      fc.property(workDir, fc.array(entry, { maxLength: 5 }), fc.integer({ min: 0, max: 2 ** 40 }), (wd, entries, cutoff) => {
        assertCommandShape(pruneListCommand(wd, cutoff), REF.pruneList, 'dispatch-prune-list', [wd, cutoff]);
        const base = wd.replace(/\/+$/, '');
        const dirs = entries.map((rel) => `${base}/${rel}`);
        // An entry is acceptable only if it is exactly <base>/<valid task id>/attempt-<digits>.
        const acceptable = (d: string): boolean => {
          const rest = d.slice(base.length + 1);
          const m = /^([^/]+)\/attempt-[0-9]+$/.exec(rest);
          return m !== null && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(m[1]!);
        };
        if (dirs.every(acceptable)) {
          assertCommandShape(pruneRemoveCommand(wd, dirs), REF.pruneRm, 'dispatch-prune', dirs);
        } else {
          assert.throws(() => pruneRemoveCommand(wd, dirs), /refusing to remove/);
        }
      }),
      RUNS,
    );
  });

  test('launchCommand refuses every task id that is not valid', () => {
    const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
    const invalid = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 140 }).filter((s) => !ID_RE.test(s)),
      fc.string({ unit: shellChar, maxLength: 20 }).filter((s) => !ID_RE.test(s)),
      validId
        .chain((id) =>
          fc.constantFrom(
            `${id}\n`,
            `-${id}`,
            `.${id}`,
            `${id}/x`,
            `${id} `,
            `${id};id`,
            `${id}'`,
            `${id}$(id)`,
            `${id}${'x'.repeat(128)}`,
          ),
        )
        .filter((s) => !ID_RE.test(s)),
      junk.filter((v) => typeof v !== 'string'),
    );
    fc.assert(
      fc.property(invalid, anyArgString, fc.nat(), anyArgString, (id, dir, attempt, command) => {
        assert.throws(() => launchCommand(dir, id as string, attempt, command, true), /unsafe task id/);
      }),
      RUNS,
    );
  });

  test('killCommand refuses every pid that is not an integer in 2..4194304, even next to valid targets', () => {
    const badPid = fc.oneof(
      junk.filter((v) => typeof v !== 'number'),
      fc.double().filter((d) => !(Number.isInteger(d) && d >= 2 && d <= 4_194_304)),
      fc.integer({ min: -(2 ** 31), max: 1 }),
      fc.integer({ min: 4_194_305, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom(
        0,
        -0,
        1,
        -1,
        2.5,
        NaN,
        Infinity,
        -Infinity,
        4_194_305,
        2 ** 53,
        '2',
        '123',
        ' 42',
        '0x10',
        '',
        null,
        undefined,
        true,
        [2],
        { pid: 2 },
      ),
    );
    fc.assert(
      fc.property(
        badPid,
        startTime,
        bootId,
        fc.array(fc.record({ pid: validPid, starttime: startTime }), { maxLength: 3 }),
        fc.nat(),
        (pid, st, boot, good, at) => {
          const ts = [...good];
          ts.splice(at % (good.length + 1), 0, { pid: pid as number, starttime: st });
          assert.throws(() => killCommand(boot, 10, ts), /refusing to signal pid/);
          assert.throws(() => identifyCommand(ts.map((t) => t.pid)), /refusing pid/);
          assert.throws(() => probeCommand({ dir: '/r', pid: pid as number, starttime: st, bootId: boot }), /invalid pid/);
        },
      ),
      RUNS,
    );
  });

  test('killCommand refuses every start time that is not 1 to 20 digits and every boot id that is not a lowercase uuid', () => {
    const badStart = fc.oneof(
      fc.string({ maxLength: 22 }).filter((s) => !/^[0-9]{1,20}$/.test(s)),
      fc.constantFrom('', ' 1', '1 ', '1\n', '-1', '+1', '1.0', '1e3', '0x1', '1'.repeat(21), '\u0661'),
      junk.filter((v) => typeof v !== 'string'),
      fc.nat(), // a number is refused: start times are compared as text
    );
    const badBoot = fc.oneof(
      fc
        .uuid()
        .map((u) => u.toUpperCase())
        .filter((u) => /[A-F]/.test(u)),
      fc.uuid().chain((u) => fc.constantFrom(`${u}\n`, ` ${u}`, u.slice(1), `${u}0`, u.replace(/-/g, ''), `{${u}}`, u.replace(/^./, 'g'))),
      fc.string({ maxLength: 40 }).filter((s) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)),
      junk.filter((v) => typeof v !== 'string'),
    );
    fc.assert(
      fc.property(validPid, badStart, startTime, bootId, badBoot, (pid, bad, goodStart, goodBoot, boot) => {
        assert.throws(() => killCommand(goodBoot, 10, [{ pid, starttime: bad as string }]), /invalid start time/);
        assert.throws(() => killCommand(boot as string, 10, [{ pid, starttime: goodStart }]), /invalid boot id/);
        assert.throws(() => probeCommand({ dir: '/r', pid, starttime: bad as string, bootId: goodBoot }), /invalid start time/);
        assert.throws(() => probeCommand({ dir: '/r', pid, starttime: goodStart, bootId: boot as string }), /invalid boot id/);
      }),
      RUNS,
    );
  });
});
