/**
 * The node scripts are real shell files (src/shell/scripts/*.sh): each parses with `sh -n`, is clean
 * under `shellcheck -s sh`, has a header naming its arguments and output lines, is copied by the
 * build next to dist/src/shell/scripts.js, and is exactly what the command builders send.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { shq } from '../../src/shell/quote';
import {
  SCRIPTS_DIR,
  identifyCommand,
  identifyWithBootCommand,
  killCommand,
  launchCommand,
  listTaskProcsCommand,
  logsCommand,
  pingCommand,
  probeCommand,
  probeManyCommand,
  pruneListCommand,
  pruneRemoveCommand,
  scriptBody,
} from '../../src/shell/scripts';
import { parsePosixWords } from '../helpers/posix-words';

const SRC_DIR = path.resolve(__dirname, '../../../src/shell/scripts');
const ROOT = path.resolve(__dirname, '../../..');
const files = readdirSync(SRC_DIR)
  .filter((f) => f.endsWith('.sh'))
  .sort();
const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const REF_BOOT = '00000000-0000-4000-8000-000000000000';

const src = (name: string): string => readFileSync(path.join(SRC_DIR, name), 'utf8');
const body = (name: string): string => scriptBody(src(name));
const scriptOf = (cmd: string): string => parsePosixWords(cmd).words[2]!;

/** The leading comment lines: the shebang and the header. */
function header(text: string): string[] {
  const lines = text.split('\n');
  const end = lines.findIndex((l) => !l.startsWith('#'));
  return lines.slice(0, end < 0 ? lines.length : end);
}

describe('node scripts as shell files', () => {
  test('the script directory holds every script the builders load', () => {
    const expected = [
      'boot-suffix',
      'fenced-list',
      'identify',
      'kill',
      'launch',
      'list-task-procs',
      'logs',
      'ping',
      'probe',
      'probe-many',
      'prune-list',
      'prune-rm',
      'runner',
      'watchdog',
    ];
    assert.deepEqual(files, expected.map((n) => `${n}.sh`).sort());
    const ts = readFileSync(path.join(ROOT, 'src/shell/scripts.ts'), 'utf8');
    for (const f of files) assert.ok(ts.includes(`load('${f}')`), `scripts.ts does not load ${f}`);
  });

  for (const f of files) {
    test(`${f} parses with sh -n`, () => {
      const r = spawnSync('sh', ['-n', path.join(SRC_DIR, f)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    });
  }

  test('shellcheck -s sh reports nothing for any script', () => {
    const v = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
    if (v.error || v.status !== 0) assert.fail('shellcheck is not installed: run `bash scripts/setup.sh --test`');
    for (const f of files) {
      const r = spawnSync('shellcheck', ['-s', 'sh', path.join(SRC_DIR, f)], { encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      assert.ok(r.status === 0 && out.trim() === '', `shellcheck ${f} (exit ${r.status}):\n${out}`);
    }
  });

  test('shellcheck reports nothing for the project scripts (scripts/*.sh: setup, the Temporal cluster)', () => {
    const dir = path.join(ROOT, 'scripts');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.sh'))) {
      const r = spawnSync('shellcheck', [path.join(dir, f)], { encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      assert.ok(r.status === 0 && out.trim() === '', `shellcheck scripts/${f} (exit ${r.status}):\n${out}`);
    }
  });

  for (const f of files) {
    test(`${f} starts with a header naming its arguments and its output lines`, () => {
      const h = header(src(f));
      assert.equal(h[0], '#!/bin/sh');
      assert.match(h[1] ?? '', new RegExp(`^# ${f.replace(/[.-]/g, '\\$&')}: \\S`), 'the second line names the file and says what it does');
      const a = h.findIndex((l) => l.startsWith('# Arguments: '));
      assert.ok(a > 0, 'an "# Arguments: ..." line');
      const args = h[a]!.slice('# Arguments: '.length);
      const names = args === 'none' ? [] : [...args.matchAll(/[A-Z][A-Z_]*/g)].map((m) => m[0]);
      assert.ok(args === 'none' || names.length > 0, `arguments "${args}": "none" or their names in capitals`);
      for (const n of names) {
        assert.ok(
          h.slice(a + 1).some((l) => new RegExp(`^#   ${n} +\\S`).test(l)),
          `argument ${n} is described on a "#   ${n} ..." line`,
        );
      }
      const o = h.findIndex((l) => /^# Output lines\b.*:/.test(l));
      assert.ok(o > a, 'an "# Output lines...:" section after the arguments');
      assert.ok(/none/.test(h[o]!) || /^# {3}\S/.test(h[o + 1] ?? ''), 'at least one output line, or "none"');
      for (const l of h) assert.ok(l.length <= 140, `header line longer than 140 characters: ${l}`);
    });
  }

  test('the build copies every script next to dist/src/shell/scripts.js, unchanged', () => {
    assert.ok(existsSync(SCRIPTS_DIR), `${SCRIPTS_DIR} is missing: run npm run build`);
    assert.deepEqual(
      readdirSync(SCRIPTS_DIR)
        .filter((f) => f.endsWith('.sh'))
        .sort(),
      files,
    );
    for (const f of files) assert.equal(readFileSync(path.join(SCRIPTS_DIR, f), 'utf8'), src(f), f);
  });

  test('the workflow bundle holds no module of src/shell', () => {
    const bundle = path.join(ROOT, 'dist/workflow-bundle.js');
    assert.ok(existsSync(bundle), 'dist/workflow-bundle.js is missing: run npm run build');
    assert.doesNotMatch(readFileSync(bundle, 'utf8'), /dist\/src\/shell\//);
  });

  test('the builders send the script files without header and shellcheck directives', () => {
    for (const f of files) {
      const b = body(f);
      assert.ok(!b.startsWith('#') && !/^[ \t]*# shellcheck /m.test(b), f);
      const lines = src(f)
        .split('\n')
        .slice(header(src(f)).length);
      const kept = lines.filter((l) => !l.trimStart().startsWith('# shellcheck ')).join('\n');
      assert.equal(b, kept, `${f}: only the header and the directives go`);
    }
    const id = { dir: '/r', pid: 2, starttime: '1', bootId: REF_BOOT };
    const launch = scriptOf(launchCommand('/r/t/attempt-1', 't', 1, 'true', false));
    assert.equal(launch, `RUNNER=${shq(body('runner.sh'))}\nWATCHDOG=${shq(body('watchdog.sh'))}\n${body('launch.sh')}`);
    assert.equal(scriptOf(probeCommand(id)), body('probe.sh'));
    assert.equal(scriptOf(probeManyCommand([id])), body('probe-many.sh'));
    assert.equal(scriptOf(killCommand(REF_BOOT, 1, [{ pid: 2, starttime: '1' }])), body('kill.sh'));
    assert.equal(scriptOf(identifyCommand([2])), body('identify.sh'));
    assert.equal(scriptOf(listTaskProcsCommand('/w')), body('list-task-procs.sh'));
    assert.equal(scriptOf(pruneListCommand('/r', 1)), body('prune-list.sh'));
    assert.equal(scriptOf(pruneRemoveCommand('/r', ['/r/t/attempt-1'])), body('prune-rm.sh'));
    assert.equal(scriptOf(pingCommand()), body('ping.sh'));
    assert.equal(scriptOf(logsCommand('/r/t/attempt-1', 'both', 0, null)), body('logs.sh'));
  });

  test('ping answers with the boot id', () => {
    const r = spawnSync('sh', ['-c', pingCommand()], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `pong ${BOOT}\n`);
  });

  test('identifyWithBootCommand is identify followed by the boot line, in one command', () => {
    const suffix = '; read -r b < /proc/sys/kernel/random/boot_id; echo "boot $b"';
    assert.equal(identifyWithBootCommand([2, 3]), `${identifyCommand([2, 3])}${suffix}`);
    const r = spawnSync('sh', ['-c', identifyWithBootCommand([process.pid, 4_194_304])], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, r.stdout);
    assert.match(lines[0]!, new RegExp(`^ident ${process.pid} [A-Z] [0-9]+ \\S+ \\S+$`));
    assert.equal(lines[1], 'ident 4194304 gone');
    assert.equal(lines[2], `boot ${BOOT}`);
  });
});
