// Self-check of the test fixtures: Temporal dev server, per-node sshd, /proc helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Client } from 'ssh2';
import { Connection } from '@temporalio/client';
import { startTemporal, temporalBin } from './temporal';
import { startSshd, SshNode } from './sshd';
import { findProcessesWithEnv, isAlive, readProcStat, waitFor } from './proc';

function connect(node: SshNode): Promise<Client> {
  // known_hosts line: "[127.0.0.1]:PORT <type> <base64 key>"; ssh2 hands us the raw key blob.
  const expected = Buffer.from(fs.readFileSync(node.knownHostsPath, 'utf8').trim().split(/\s+/)[2], 'base64');
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({
      host: node.host,
      port: node.port,
      username: node.user,
      privateKey: fs.readFileSync(node.keyPath),
      hostVerifier: (key: Buffer) => key.equals(expected),
      readyTimeout: 10_000,
    });
  });
}

function exec(c: Client, cmd: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    c.exec(cmd, (err, stream) => {
      if (err) return reject(err);
      let out = '';
      let code: number | null = null;
      stream.on('data', (d: Buffer) => (out += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (out += d.toString()));
      stream.on('exit', (c: number | null) => (code = c));
      stream.on('close', () => resolve({ out, code }));
    });
  });
}

test('temporal dev server: ready, search attributes, crash + restart', async () => {
  const t = await startTemporal();
  try {
    const list = execFileSync(temporalBin(), ['operator', 'search-attribute', 'list', '--address', t.address], {
      encoding: 'utf8',
    });
    for (const sa of ['TaskNode', 'TaskProject', 'TaskStatus', 'TaskPriority']) assert.match(list, new RegExp(sa));

    t.kill9();
    await t.restart();
    const conn = await Connection.connect({ address: t.address });
    try {
      await conn.workflowService.getSystemInfo({});
    } finally {
      await conn.close();
    }
  } finally {
    await t.stop();
  }
  assert.ok(!isAlive(t.process.pid!), 'temporal server still running after stop()');
});

test('sshd nodes: exec, setsid survivors, stop/start', async () => {
  const nodes = [await startSshd('node-a'), await startSshd('node-b')];
  const leftovers: number[] = [];
  try {
    assert.notEqual(nodes[0].port, nodes[1].port);
    for (const n of nodes) {
      const c = await connect(n);
      assert.deepEqual(await exec(c, 'echo hello'), { out: 'hello\n', code: 0 });
      c.end();
    }

    const [a] = nodes;
    const c = await connect(a);
    let closed = false;
    c.once('close', () => (closed = true));
    c.on('error', () => undefined); // the drop on stop() may surface as ECONNRESET
    // stdio must be redirected, or the detached sleep holds the channel open. Not DISPATCH_TASK:
    // a dispatch worker sweeping this machine for ghosts could take it for one of its own.
    const tag = `selfcheck-${process.pid}`;
    const { out } = await exec(c, `DISPATCH_SELFCHECK=${tag} setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!`);
    const pid = Number(out.trim());
    leftovers.push(pid);
    await waitFor(() => findProcessesWithEnv('DISPATCH_SELFCHECK', tag).includes(pid), 5_000, 'sleep to show up');
    assert.equal(readProcStat(pid)?.session, pid, 'sleep should lead its own session');

    await a.stop();
    await waitFor(() => closed, 5_000, 'open connection to drop');
    assert.ok(isAlive(pid), `setsid process must survive sshd stop(): ${JSON.stringify(readProcStat(pid))}`);
    await assert.rejects(connect(a), /ECONNREFUSED/);

    await a.start();
    const c2 = await connect(a);
    assert.equal((await exec(c2, `kill ${pid}`)).code, 0);
    c2.end();
    await waitFor(() => !isAlive(pid), 5_000, 'sleep to die');
  } finally {
    for (const pid of leftovers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const n of nodes) await n.stop();
  }
});
