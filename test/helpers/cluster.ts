/**
 * A whole dispatch deployment for one test file: a real Temporal dev server, real sshd nodes, a
 * real SQLite file, and worker processes started with the real CLI (so they can be SIGKILLed).
 */
import { Client, Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, createWriteStream, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { Store } from '../../src/store/store';
import { connectOptions, resolveConnection } from '../../src/client/connection';
import type { TaskRow } from '../../src/common/types';
import { WORKER_START } from '../../src/workers/memory';
import { startTemporal, type TemporalServer } from './temporal';
import { startSshd, type SshNode } from './sshd';

export const BIN = path.resolve(__dirname, '../../../bin/dispatch.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface WorkerProc {
  proc: ChildProcess;
  logFile: string;
  kill9(): void;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes?: number;
  slots?: number;
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /**
   * A Temporal that is already running (the mTLS cluster of scripts/temporal-cluster.sh) instead of
   * a fresh dev server; with `profile`, the CLI and the test client connect through that
   * temporal.toml profile (TEMPORAL_CONFIG_FILE in `env`) instead of --address.
   */
  temporal?: TemporalServer;
  profile?: string;
  /** Nodes whose sshd reaps the task processes that end below it (startSshd reapOrphans). */
  reapOrphans?: boolean;
}

export class Cluster {
  readonly workers: WorkerProc[] = [];
  constructor(
    readonly dir: string,
    readonly dbPath: string,
    readonly configPath: string,
    readonly temporal: TemporalServer,
    readonly nodes: SshNode[],
    readonly client: Client,
    private readonly conn: Connection,
    readonly env: NodeJS.ProcessEnv,
    readonly profile?: string,
  ) {}

  globalArgs(db = this.dbPath, address = this.temporal.address): string[] {
    const temporal = this.profile ? ['--profile', this.profile] : ['--address', address];
    return ['--db', db, '--config', this.configPath, ...temporal];
  }

  /** The real CLI against this deployment (or, with `db`, against another database file). */
  cli(args: string[], opts: { env?: Record<string, string>; input?: string; db?: string } = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...this.globalArgs(opts.db), ...args], { env: { ...this.env, ...opts.env }, cwd: this.dir });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.stdin.end(opts.input ?? '');
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  async cliOk(args: string[]): Promise<string> {
    const r = await this.cli(args);
    assert.equal(r.code, 0, `dispatch ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  /**
   * `dispatch worker`; `where` runs it on another database path and working directory, and may wait
   * longer than a minute for it to poll (its start-up sweep over a thousand running tasks takes longer).
   * The worker's node starts as the service units start it (WORKER_START), unless `where.start` says otherwise.
   */
  async startWorker(
    queues?: string,
    env: Record<string, string> = {},
    extraArgs: string[] = [],
    where: { db?: string; cwd?: string; startTimeoutMs?: number; start?: typeof WORKER_START; address?: string } = {},
  ): Promise<WorkerProc> {
    const logFile = path.join(this.dir, `worker-${this.workers.length}.log`);
    const log = createWriteStream(logFile);
    const start = where.start ?? WORKER_START;
    const args = [
      ...start.nodeFlags,
      BIN,
      ...this.globalArgs(where.db, where.address),
      'worker',
      ...(queues ? ['--queues', queues] : []),
      ...extraArgs,
    ];
    const cwd = where.cwd ?? this.dir;
    const proc = spawn(process.execPath, args, { env: { ...this.env, ...start.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.pipe(log);
    proc.stderr!.pipe(log);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const waitMs = where.startTimeoutMs ?? 60_000;
      const t = setTimeout(() => reject(new Error(`worker did not start polling within ${waitMs / 1000} s: ${out}`)), waitMs);
      proc.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('dispatch worker polling')) {
          clearTimeout(t);
          resolve();
        }
      });
      proc.on('exit', (c) => {
        clearTimeout(t);
        reject(new Error(`worker exited (${c}) during start: ${out}`));
      });
    });
    const w: WorkerProc = {
      proc,
      logFile,
      kill9: () => proc.kill('SIGKILL'),
      stop: () =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
          setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
        }),
    };
    this.workers.push(w);
    return w;
  }

  /** A fresh read-only look at the database. */
  read<T>(fn: (s: Store) => T): T {
    const s = new Store(this.dbPath, { readonly: true });
    try {
      return fn(s);
    } finally {
      s.close();
    }
  }

  task(id: string): TaskRow | null {
    return this.read((s) => s.getTask(id));
  }

  async waitTask(id: string, pred: (t: TaskRow) => boolean, label: string, timeoutMs = 60_000): Promise<TaskRow> {
    const until = Date.now() + timeoutMs;
    let last: TaskRow | null = null;
    while (Date.now() < until) {
      last = this.task(id);
      if (last && pred(last)) return last;
      await sleep(150);
    }
    throw new Error(`timed out waiting for ${id} to be ${label}; row: ${JSON.stringify(last)}`);
  }

  waitStatus(id: string, status: string, timeoutMs = 60_000): Promise<TaskRow> {
    return this.waitTask(id, (t) => t.status === status, status, timeoutMs);
  }

  /** Each node's running_count equals its dispatched+running rows. */
  assertBooks(): void {
    this.read((s) => {
      const active = s.activeCountsByNode();
      for (const n of s.listNodes()) {
        assert.equal(
          n.running_count ?? 0,
          active.get(n.name) ?? 0,
          `node ${n.name}: running_count ${n.running_count} != active rows ${active.get(n.name) ?? 0}`,
        );
      }
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.conn.close().catch(() => undefined);
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => undefined)));
    await this.temporal.stop();
  }

  workerLogs(): string {
    return this.workers.map((w) => readFileSync(w.logFile, 'utf8')).join('\n----\n');
  }
}

/**
 * `dispatch node add` for a test sshd node (under its own name unless `name` is given; a second
 * name for the same sshd gets a work dir of its own with `workDir`).
 */
export function nodeAddArgs(n: SshNode, slots: number, name = n.name, workDir = n.workDir): string[] {
  const ssh = ['--host', n.host, '--port', String(n.port), '--user', n.user, '--key', n.keyPath, '--known-hosts', n.knownHostsPath];
  return ['node', 'add', name, ...ssh, '--work-dir', workDir, '--slots', String(slots)];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function startCluster(o: ClusterOptions = {}): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-e2e-'));
  const dbPath = path.join(dir, 'dispatch.db');
  const configPath = path.join(dir, 'dispatch.config.json');
  writeFileSync(configPath, JSON.stringify({ lease_s: 3, kill_grace: 2, heartbeat_record_interval: 2, ...o.config }, null, 2));
  const temporal = o.temporal ?? (await startTemporal({ dir }));
  const nodes: SshNode[] = [];
  for (let i = 1; i <= (o.nodes ?? 2); i++) nodes.push(await startSshd(`n${i}`, { baseDir: dir, reapOrphans: o.reapOrphans }));
  const env = { ...process.env, ...o.env };
  delete env.DISPATCH_DB;
  delete env.TEMPORAL_ADDRESS;
  const settings = o.profile ? resolveConnection({ profile: o.profile, env }) : { address: temporal.address, namespace: 'default' };
  const conn = await Connection.connect(connectOptions(settings));
  const client = new Client({ connection: conn, namespace: 'default' });
  const c = new Cluster(dir, dbPath, configPath, temporal, nodes, client, conn, env, o.profile);
  await c.cliOk(['init']);
  for (const n of nodes) await c.cliOk(nodeAddArgs(n, o.slots ?? 2));
  return c;
}
