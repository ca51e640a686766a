/**
 * docker-compose.temporal.yml: Docker cannot run here, so the file is checked as data (services,
 * ports, pinned images, the search attributes dispatch needs), and the admin-tools script is run
 * for real against a local `temporal server start-dev` when the temporal CLI is installed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../src/common/search-attributes';
import { temporalBin } from '../helpers/temporal';

const FILE = path.resolve(__dirname, '../../../docker-compose.temporal.yml');
const MTLS_FILE = path.resolve(__dirname, '../../../docker-compose.temporal.mtls.yml');
const CLUSTER_SCRIPT = path.resolve(__dirname, '../../../scripts/temporal-cluster.sh');

/** The server image's config template, from the Go module cache, if the server was built here. */
function serverTemplate(): string | null {
  try {
    const mod = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
    const version = /^SERVER_VERSION=(\S+)$/m.exec(readFileSync(CLUSTER_SCRIPT, 'utf8'))?.[1];
    return readFileSync(path.join(mod, `go.temporal.io/server@${version}`, 'docker/config_template.yaml'), 'utf8');
  } catch {
    return null;
  }
}
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
  test('has the five services: postgresql, temporal-schema-setup, temporal, temporal-admin-tools, temporal-ui', () => {
    assert.deepEqual(Object.keys(load()).sort(), [
      'postgresql',
      'temporal',
      'temporal-admin-tools',
      'temporal-schema-setup',
      'temporal-ui',
    ]);
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
    assert.match(s.postgresql!.image!, /^postgres:15(\.|$)/);
    assert.match(s.temporal!.image!, /^temporalio\/server:1\.29\.\d+$/, 'the server image, not the deprecated auto-setup');
    assert.match(s['temporal-admin-tools']!.image!, /^temporalio\/admin-tools:1\.29\.\d+(-|$)/);
    assert.match(s['temporal-ui']!.image!, /^temporalio\/ui:2\.42\.\d+$/);
  });

  test('temporal uses postgres12 with SQL visibility against the postgresql service, after the schema setup', () => {
    const s = load();
    const e = env(s.temporal!);
    assert.equal(e.DB, 'postgres12');
    assert.equal(e.POSTGRES_SEEDS, 'postgresql');
    assert.equal(e.DBNAME, 'temporal');
    assert.equal(e.VISIBILITY_DBNAME, 'temporal_visibility');
    assert.ok(e.POSTGRES_USER && e.POSTGRES_PWD && e.DB_PORT);
    const pg = env(s.postgresql!);
    assert.equal(pg.POSTGRES_USER, e.POSTGRES_USER);
    assert.equal(pg.POSTGRES_PASSWORD, e.POSTGRES_PWD);
    assert.ok(s.postgresql!.healthcheck?.test, 'postgresql has no healthcheck');
    const deps = s.temporal!.depends_on as Record<string, { condition?: string }>;
    assert.equal(deps?.['temporal-schema-setup']?.condition, 'service_completed_successfully');
    const setup = s['temporal-schema-setup']!;
    assert.equal((setup.depends_on as Record<string, { condition?: string }>)?.postgresql?.condition, 'service_healthy');
    const se = env(setup);
    assert.equal(se.SQL_PLUGIN, 'postgres12');
    assert.equal(se.SQL_HOST, 'postgresql');
    const sh = script(setup);
    assert.match(sh, /setup-schema -v 0\.0/);
    assert.match(sh, /update-schema -d "\/etc\/temporal\/schema\/postgresql\/v12\/\$\$sub\/versioned"/);
    assert.match(sh, /for db in temporal temporal_visibility/);
  });

  test('parity with the native cluster (scripts/temporal-cluster.sh): server version, PostgreSQL major, schema steps, search attributes', () => {
    const s = load();
    const native = readFileSync(CLUSTER_SCRIPT, 'utf8');
    const version = /^SERVER_VERSION=v(\S+)$/m.exec(native)?.[1];
    assert.ok(version, 'the cluster script pins no server version');
    assert.equal(s.temporal!.image, `temporalio/server:${version}`);
    assert.ok(s['temporal-admin-tools']!.image!.startsWith(`temporalio/admin-tools:${version}-`));
    for (const step of ['setup-schema -v 0.0', 'update-schema', 'postgres12', 'postgresql/v12']) {
      assert.ok(native.includes(step), `native: ${step}`);
      assert.ok(TEXT.includes(step), `compose: ${step}`);
    }
    const nativeAttrs = /^SEARCH_ATTRIBUTES=\(([^)]*)\)$/m
      .exec(native)?.[1]
      ?.split(/\s+/)
      .map((a) => a.replace(':', '='));
    assert.deepEqual(nativeAttrs?.sort(), [...SEARCH_ATTRIBUTE_FLAGS].sort());
    // The native cluster runs Debian's PostgreSQL: the compose file uses the same major.
    const debian = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d)) : [];
    if (debian.length) assert.ok(debian.includes(s.postgresql!.image!.split(':')[1]!.split('.')[0]!), `Debian has ${debian}`);
  });

  test('the mTLS override turns on client auth with environment names the server image reads', () => {
    const o = YAML.parse(readFileSync(MTLS_FILE, 'utf8')) as { services: Record<string, Service> };
    const e = env(o.services.temporal!);
    assert.equal(e.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH, 'true');
    assert.ok(e.TEMPORAL_TLS_FRONTEND_CERT && e.TEMPORAL_TLS_CLIENT1_CA_CERT);
    const cli = env(o.services['temporal-admin-tools']!);
    assert.ok(cli.TEMPORAL_TLS_CLIENT_CERT_PATH && cli.TEMPORAL_TLS_SERVER_CA_CERT_PATH);
    // Every variable given to the server is one its config template reads (when the module is here).
    const template = serverTemplate();
    if (template) {
      for (const name of [...Object.keys(e), ...Object.keys(env(load().temporal!))]) {
        assert.ok(new RegExp(`\\.Env\\.${name}\\b`).test(template), `${name} is not read by the server's config template`);
      }
    }
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
