// Starts a throwaway `temporal server start-dev` for tests.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';

export interface TemporalServer {
  /** host:port of the frontend gRPC service. */
  address: string;
  /** The Web UI's port with `ui: true`; otherwise no UI runs (headless) and this is the HTTP API port. */
  uiPort: number;
  httpPort: number;
  metricsPort: number;
  namespace: string;
  dbFile: string;
  /** The current server process; replaced by restart(). */
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL without waiting (crash tests); follow with restart(). */
  kill9(): void;
  /** Starts the server again on the same ports and db file (stops the old one first if alive). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const SEARCH_ATTRIBUTES = ['TaskProject=Keyword', 'TaskNode=Keyword', 'TaskStatus=Keyword', 'TaskPriority=Int'];

// Every server we spawned and that has not exited yet: killed on process exit so none outlives the tests.
const live = new Set<ChildProcess>();
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  if (!process.env.DISPATCH_KEEP_TMP) for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Finds the `temporal` CLI: $TEMPORAL_BIN, then PATH, then $(go env GOPATH)/bin/temporal. */
export function temporalBin(): string {
  const env = process.env.TEMPORAL_BIN;
  if (env) return env;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'temporal'))) return path.join(dir, 'temporal');
  }
  let gopath = path.join(os.homedir(), 'go');
  try {
    // GOPATH may be a list; the first entry is where `go install` puts binaries.
    gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim().split(path.delimiter)[0] || gopath;
  } catch {
    // no go on PATH: fall back to the default GOPATH
  }
  const p = path.join(gopath, 'bin', 'temporal');
  if (isExecutable(p)) return p;
  throw new Error(`temporal CLI not found: set TEMPORAL_BIN, put it on PATH, or install it to ${p}`);
}

/** Distinct free ports: all bound at once (so they differ), then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// setpriv --pdeathsig makes the kernel kill the server if this process dies without running
// its 'exit' hooks (SIGKILL, uncaught signal). Optional: used only if util-linux has it.
const SETPRIV = isExecutable('/usr/bin/setpriv') ? '/usr/bin/setpriv' : null;

function spawnGuarded(bin: string, args: string[]): ChildProcess {
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  const child = spawn(cmd, argv, { detached: false, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // Don't let a forgotten server keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stdout as net.Socket | null)?.unref();
  (child.stderr as net.Socket | null)?.unref();
  return child;
}

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

/** Resolves when `c` has exited; a ref'd timer keeps the loop alive meanwhile (the child is unref'd). */
function waitExit(c: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    c.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (exited(c)) return;
  c.kill('SIGTERM');
  if (await waitExit(c, 5_000)) return;
  c.kill('SIGKILL');
  await waitExit(c, 10_000);
}

class PortInUse extends Error {}

/** Spawns the server and waits until it serves the namespace; throws with the stderr tail on failure. */
async function launch(
  ports: { grpc: number; http: number; metrics: number; ui?: number },
  dbFile: string,
  namespace: string,
): Promise<ChildProcess> {
  const address = `127.0.0.1:${ports.grpc}`;
  const args = [
    'server',
    'start-dev',
    ...(ports.ui ? ['--ui-port', String(ports.ui), '--ui-ip', '127.0.0.1'] : ['--headless']),
    '--ip',
    '127.0.0.1',
    '--port',
    String(ports.grpc),
    '--http-port',
    String(ports.http),
    '--metrics-port',
    String(ports.metrics),
    '--db-filename',
    dbFile,
    '--log-level',
    'error',
    ...SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', a]),
  ];
  const child = spawnGuarded(temporalBin(), args);
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const tail = () => output.trim().split('\n').slice(-30).join('\n');

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (exited(child)) {
      const msg = `temporal server exited (code ${child.exitCode}, signal ${child.signalCode}) before ready:\n${tail()}`;
      throw /address already in use/i.test(output) ? new PortInUse(msg) : new Error(msg);
    }
    let conn: Connection | undefined;
    try {
      conn = await Connection.connect({ address, connectTimeout: 2_000 });
      await conn.workflowService.getSystemInfo({});
      // start-dev registers the namespace after the frontend is up; wait for it too.
      await conn.workflowService.describeNamespace({ namespace });
      return child;
    } catch (e) {
      lastErr = e;
    } finally {
      await conn?.close().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stopChild(child);
  throw new Error(
    `temporal server at ${address} not ready after ${READY_TIMEOUT_MS / 1000}s ` +
      `(last error: ${String(lastErr)}); output tail:\n${tail()}`,
  );
}

/** Starts `temporal server start-dev` on free ports with a db file in `opts.dir` (default: a temp dir). */
export async function startTemporal(opts: { dir?: string; ui?: boolean } = {}): Promise<TemporalServer> {
  let dir = opts.dir;
  if (dir) fs.mkdirSync(dir, { recursive: true });
  else {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatch-temporal-'));
    tempDirs.push(dir);
  }
  const dbFile = path.join(dir, 'temporal.db');
  const namespace = 'default';

  // Ports are free when picked but may be taken before the server binds them: retry with new ones.
  let ports: { grpc: number; http: number; metrics: number; ui?: number } = { grpc: 0, http: 0, metrics: 0 };
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    const [grpc, http, metrics, ui] = await freePorts(4);
    ports = { grpc, http, metrics, ...(opts.ui ? { ui } : {}) };
    try {
      child = await launch(ports, dbFile, namespace);
    } catch (e) {
      if (!(e instanceof PortInUse) || attempt >= 3) throw e;
    }
  }

  const server: TemporalServer = {
    address: `127.0.0.1:${ports.grpc}`,
    uiPort: ports.ui ?? ports.http,
    httpPort: ports.http,
    metricsPort: ports.metrics,
    namespace,
    dbFile,
    process: child,
    stop: () => stopChild(server.process),
    kill9: () => {
      server.process.kill('SIGKILL');
    },
    restart: async () => {
      await stopChild(server.process); // after kill9 this just waits for the exit
      // The server also binds internal ports next to the frontend one; an outgoing connection
      // may hold one of them for a moment after the crash. The frontend port must stay the same.
      for (let attempt = 1; ; attempt++) {
        try {
          server.process = await launch(ports, dbFile, namespace);
          return;
        } catch (e) {
          if (attempt >= 5 || !/address already in use/.test(String((e as Error).message))) throw e;
          await new Promise((r) => setTimeout(r, 1000 * attempt));
        }
      }
    },
  };
  return server;
}

/**
 * Waits until `temporal workflow list --query` shows every one of `workflowIds`: visibility is
 * eventually consistent, and a batch operation by query acts only on what it lists.
 */
export async function waitListed(address: string, query: string, workflowIds: string[], timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let out = '';
  while (Date.now() < until) {
    out = execFileSync(temporalBin(), ['workflow', 'list', '--query', query, '--address', address], { encoding: 'utf8' });
    if (workflowIds.every((id) => out.includes(id))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${workflowIds.join(', ')} not all listed under ${query} within ${timeoutMs} ms:\n${out}`);
}
