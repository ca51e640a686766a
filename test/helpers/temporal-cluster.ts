/**
 * The production-style Temporal of scripts/temporal-cluster.sh for one test file: two server
 * processes on PostgreSQL with mTLS on the frontend, in a throwaway directory on free ports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TemporalServer } from './temporal';
import { temporalBin } from './temporal';

const SCRIPT = path.resolve(__dirname, '../../../scripts/temporal-cluster.sh');

export interface TemporalCluster {
  dir: string;
  /** TEMPORAL_CONFIG_FILE for the `cluster` (server 1) and `second` (server 2) profiles. */
  env: Record<string, string>;
  frontend: [string, string];
  certs: { ca: string; cert: string; key: string };
  /** Server 1 as the Cluster helper sees it (stop() leaves the cluster to stopCluster). */
  server: TemporalServer;
  pid(i: 1 | 2): number;
  kill9(i: 1 | 2): void;
  startServer(i: 1 | 2): void;
  /** The temporal CLI with the client certificate, against server 1. */
  temporal(args: string[]): string;
  stop(): void;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port whose frontend, service, membership and HTTP ports (both servers) are free. */
async function freeBase(): Promise<{ base: number; pg: number }> {
  for (let k = 0; k < 50; k++) {
    // Membership ports are stored as smallint: everything stays below 32768.
    const base = 20000 + Math.floor(Math.random() * 120) * 100;
    const pg = base + 50;
    const ports = [pg, ...[0, 100].flatMap((o) => [0, 1, 2, 3, 10, 11, 12, 13, 20].map((d) => base + o + d))];
    const free = await Promise.all(ports.map(portFree));
    if (free.every(Boolean)) return { base, pg };
  }
  throw new Error('no free port range for the Temporal cluster');
}

export async function startTemporalCluster(): Promise<TemporalCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-tcluster-'));
  const { base, pg } = await freeBase();
  const scriptEnv = {
    ...process.env,
    DISPATCH_CLUSTER_DIR: dir,
    DISPATCH_CLUSTER_PORT: String(base),
    DISPATCH_CLUSTER_PG_PORT: String(pg),
  };
  const run = (...args: string[]) => {
    const r = spawnSync('bash', [SCRIPT, ...args], { env: scriptEnv, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`temporal-cluster.sh ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
    return r.stdout;
  };
  // Registered first, so that a start that fails half-way still stops what it started.
  process.on('exit', () => spawnSync('bash', [SCRIPT, 'stop'], { env: scriptEnv }));
  run('start');
  const frontend: [string, string] = [`127.0.0.1:${base}`, `127.0.0.1:${base + 100}`];
  const certs = { ca: path.join(dir, 'certs/ca.pem'), cert: path.join(dir, 'certs/client.pem'), key: path.join(dir, 'certs/client.key') };
  const pid = (i: 1 | 2) => Number(readFileSync(path.join(dir, `s${i}`, 'pid'), 'utf8').trim());
  const tc: TemporalCluster = {
    dir,
    env: { TEMPORAL_CONFIG_FILE: path.join(dir, 'temporal.toml') },
    frontend,
    certs,
    server: {
      address: frontend[0],
      uiPort: 0,
      httpPort: base + 20,
      metricsPort: 0,
      namespace: 'default',
      dbFile: '',
      process: null as never,
      stop: async () => undefined,
      kill9: () => tc.kill9(1),
      restart: async () => tc.startServer(1),
    },
    pid,
    kill9: (i) => {
      try {
        process.kill(pid(i), 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
    startServer: (i) => {
      run('start-server', String(i));
    },
    temporal: (args) =>
      execFileSync(
        temporalBin(),
        [
          ...args,
          '--address',
          frontend[0],
          '--tls-cert-path',
          certs.cert,
          '--tls-key-path',
          certs.key,
          '--tls-ca-path',
          certs.ca,
          '--tls-server-name',
          'localhost',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    stop: () => {
      run('stop');
    },
  };
  return tc;
}
