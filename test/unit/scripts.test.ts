import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { killCommand, launchCommand, listTaskProcsCommand, probeCommand } from '../../src/shell/scripts';
import { cleanupStaleProcesses, parseTaskProcs, pruneAttemptDirs } from '../../src/reaper/nodes';
import type { ShellPool } from '../../src/shell/pool';
import type { NodeRow } from '../../src/common/types';
import { attemptKey } from '../../src/common/validate';
import { LocalShell } from '../../src/shell/local';
import { decideProbe, parseKillOutput, parseKv, parseWrapperStatus, type WrapperStatus } from '../../src/shell/status';

const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const OTHER_BOOT = BOOT.replace(/^./, (c) => (c === '0' ? '1' : '0'));

// ---- /proc helpers (a zombie counts as gone: PID 1 here does not reap orphans) ----

interface Stat {
  state: string;
  pgrp: number;
  session: number;
  starttime: string;
}

function readStat(pid: number): Stat | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and ')': fields start after the last ')'. f[0] is field 3.
  const f = raw
    .slice(raw.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/);
  return { state: f[0]!, pgrp: Number(f[2]), session: Number(f[3]), starttime: f[19]! };
}

function isLive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z';
}

function procPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number);
}

function liveGroupMembers(pgid: number): number[] {
  return procPids().filter((p) => {
    const st = readStat(p);
    return st !== null && st.state !== 'Z' && st.pgrp === pgid;
  });
}

function livePidsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  return procPids()
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(needle) && isLive(p);
      } catch {
        return false;
      }
    })
    .sort((a, b) => a - b);
}

async function waitFor(pred: () => boolean, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- running the scripts ----

const shell = new LocalShell('local-test');
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'dispatch-scripts-')));
const launchedGroups: number[] = [];
let seq = 0;

after(() => {
  for (const pgid of launchedGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

interface Launched {
  out: string;
  first: string;
  dir: string;
  raw: Record<string, unknown>;
  st: WrapperStatus;
}

async function launch(command: string, opts: { dir?: string; spec?: string; token?: string; exitWaitMs?: number } = {}): Promise<Launched> {
  const dir = opts.dir ?? path.join(root, 'tasks', `t${++seq}`, '1');
  const task = path.basename(path.dirname(dir));
  const res = await shell.exec(launchCommand(dir, task, 1, command, opts.spec !== undefined, opts.token, undefined, opts.exitWaitMs), {
    stdin: opts.spec,
    timeoutMs: 20_000,
  });
  assert.equal(res.code, 0, `launch failed: ${res.stdout} ${res.stderr}`);
  const statusText = parseKv(res.stdout).get('status');
  assert.ok(statusText, `no status in launch output: ${res.stdout}`);
  const st = parseWrapperStatus(statusText);
  assert.ok(st, `unparseable status: ${statusText}`);
  if (!launchedGroups.includes(st.pid)) launchedGroups.push(st.pid);
  return { out: res.stdout, first: res.stdout.split('\n')[0]!, dir, raw: JSON.parse(statusText) as Record<string, unknown>, st };
}

async function kill(boot: string, grace: number, targets: { pid: number; starttime: string }[]): Promise<string> {
  const res = await shell.exec(killCommand(boot, grace, targets), { timeoutMs: 30_000 });
  assert.equal(res.code, 0, `kill script failed: ${res.stdout} ${res.stderr}`);
  return res.stdout;
}

async function probe(l: Launched, boot = BOOT): Promise<string> {
  const res = await shell.exec(probeCommand({ dir: l.dir, pid: l.st.pid, starttime: l.st.starttime, bootId: boot }), { timeoutMs: 10_000 });
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

function readStatusFile(dir: string): WrapperStatus | null {
  try {
    return parseWrapperStatus(readFileSync(path.join(dir, 'status.json'), 'utf8'));
  } catch {
    return null;
  }
}

// ---- builders ----

describe('command builders', () => {
  const id = { dir: '/tmp/x', pid: 4242, starttime: '12345', bootId: BOOT };

  test('launchCommand refuses unsafe task ids', () => {
    for (const t of ['', '../x', 'a/b', '-rf', '.hidden', 'a b', "a'b", 'a\nb', 'x'.repeat(129), '$(id)']) {
      assert.throws(() => launchCommand('/tmp/w/t/1', t, 1, 'true', false), /unsafe task id/, JSON.stringify(t));
    }
  });

  test('launchCommand refuses a negative or fractional attempt', () => {
    assert.throws(() => launchCommand('/tmp/w/t/1', 't', -1, 'true', false), /not a safe integer/);
    assert.throws(() => launchCommand('/tmp/w/t/1', 't', 1.5, 'true', false), /not a safe integer/);
  });

  test('killCommand refuses pids 0, 1, negative, fractional and string', () => {
    for (const pid of [0, 1, -5, 1.5, '7' as unknown as number, NaN, 4_194_305]) {
      assert.throws(() => killCommand(BOOT, 1, [{ pid, starttime: '100' }]), /refusing to signal pid/, String(pid));
    }
  });

  test('killCommand refuses one bad pid even among good ones', () => {
    assert.throws(
      () =>
        killCommand(BOOT, 1, [
          { pid: 4242, starttime: '100' },
          { pid: 1, starttime: '100' },
        ]),
      /refusing to signal pid 1/,
    );
  });

  test('killCommand refuses bad boot ids', () => {
    for (const b of ['', 'abc', BOOT.toUpperCase(), BOOT + '\n', `${BOOT}; reboot`]) {
      assert.throws(() => killCommand(b, 1, [{ pid: 4242, starttime: '100' }]), /invalid boot id/, JSON.stringify(b));
    }
  });

  test('killCommand refuses bad start times', () => {
    for (const s of ['', '12a', '-1', ' 12', 123 as unknown as string]) {
      assert.throws(() => killCommand(BOOT, 1, [{ pid: 4242, starttime: s }]), /invalid start time/, JSON.stringify(s));
    }
  });

  test('killCommand rounds the grace and never passes a negative one', () => {
    assert.ok(killCommand(BOOT, 2.6, []).endsWith(`dispatch-kill '${BOOT}' 3`));
    assert.ok(killCommand(BOOT, -4, []).endsWith(`dispatch-kill '${BOOT}' 0`));
  });

  test('probeCommand refuses a bad pid, start time or boot id', () => {
    assert.throws(() => probeCommand({ ...id, pid: 1 }), /invalid pid/);
    assert.throws(() => probeCommand({ ...id, pid: -42 }), /invalid pid/);
    assert.throws(() => probeCommand({ ...id, starttime: '12 34' }), /invalid start time/);
    assert.throws(() => probeCommand({ ...id, bootId: 'nope' }), /invalid boot id/);
  });

  test('probeCommand builds a command for a good identity', () => {
    assert.match(probeCommand(id), /^sh -c '.*' dispatch-probe '\/tmp\/x' 4242 '12345' '[0-9a-f-]{36}'$/s);
  });
});

// ---- the real scripts, run by /bin/sh on this machine ----

describe('launch script', () => {
  test('with an exit wait, a command that ends at once is reported exited with its code; a longer one running', async () => {
    const quick = await launch('exit 5', { exitWaitMs: 2000 });
    assert.equal(quick.st.state, 'exited');
    assert.equal(quick.st.exitCode, 5);
    const t0 = Date.now();
    const slow = await launch('sleep 30', { exitWaitMs: 300 });
    assert.equal(slow.st.state, 'running');
    assert.ok(Date.now() - t0 >= 300, 'it waited for the command to end');
    assert.throws(() => launchCommand('/tmp/w/t/1', 't', 1, 'true', false, '', undefined, -1), /invalid exit wait/);
  });

  test('records the process identity in status.json', async () => {
    const l = await launch('sleep 30');
    assert.equal(l.first, 'launched');
    assert.equal(l.st.state, 'running');
    assert.equal(l.raw.sid, l.st.pid, 'pid must lead its own session');
    assert.equal(l.st.bootId, BOOT);
    assert.equal(l.raw.task, path.basename(path.dirname(l.dir)));
    assert.equal(l.raw.attempt, 1);
    const proc = readStat(l.st.pid);
    assert.ok(proc, 'launched process must exist');
    assert.equal(proc.starttime, l.st.starttime, 'starttime must be /proc/<pid>/stat field 22');
    assert.equal(proc.session, l.st.pid);
    assert.equal(proc.pgrp, l.st.pid);
    process.kill(-l.st.pid, 'SIGKILL');
  });

  test('runs the command with the task environment and the spec, and records its exit code', async () => {
    const l = await launch('printf "%s %s\\n" "$DISPATCH_TASK" "$DISPATCH_ATTEMPT"; cat "$DISPATCH_SPEC"; echo oops >&2; exit 3', {
      spec: '# spec body\n',
    });
    await waitFor(() => readStatusFile(l.dir)?.state === 'exited', 10_000, 'exit');
    const st = readStatusFile(l.dir)!;
    assert.equal(st.exitCode, 3);
    assert.equal(st.pid, l.st.pid);
    assert.equal(readFileSync(path.join(l.dir, 'stdout'), 'utf8'), `${path.basename(path.dirname(l.dir))} 1\n# spec body\n`);
    assert.equal(readFileSync(path.join(l.dir, 'stderr'), 'utf8'), 'oops\n');
    assert.equal(readFileSync(path.join(l.dir, 'spec.md'), 'utf8'), '# spec body\n');
    assert.equal(statSync(l.dir).mode & 0o777, 0o700);
  });

  test('writes no spec.md when there is no spec', async () => {
    const l = await launch('true');
    assert.equal(existsSync(path.join(l.dir, 'spec.md')), false);
  });

  test('a second launch of the same attempt dir prints existing and starts no second process', async () => {
    const l = await launch('sleep 30');
    const before = livePidsWithEnv('DISPATCH_DIR', l.dir);
    assert.ok(before.includes(l.st.pid));
    const again = await launch('echo second > "$DISPATCH_DIR/second"; sleep 30', { dir: l.dir });
    assert.equal(again.first, 'existing');
    assert.equal(again.st.pid, l.st.pid);
    assert.equal(again.st.starttime, l.st.starttime);
    // Give a wrongly started second runner time to show up before looking.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(livePidsWithEnv('DISPATCH_DIR', l.dir), before);
    assert.equal(existsSync(path.join(l.dir, 'second')), false);
    assert.equal(readFileSync(path.join(l.dir, 'command'), 'utf8'), 'sleep 30\n');
    process.kill(-l.st.pid, 'SIGKILL');
  });
});

describe('launch script with attempt tokens', () => {
  const TOKEN_A = 'a'.repeat(32);
  const TOKEN_B = '0123456789abcdef'.repeat(2);

  test('a relaunch with the same token reports the first process; the token is in the directory and status.json', async () => {
    const dir = path.join(root, 'tok', `t${++seq}`, 'attempt-1');
    const first = await launch('sleep 30', { dir, token: TOKEN_A });
    const again = await launch('sleep 30', { dir, token: TOKEN_A });
    assert.match(first.out, /^launched$/m);
    assert.match(again.out, /^existing$/m);
    assert.equal(again.st.pid, first.st.pid);
    assert.equal(first.st.token, TOKEN_A);
    assert.equal(readFileSync(path.join(dir, 'token'), 'utf8').trim(), TOKEN_A);
    assert.equal(parseKv(first.out).get('dir'), dir);
    process.kill(-first.st.pid, 'SIGKILL');
  });

  test('a directory of an earlier life is never trusted: it is left in place and the attempt runs in a directory of its own', async () => {
    const dir = path.join(root, 'tok', `t${++seq}`, 'attempt-1');
    // An earlier life: launched before tokens existed, exited 0 long ago.
    const old = await launch('echo old', { dir });
    await waitFor(() => readStatusFile(dir)?.state === 'exited', 10_000, 'the old attempt exited');
    const before = readFileSync(path.join(dir, 'status.json'), 'utf8');
    const res = await shell.exec(launchCommand(dir, path.basename(path.dirname(dir)), 1, 'echo new', false, TOKEN_B), {
      timeoutMs: 20_000,
    });
    assert.equal(res.code, 0, res.stderr);
    const kv = parseKv(res.stdout);
    assert.equal(kv.get('untrusted'), dir);
    assert.match(res.stdout, /^launched$/m, 'the new life ran its own command');
    const mine = `${dir}.${TOKEN_B.slice(0, 12)}`;
    assert.equal(kv.get('dir'), mine);
    const st = parseWrapperStatus(kv.get('status')!)!;
    assert.notEqual(st.pid, old.st.pid);
    assert.equal(st.token, TOKEN_B);
    await waitFor(() => readStatusFile(mine)?.state === 'exited', 10_000, 'the new attempt exited');
    assert.equal(readFileSync(path.join(mine, 'stdout'), 'utf8'), 'new\n');
    assert.equal(readFileSync(path.join(dir, 'status.json'), 'utf8'), before, 'the old directory is untouched');
    assert.equal(readFileSync(path.join(dir, 'stdout'), 'utf8'), 'old\n');
    // A third launch of the new life finds its own directory again, not the old one.
    const third = await shell.exec(launchCommand(dir, path.basename(path.dirname(dir)), 1, 'echo new', false, TOKEN_B), {
      timeoutMs: 20_000,
    });
    assert.match(third.stdout, /^existing$/m);
    assert.equal(parseKv(third.stdout).get('dir'), mine);
  });

  test('a directory holding another token is not trusted either', async () => {
    const dir = path.join(root, 'tok', `t${++seq}`, 'attempt-1');
    const a = await launch('sleep 30', { dir, token: TOKEN_A });
    const b = await launch('sleep 30', { dir, token: TOKEN_B });
    assert.notEqual(b.st.pid, a.st.pid);
    assert.equal(parseKv(b.out).get('dir'), `${dir}.${TOKEN_B.slice(0, 12)}`);
    process.kill(-a.st.pid, 'SIGKILL');
    process.kill(-b.st.pid, 'SIGKILL');
  });

  test('launchCommand refuses a malformed token', () => {
    for (const t of ['x', 'A'.repeat(32), `${'a'.repeat(31)}\n`, "'; rm -rf /"]) {
      assert.throws(() => launchCommand('/tmp/w/t/attempt-1', 't', 1, 'true', false, t), /invalid attempt token/, JSON.stringify(t));
    }
  });
});

describe('probe script', () => {
  test('reports a launched process as running', async () => {
    const l = await launch('sleep 30');
    const out = await probe(l);
    assert.match(out, /^boot=same$/m);
    assert.match(out, /^alive=1$/m);
    assert.deepEqual(decideProbe(out), { state: 'running' });
    process.kill(-l.st.pid, 'SIGKILL');
  });

  test('reports the recorded exit code once the command has exited', async () => {
    const l = await launch('exit 5');
    await waitFor(() => readStatusFile(l.dir)?.state === 'exited', 10_000, 'exit');
    assert.deepEqual(decideProbe(await probe(l)), { state: 'exited', exitCode: 5 });
  });

  test('reports a killed process as vanished', async () => {
    const l = await launch('sleep 30');
    process.kill(-l.st.pid, 'SIGKILL');
    await waitFor(() => !isLive(l.st.pid), 5_000, 'process death');
    const out = await probe(l);
    assert.match(out, /^alive=0$/m);
    assert.equal(decideProbe(out).state, 'vanished');
  });

  test('reports a different boot id as changed and not alive', async () => {
    const l = await launch('sleep 30');
    const out = await probe(l, OTHER_BOOT);
    assert.match(out, /^boot=changed$/m);
    assert.match(out, /^alive=0$/m);
    assert.deepEqual(decideProbe(out), { state: 'vanished', detail: 'node rebooted' });
    process.kill(-l.st.pid, 'SIGKILL');
  });
});

describe('kill script', () => {
  test('reports not-ours for a process whose start time does not match and leaves it alive', async () => {
    const l = await launch('sleep 60');
    const wrong = String(Number(l.st.starttime) + 1);
    const out = await kill(BOOT, 1, [{ pid: l.st.pid, starttime: wrong }]);
    assert.deepEqual(parseKillOutput(out), [{ pid: l.st.pid, outcome: 'not-ours' }]);
    assert.ok(isLive(l.st.pid), 'the process must still be alive');
    assert.equal(readStat(l.st.pid)!.starttime, l.st.starttime);
    assert.ok(liveGroupMembers(l.st.pid).length >= 2, 'the whole group must still be alive');
    process.kill(-l.st.pid, 'SIGKILL');
  });

  test('never signals a group when the boot id differs, even with the right start time', async () => {
    const l = await launch('sleep 60');
    const out = await kill(OTHER_BOOT, 1, [{ pid: l.st.pid, starttime: l.st.starttime }]);
    const lines = out.split('\n').filter((x) => x.startsWith(`result ${l.st.pid} `));
    assert.equal(lines.length, 1, out);
    assert.doesNotMatch(lines[0]!, /killed|still-alive/);
    assert.ok(isLive(l.st.pid), 'the process must still be alive');
    assert.equal(readStat(l.st.pid)!.starttime, l.st.starttime);
    process.kill(-l.st.pid, 'SIGKILL');
  });

  test('kills a group that obeys TERM and reports killed-term', async () => {
    const l = await launch('sleep 60');
    const out = await kill(BOOT, 5, [{ pid: l.st.pid, starttime: l.st.starttime }]);
    assert.deepEqual(parseKillOutput(out), [{ pid: l.st.pid, outcome: 'killed-term' }]);
    assert.deepEqual(liveGroupMembers(l.st.pid), []);
  });

  test('kills a group that ignores TERM with KILL after the grace and reports killed-kill', async () => {
    const l = await launch('trap "" TERM; echo ready; exec sleep 60');
    await waitFor(
      () => existsSync(path.join(l.dir, 'stdout')) && readFileSync(path.join(l.dir, 'stdout'), 'utf8') === 'ready\n',
      5_000,
      'trap to be set',
    );
    const t0 = Date.now();
    const out = await kill(BOOT, 1, [{ pid: l.st.pid, starttime: l.st.starttime }]);
    assert.deepEqual(parseKillOutput(out), [{ pid: l.st.pid, outcome: 'killed-kill' }]);
    assert.ok(Date.now() - t0 >= 900, 'KILL must wait for the grace');
    assert.deepEqual(liveGroupMembers(l.st.pid), []);
  });

  test('reports already-gone for a pid that no longer exists', async () => {
    const gone = spawnSync('true').pid!;
    assert.equal(readStat(gone), null, 'the pid must be free for this test');
    const out = await kill(BOOT, 1, [{ pid: gone, starttime: '12345' }]);
    assert.deepEqual(parseKillOutput(out), [{ pid: gone, outcome: 'already-gone' }]);
  });

  test('reports one line per target in a batch and signals only its own', async () => {
    const mine = await launch('sleep 60');
    const notMine = await launch('sleep 60');
    const gone = spawnSync('true').pid!;
    const out = await kill(BOOT, 5, [
      { pid: mine.st.pid, starttime: mine.st.starttime },
      { pid: notMine.st.pid, starttime: '1' },
      { pid: gone, starttime: '1' },
    ]);
    const byPid = new Map(parseKillOutput(out).map((r) => [r.pid, r.outcome]));
    assert.equal(byPid.size, 3);
    assert.equal(byPid.get(mine.st.pid), 'killed-term');
    assert.equal(byPid.get(notMine.st.pid), 'not-ours');
    assert.equal(byPid.get(gone), 'already-gone');
    assert.deepEqual(liveGroupMembers(mine.st.pid), []);
    assert.ok(isLive(notMine.st.pid));
    process.kill(-notMine.st.pid, 'SIGKILL');
  });
});

describe('process listing script (node recovery)', () => {
  test('lists only processes launched under the given work dir, through a symlinked path too', async () => {
    const workDir = path.join(root, 'wd-mine');
    const other = path.join(root, 'wd-other');
    mkdirSync(workDir);
    mkdirSync(other);
    const link = path.join(root, 'wd-link');
    symlinkSync(workDir, link);
    const mine = await launch('sleep 30', { dir: path.join(workDir, 'same-id', 'attempt-1') });
    // Another deployment's task: same task id and attempt, another work dir (one whose name starts
    // like ours, so a plain prefix match would take it).
    const theirs = await launch('sleep 30', { dir: path.join(`${workDir}-2`, 'same-id', 'attempt-1') });
    const elsewhere = await launch('sleep 30', { dir: path.join(other, 'same-id', 'attempt-1') });
    for (const dir of [workDir, link, `${link}/`]) {
      const res = await shell.exec(listTaskProcsCommand(dir), { timeoutMs: 30_000 });
      assert.equal(res.code, 0, res.stderr);
      const { procs, bootId } = parseTaskProcs(res.stdout);
      assert.equal(bootId, BOOT);
      const pids = new Set(procs.map((p) => p.pid));
      assert.ok(pids.has(mine.st.pid), `${dir}: own process listed`);
      assert.ok(!pids.has(theirs.st.pid), `${dir}: a process under ${workDir}-2 was listed`);
      assert.ok(!pids.has(elsewhere.st.pid), `${dir}: a process under another work dir was listed`);
      assert.ok(procs.every((p) => p.task === 'same-id' && p.attempt === 1));
    }
    const missing = await shell.exec(listTaskProcsCommand(path.join(root, 'no-such-dir')), { timeoutMs: 30_000 });
    assert.deepEqual(parseTaskProcs(missing.stdout), { procs: [], bootId: BOOT }, 'a missing work dir lists nothing');
    for (const l of [mine, theirs, elsewhere]) process.kill(-l.st.pid, 'SIGKILL');
  });
});

describe('node recovery and pruning tell lives of one task id apart', () => {
  const CURRENT = 'c'.repeat(32);
  const nodeRow = (workDir: string): NodeRow => ({
    name: 'here',
    host: null,
    slots: 1,
    running_count: 0,
    kind: 'local',
    port: null,
    user: null,
    key_path: null,
    known_hosts: null,
    insecure_ignore_host_key: 0,
    work_dir: workDir,
    status: 'offline',
    last_seen_at: null,
    missed_probes: 0,
  });
  const pool = { get: () => shell } as unknown as ShellPool;

  test('recovery kills the process of an earlier life with the same task id and attempt, and spares the current one', async () => {
    const workDir = path.join(root, `lives-${++seq}`);
    mkdirSync(workDir);
    const dir = path.join(workDir, 'same', 'attempt-1');
    const earlier = await launch('sleep 30', { dir });
    const current = await launch('sleep 30', { dir, token: CURRENT });
    assert.equal(current.st.token, CURRENT);
    const list = parseTaskProcs((await shell.exec(listTaskProcsCommand(workDir), { timeoutMs: 30_000 })).stdout).procs;
    assert.deepEqual(new Set(list.filter((p) => p.pid === current.st.pid).map((p) => p.token)), new Set([CURRENT]));
    assert.deepEqual(new Set(list.filter((p) => p.pid === earlier.st.pid).map((p) => p.token)), new Set([null]));
    const res = await cleanupStaleProcesses(pool, nodeRow(workDir), [attemptKey('same', 1, CURRENT)], 1);
    const killed = new Set(res.killed.map((k) => k.pid));
    const currentGroup = new Set(list.filter((p) => p.token === CURRENT).map((p) => p.pid));
    assert.ok(killed.has(earlier.st.pid), 'the earlier life was killed');
    assert.ok(
      [...killed].every((pid) => !currentGroup.has(pid)),
      'nothing of the current attempt was signalled',
    );
    assert.ok(res.clean);
    assert.ok(!isLive(earlier.st.pid), 'the earlier life is gone');
    assert.ok(isLive(current.st.pid), 'the current attempt still runs');
    process.kill(-current.st.pid, 'SIGKILL');
  });

  test('pruning removes the directory of an earlier life and keeps the current attempt that shares its task id and attempt', async () => {
    const workDir = path.join(root, `lives-${++seq}`);
    mkdirSync(workDir);
    const dir = path.join(workDir, 'same', 'attempt-1');
    await launch('true', { dir });
    const current = await launch('true', { dir, token: CURRENT });
    const mine = `${dir}.${CURRENT.slice(0, 12)}`;
    assert.equal(parseKv(current.out).get('dir'), mine);
    const res = await pruneAttemptDirs(pool, nodeRow(workDir), [attemptKey('same', 1, CURRENT)], Math.floor(Date.now() / 1000) + 3600);
    assert.equal(res.error, null);
    assert.deepEqual(res.removed, [dir]);
    assert.ok(!existsSync(dir));
    assert.ok(existsSync(path.join(mine, 'status.json')));
  });
});
