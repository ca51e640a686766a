/**
 * `dispatch dev` end to end: the real CLI starts the Temporal dev server (with the Web UI), a
 * worker and a local node; a task submitted through the CLI completes on node "local"; SIGTERM
 * stops everything, the Temporal server included.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isAlive, readProcStat, waitFor } from '../helpers/proc';
import { freePorts } from '../helpers/temporal';
import { WORKER_START } from '../../src/workers/memory';

const BIN = path.resolve(__dirname, '../../../bin/dispatch.js');

let dir: string;
let dbPath: string;
let grpcPort: number;
let uiPort: number;
let dev: ChildProcess | null = null;
let out = '';
/** Processes `dispatch dev` started (the temporal server), found while it runs; for the checks and cleanup. */
let devChildren: { pid: number; starttime: string; comm: string }[] = [];

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.DISPATCH_DB;
  delete e.TEMPORAL_ADDRESS;
  return e;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, '--db', dbPath, ...args], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Live descendants of `root` (children, grandchildren...), from /proc. */
function descendants(root: number): { pid: number; starttime: string; comm: string }[] {
  const kids = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readProcStat(Number(e));
    if (st) kids.set(st.ppid, [...(kids.get(st.ppid) ?? []), Number(e)]);
  }
  const res: { pid: number; starttime: string; comm: string }[] = [];
  const walk = (p: number) => {
    for (const k of kids.get(p) ?? []) {
      const st = readProcStat(k);
      if (!st) continue;
      let comm = '';
      try {
        comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      res.push({ pid: k, starttime: st.starttime, comm });
      walk(k);
    }
  };
  walk(root);
  return res;
}

const sameProcessAlive = (p: { pid: number; starttime: string }) => isAlive(p.pid) && readProcStat(p.pid)?.starttime === p.starttime;

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-dev-'));
  dbPath = path.join(dir, 'dispatch.db');
  [grpcPort, uiPort] = await freePorts(2);
  dev = spawn(
    process.execPath,
    // As `npm run dev` starts it (package.json).
    [...WORKER_START.nodeFlags, BIN, '--db', dbPath, 'dev', '--port', String(grpcPort), '--ui-port', String(uiPort), '--local-slots', '2'],
    {
      cwd: dir,
      env: { ...env(), ...WORKER_START.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  dev.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`"dispatch dev is up" not printed within 90 s; output:\n${out}`)), 90_000);
    const check = () => {
      if (out.includes('dispatch dev is up')) {
        clearTimeout(t);
        resolve();
      }
    };
    dev!.stdout!.on('data', check);
    dev!.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`dispatch dev exited (${code ?? sig}) during start-up; output:\n${out}`));
    });
  });
  devChildren = descendants(dev.pid!);
});

after(async () => {
  // Whatever happened in the tests, leave no server behind: only processes this file started.
  if (dev && !exited(dev)) {
    dev.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const p of devChildren) {
    if (sameProcessAlive(p)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  if (!process.env.DISPATCH_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
});

describe('dispatch dev', () => {
  test('prints the Web UI URL with the --ui-port, and the UI answers HTTP 200', async () => {
    assert.match(out, new RegExp(`Web UI\\s+http://(localhost|127\\.0\\.0\\.1):${uiPort}\\b`), out);
    assert.match(out, new RegExp(`Temporal\\s+127\\.0\\.0\\.1:${grpcPort}\\b`));
    let status = 0;
    let body = '';
    await waitFor(
      async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${uiPort}/`);
          status = r.status;
          body = await r.text();
          return status === 200;
        } catch {
          return false;
        }
      },
      15_000,
      `GET http://127.0.0.1:${uiPort}/ to return 200 (last ${status})`,
    );
    assert.equal(status, 200);
    assert.match(body, /<html/i);
  });

  test('a task submitted with --address completes on node "local", with the state persisted under .dispatch/', async () => {
    const sub = await cli([
      '--address',
      `127.0.0.1:${grpcPort}`,
      'submit',
      '--id',
      'dev-hello',
      '--command',
      'echo hello from dev; sleep 1',
    ]);
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /submitted dev-hello/);
    let row: Record<string, unknown> | undefined;
    await waitFor(
      async () => {
        const r = await cli(['tasks', '--json']);
        if (r.code !== 0) return false;
        row = (JSON.parse(r.stdout) as Record<string, unknown>[]).find((t) => t.id === 'dev-hello');
        return row?.status === 'completed' || row?.status === 'failed';
      },
      60_000,
      'dev-hello to finish',
    );
    assert.equal(row?.status, 'completed', JSON.stringify(row));
    assert.equal(row?.node, 'local');
    assert.equal(row?.exit_code, 0);
    const nodes = JSON.parse((await cli(['node', 'list', '--json'])).stdout) as { name: string; kind: string; slots: number }[];
    assert.deepEqual(
      nodes.map((n) => [n.name, n.kind, n.slots]),
      [['local', 'local', 2]],
    );
    assert.ok(existsSync(path.join(dir, '.dispatch', 'temporal', 'temporal.db')), 'no .dispatch/temporal/temporal.db under the cwd');
    assert.ok(existsSync(path.join(dir, '.dispatch', 'runs', 'dev-hello', 'attempt-1', 'status.json')), 'run dir not under .dispatch/runs');
  });

  test('SIGTERM stops dispatch dev within 20 s and closes the Temporal port', async () => {
    assert.ok(dev && !exited(dev), 'dispatch dev is not running');
    assert.equal(await portOpen(grpcPort), true, 'Temporal port not open while dev runs');
    const servers = devChildren.filter((p) => p.comm === 'temporal');
    assert.ok(servers.length >= 1, `no temporal server below dispatch dev: ${JSON.stringify(devChildren)}`);
    const exitedIn = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 20_000);
      dev!.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    dev!.kill('SIGTERM');
    assert.equal(await exitedIn, true, `dispatch dev still running 20 s after SIGTERM; output tail:\n${out.slice(-2000)}`);
    await waitFor(async () => !(await portOpen(grpcPort)), 5_000, `Temporal port ${grpcPort} to close`);
    await waitFor(() => servers.every((p) => !sameProcessAlive(p)), 5_000, 'the temporal server process to exit');
    assert.equal(await portOpen(uiPort), false, 'the Web UI port is still open');
  });
});
