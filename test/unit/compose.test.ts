/**
 * docker-compose.temporal.yml: Docker cannot run here, so the file is checked as data (services,
 * ports, pinned images, the search attributes dispatch needs), and the admin-tools script is run
 * for real against a local `temporal server start-dev` when the temporal CLI is installed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../src/common/search-attributes';
import { temporalBin } from '../helpers/temporal';

const FILE = path.resolve(__dirname, '../../../docker-compose.temporal.yml');
const TEXT = readFileSync(FILE, 'utf8');

interface Service {
  image?: string;
  ports?: (string | number | { target: number; published: string | number })[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  command?: string | string[];
  entrypoint?: string | string[];
}

function load(): Record<string, Service> {
  const doc = YAML.parse(TEXT) as { services?: Record<string, Service> };
  assert.ok(doc && typeof doc === 'object', 'not a YAML mapping');
  assert.ok(doc.services && typeof doc.services === 'object', 'no services');
  return doc.services;
}

function env(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(
      e.map((kv) => [
        kv.slice(0, kv.indexOf('=') < 0 ? kv.length : kv.indexOf('=')),
        kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '',
      ]),
    );
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** "HOST:CONTAINER" pairs, whichever syntax the file uses. */
function portPairs(s: Service): string[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') return `${p.published}:${p.target}`;
    const parts = String(p).split(':'); // [ip:]host:container[/proto]
    return `${parts.at(-2)}:${parts.at(-1)!.replace(/\/.*$/, '')}`;
  });
}

function script(s: Service): string {
  const cmd = s.command;
  assert.ok(cmd, 'temporal-admin-tools has no command');
  return Array.isArray(cmd) ? cmd.join(' ') : cmd;
}

/** name -> type of every `temporal operator search-attribute create` in the script. */
function createdAttributes(sh: string): Map<string, string> {
  const logical = sh.replace(/\\\n/g, ' ');
  const found = new Map<string, string>();
  for (const m of logical.matchAll(/temporal\s+operator\s+search-attribute\s+create\b([^;\n|&]*)/g)) {
    const args = m[1]!;
    const name = /--name[ =]"?([A-Za-z0-9_]+)/.exec(args)?.[1];
    const type = /--type[ =]"?([A-Za-z]+)/.exec(args)?.[1];
    assert.ok(name && type, `create without a literal --name/--type: ${m[0]}`);
    assert.match(args, /--address[ =]temporal:7233\b/, `${name}: not sent to temporal:7233`);
    assert.match(args, /--namespace[ =]default\b/, `${name}: not in namespace default`);
    assert.ok(!found.has(name), `${name} created twice`);
    found.set(name, type);
  }
  return found;
}

describe('docker-compose.temporal.yml', () => {
  test('has the four services: postgresql, temporal, temporal-admin-tools, temporal-ui', () => {
    assert.deepEqual(Object.keys(load()).sort(), ['postgresql', 'temporal', 'temporal-admin-tools', 'temporal-ui']);
  });

  test('publishes Temporal on 7233 and the Web UI on 8233', () => {
    const s = load();
    assert.ok(portPairs(s.temporal!).includes('7233:7233'), `temporal ports: ${portPairs(s.temporal!)}`);
    assert.ok(portPairs(s['temporal-ui']!).includes('8233:8080'), `ui ports: ${portPairs(s['temporal-ui']!)}`);
    assert.equal(env(s['temporal-ui']!).TEMPORAL_ADDRESS, 'temporal:7233');
  });

  test('every image has an explicit tag, never latest, at the pinned versions', () => {
    const s = load();
    for (const [name, svc] of Object.entries(s)) {
      assert.ok(svc.image, `${name} has no image`);
      const m = /^([a-z0-9./_-]+):([A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$/.exec(svc.image!);
      assert.ok(m, `${name}: image ${svc.image} has no explicit tag`);
      assert.notEqual(m![2], 'latest', `${name}: image ${svc.image} uses latest`);
      assert.doesNotMatch(svc.image!, /\$\{/, `${name}: image tag comes from a variable`);
    }
    assert.match(s.postgresql!.image!, /^postgres:16(\.|$)/);
    assert.match(s.temporal!.image!, /^temporalio\/auto-setup:1\.29\.\d+$/);
    assert.match(s['temporal-admin-tools']!.image!, /^temporalio\/admin-tools:1\.29\.\d+(-|$)/);
    assert.match(s['temporal-ui']!.image!, /^temporalio\/ui:2\.42\.\d+$/);
  });

  test('temporal uses postgres12 against the postgresql service, started only once it is healthy', () => {
    const s = load();
    const e = env(s.temporal!);
    assert.equal(e.DB, 'postgres12');
    assert.equal(e.POSTGRES_SEEDS, 'postgresql');
    assert.ok(e.POSTGRES_USER && e.POSTGRES_PWD && e.DB_PORT);
    const pg = env(s.postgresql!);
    assert.equal(pg.POSTGRES_USER, e.POSTGRES_USER);
    assert.equal(pg.POSTGRES_PASSWORD, e.POSTGRES_PWD);
    assert.ok(s.postgresql!.healthcheck?.test, 'postgresql has no healthcheck');
    const deps = s.temporal!.depends_on as Record<string, { condition?: string }>;
    assert.equal(deps?.postgresql?.condition, 'service_healthy');
  });

  test('the admin-tools command registers TaskProject, TaskNode, TaskStatus (Keyword) and TaskPriority (Int) in default', () => {
    const s = load();
    const sh = script(s['temporal-admin-tools']!);
    const got = createdAttributes(sh);
    assert.deepEqual(Object.fromEntries(got), { TaskProject: 'Keyword', TaskNode: 'Keyword', TaskStatus: 'Keyword', TaskPriority: 'Int' });
    // Exactly what dispatch itself registers on its dev server.
    assert.deepEqual([...got].map(([n, t]) => `${n}=${t}`).sort(), [...SEARCH_ATTRIBUTE_FLAGS].sort());
    // It waits for the server: every create sits in a retry loop.
    assert.equal((sh.match(/\buntil\b/g) ?? []).length >= got.size, true, 'creates are not retried until the server answers');
  });

  test('the header says how to use it with dispatch', () => {
    const header = TEXT.split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
    assert.match(header, /docker compose -f docker-compose\.temporal\.yml up -d/);
    assert.match(header, /dispatch worker --address localhost:7233/);
  });

  test('the admin-tools script registers the attributes on a real server, and a second run is a no-op', { timeout: 120_000 }, async (t) => {
    let bin: string;
    try {
      bin = temporalBin();
    } catch {
      t.skip('temporal CLI not installed');
      return;
    }
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const address = `127.0.0.1:${port}`;
    // A bare dev server without dispatch's attributes: the script has to add them.
    const server = spawn(bin, ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'], {
      stdio: 'ignore',
    });
    const sh = script(load()['temporal-admin-tools']!).replaceAll('temporal:7233', address);
    const runScript = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn('/bin/sh', ['-c', sh], {
          env: { ...process.env, PATH: `${path.dirname(bin)}:${process.env.PATH ?? ''}` },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        p.stdout.on('data', (b: Buffer) => (out += b.toString()));
        p.stderr.on('data', (b: Buffer) => (out += b.toString()));
        const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
        p.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    try {
      const first = await runScript(); // started right away: it must wait for the server
      assert.equal(first.code, 0, first.out);
      const list = () =>
        JSON.parse(
          execFileSync(bin, ['operator', 'search-attribute', 'list', '--namespace', 'default', '--address', address, '--output', 'json'], {
            encoding: 'utf8',
          }),
        );
      const custom = (list() as { customAttributes?: Record<string, string> }).customAttributes ?? {};
      for (const f of SEARCH_ATTRIBUTE_FLAGS) {
        const [name, type] = f.split('=') as [string, string];
        assert.equal(custom[name], `INDEXED_VALUE_TYPE_${type.toUpperCase()}`, `${name}: ${JSON.stringify(custom)}`);
      }
      const second = await runScript();
      assert.equal(second.code, 0, second.out);
      assert.doesNotMatch(second.out, /Search attributes have been added/, 'the second run created attributes again');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r(null) : server.once('exit', r)));
    }
  });
});
