import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CONFIG_DEFAULTS, compileConfig, loadConfig } from '../../src/config/config';
import { ConfigError, UserError } from '../../src/common/errors';

const NO_ENV = {};

/** Passes when compileConfig throws a ConfigError whose key and message name `key`. */
function refusesNaming(key: string): (e: unknown) => boolean {
  return (e) => e instanceof ConfigError && e.key === key && e.message.startsWith(`config: ${key}: `);
}

describe('compileConfig', () => {
  test('fills every default from an empty object', () => {
    assert.deepEqual(compileConfig({}, NO_ENV), CONFIG_DEFAULTS);
  });

  test('treats undefined and null as an empty config', () => {
    assert.deepEqual(compileConfig(undefined, NO_ENV), CONFIG_DEFAULTS);
    assert.deepEqual(compileConfig(null, NO_ENV), CONFIG_DEFAULTS);
  });

  test('has the documented default values', () => {
    const c = compileConfig({}, NO_ENV);
    assert.equal(c.enabled, true);
    assert.equal(c.threshold_hours, 2);
    assert.equal(c.auto_kill, true);
    assert.equal(c.ghost_action, 'fail');
    assert.equal(c.webhook_url, null);
    assert.equal(c.lease_s, 30);
    assert.equal(c.stale_s, 900);
    assert.equal(c.max_requeue, 3);
    assert.equal(c.reap_batch, 200);
    assert.equal(c.max_runtime, 7200);
    assert.equal(c.factory, null);
    assert.deepEqual(c.executors, {});
  });

  test('does not share the executors object with the defaults', () => {
    const c = compileConfig({}, NO_ENV);
    c.executors.x = 'y';
    assert.deepEqual(CONFIG_DEFAULTS.executors, {});
  });

  test('reads seed keys, durations and the check_interval_cycles alias', () => {
    const c = compileConfig(
      {
        threshold_hours: 4,
        check_interval_cycles: '5m',
        auto_kill: false,
        ghost_action: 'requeue',
        webhook_url: 'https://hooks.example/x',
        max_runtime: '2h30m',
        executors: { glm: 'run-glm {spec}' },
      },
      NO_ENV,
    );
    assert.equal(c.threshold_hours, 4);
    assert.equal(c.check_interval, 300);
    assert.equal(c.auto_kill, false);
    assert.equal(c.ghost_action, 'requeue');
    assert.equal(c.webhook_url, 'https://hooks.example/x');
    assert.equal(c.max_runtime, 9000);
    assert.deepEqual(c.executors, { glm: 'run-glm {spec}' });
  });

  test('skips $schema and comment keys', () => {
    assert.deepEqual(compileConfig({ $schema: './schema.json', comment: 'hi', '//': 'x' }, NO_ENV), CONFIG_DEFAULTS);
  });

  test('fills factory defaults', () => {
    assert.deepEqual(compileConfig({ factory: { command: 'make-specs' } }, NO_ENV).factory, {
      command: 'make-specs',
      min_pending: 1,
      interval: 60,
    });
  });

  test('raises heartbeat_record_interval to a third of the lease', () => {
    assert.equal(compileConfig({ lease_s: 300, heartbeat_record_interval: 10 }, NO_ENV).heartbeat_record_interval, 100);
  });

  test('refuses a top level that is not an object', () => {
    assert.throws(() => compileConfig([], NO_ENV), refusesNaming('(top level)'));
    assert.throws(() => compileConfig('x', NO_ENV), refusesNaming('(top level)'));
  });

  test('refuses an unknown key and names it', () => {
    assert.throws(() => compileConfig({ thresold_hours: 2 }, NO_ENV), refusesNaming('thresold_hours'));
  });

  test('max_cached_workflows: accepted from 10, refused below or as a non-integer', () => {
    assert.equal(compileConfig({ max_cached_workflows: 10 }, NO_ENV).max_cached_workflows, 10);
    assert.throws(() => compileConfig({ max_cached_workflows: 5 }, NO_ENV), refusesNaming('max_cached_workflows'));
    assert.throws(() => compileConfig({ max_cached_workflows: 12.5 }, NO_ENV), refusesNaming('max_cached_workflows'));
  });

  test('refuses threshold_hours: -1', () => {
    assert.throws(() => compileConfig({ threshold_hours: -1 }, NO_ENV), refusesNaming('threshold_hours'));
  });

  test('refuses threshold_hours given as a string or zero', () => {
    assert.throws(() => compileConfig({ threshold_hours: '2' }, NO_ENV), refusesNaming('threshold_hours'));
    assert.throws(() => compileConfig({ threshold_hours: 0 }, NO_ENV), refusesNaming('threshold_hours'));
  });

  test('refuses auto_kill: "yes"', () => {
    assert.throws(() => compileConfig({ auto_kill: 'yes' }, NO_ENV), refusesNaming('auto_kill'));
  });

  test('refuses enabled: 1 and notify_on_clean: "true"', () => {
    assert.throws(() => compileConfig({ enabled: 1 }, NO_ENV), refusesNaming('enabled'));
    assert.throws(() => compileConfig({ notify_on_clean: 'true' }, NO_ENV), refusesNaming('notify_on_clean'));
  });

  test('refuses ghost_action: "delete"', () => {
    assert.throws(() => compileConfig({ ghost_action: 'delete' }, NO_ENV), refusesNaming('ghost_action'));
  });

  test('refuses webhook_url: "ftp://x" and URLs with spaces', () => {
    assert.throws(() => compileConfig({ webhook_url: 'ftp://x' }, NO_ENV), refusesNaming('webhook_url'));
    assert.throws(() => compileConfig({ webhook_url: 'http://a b' }, NO_ENV), refusesNaming('webhook_url'));
    assert.throws(() => compileConfig({ webhook_url: 42 }, NO_ENV), refusesNaming('webhook_url'));
  });

  test('refuses max_requeue and reap_batch that are not positive integers', () => {
    for (const v of [0, -1, 1.5, '3']) {
      assert.throws(() => compileConfig({ max_requeue: v }, NO_ENV), refusesNaming('max_requeue'), String(v));
      assert.throws(() => compileConfig({ reap_batch: v }, NO_ENV), refusesNaming('reap_batch'), String(v));
    }
  });

  test('refuses a bad duration and names the key', () => {
    assert.throws(() => compileConfig({ lease_s: 'soon' }, NO_ENV), refusesNaming('lease_s'));
    assert.throws(() => compileConfig({ kill_grace: 0 }, NO_ENV), refusesNaming('kill_grace'));
    assert.throws(() => compileConfig({ check_interval_cycles: -5 }, NO_ENV), refusesNaming('check_interval_cycles'));
  });

  test('refuses executors that are not an object', () => {
    assert.throws(() => compileConfig({ executors: ['glm'] }, NO_ENV), refusesNaming('executors'));
    assert.throws(() => compileConfig({ executors: 'glm' }, NO_ENV), refusesNaming('executors'));
  });

  test('refuses an executor with a bad name and names it', () => {
    assert.throws(() => compileConfig({ executors: { 'bad name': 'x' } }, NO_ENV), refusesNaming('executors.bad name'));
    assert.throws(() => compileConfig({ executors: { '-x': 'x' } }, NO_ENV), refusesNaming('executors.-x'));
  });

  test('refuses an executor whose template is empty or not a string', () => {
    assert.throws(() => compileConfig({ executors: { glm: '' } }, NO_ENV), refusesNaming('executors.glm'));
    assert.throws(() => compileConfig({ executors: { glm: 42 } }, NO_ENV), refusesNaming('executors.glm'));
  });

  test('refuses an unknown factory subkey and names it', () => {
    assert.throws(() => compileConfig({ factory: { command: 'x', every: 5 } }, NO_ENV), refusesNaming('factory.every'));
  });

  test('refuses a factory without a command, with a bad min_pending or a bad interval', () => {
    assert.throws(() => compileConfig({ factory: {} }, NO_ENV), refusesNaming('factory.command'));
    assert.throws(() => compileConfig({ factory: { command: 'x', min_pending: -1 } }, NO_ENV), refusesNaming('factory.min_pending'));
    assert.throws(() => compileConfig({ factory: { command: 'x', interval: 'never' } }, NO_ENV), refusesNaming('factory.interval'));
    assert.throws(() => compileConfig({ factory: [] }, NO_ENV), refusesNaming('factory'));
  });
});

describe('environment overrides', () => {
  test('TASK_LEASE_S, TASK_STALE_S, TASK_MAX_REQUEUE and TASK_REAP_BATCH override the file values', () => {
    const c = compileConfig(
      { lease_s: 10, stale_s: 100, max_requeue: 2, reap_batch: 20 },
      { TASK_LEASE_S: '45', TASK_STALE_S: '20m', TASK_MAX_REQUEUE: '5', TASK_REAP_BATCH: ' 50 ' },
    );
    assert.equal(c.lease_s, 45);
    assert.equal(c.stale_s, 1200);
    assert.equal(c.max_requeue, 5);
    assert.equal(c.reap_batch, 50);
  });

  test('ignores empty environment values', () => {
    const c = compileConfig({ lease_s: 10 }, { TASK_LEASE_S: '', TASK_MAX_REQUEUE: '' });
    assert.equal(c.lease_s, 10);
    assert.equal(c.max_requeue, 3);
  });

  test('refuses a bad TASK_LEASE_S and names the variable', () => {
    for (const v of ['-1', 'soon', '0']) assert.throws(() => compileConfig({}, { TASK_LEASE_S: v }), refusesNaming('TASK_LEASE_S'), v);
  });

  test('refuses a bad TASK_STALE_S and names the variable', () => {
    assert.throws(() => compileConfig({}, { TASK_STALE_S: '15 minutes' }), refusesNaming('TASK_STALE_S'));
  });

  test('refuses a bad TASK_MAX_REQUEUE and names the variable', () => {
    for (const v of ['abc', '0', '-2', '1.5', '3x'])
      assert.throws(() => compileConfig({}, { TASK_MAX_REQUEUE: v }), refusesNaming('TASK_MAX_REQUEUE'), v);
  });

  test('refuses a bad TASK_REAP_BATCH and names the variable', () => {
    for (const v of ['lots', '0', '1e3'])
      assert.throws(() => compileConfig({}, { TASK_REAP_BATCH: v }), refusesNaming('TASK_REAP_BATCH'), v);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dispatch-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads and validates an explicit file', () => {
    const p = path.join(dir, 'ok.json');
    writeFileSync(p, JSON.stringify({ threshold_hours: 3, executors: { glm: 'run-glm {spec}' } }));
    const c = loadConfig(p, NO_ENV);
    assert.equal(c.threshold_hours, 3);
    assert.deepEqual(c.executors, { glm: 'run-glm {spec}' });
  });

  test('applies environment overrides to a file', () => {
    const p = path.join(dir, 'env.json');
    writeFileSync(p, JSON.stringify({ lease_s: 10 }));
    assert.equal(loadConfig(p, { TASK_LEASE_S: '60' }).lease_s, 60);
  });

  test('refuses a missing explicit path and names it', () => {
    const p = path.join(dir, 'missing.json');
    assert.throws(
      () => loadConfig(p, NO_ENV),
      (e: unknown) => e instanceof UserError && e.message === `config file ${p} not found`,
    );
  });

  test('refuses invalid JSON and names the file', () => {
    const p = path.join(dir, 'bad.json');
    writeFileSync(p, '{ "threshold_hours": 2, }');
    assert.throws(
      () => loadConfig(p, NO_ENV),
      (e: unknown) => e instanceof UserError && e.message.startsWith(`config file ${p} is not valid JSON: `),
    );
  });

  test('refuses a bad value in the file with a ConfigError naming the key', () => {
    const p = path.join(dir, 'badval.json');
    writeFileSync(p, JSON.stringify({ ghost_action: 'delete' }));
    assert.throws(() => loadConfig(p, NO_ENV), refusesNaming('ghost_action'));
  });

  test('uses defaults when no path is given and dispatch.config.json is absent', () => {
    const cwd = process.cwd();
    const empty = mkdtempSync(path.join(dir, 'cwd-'));
    process.chdir(empty);
    try {
      assert.deepEqual(loadConfig(undefined, NO_ENV), CONFIG_DEFAULTS);
    } finally {
      process.chdir(cwd);
    }
  });

  test('reads dispatch.config.json from the working directory when no path is given', () => {
    const cwd = process.cwd();
    const here = mkdtempSync(path.join(dir, 'cwd-'));
    writeFileSync(path.join(here, 'dispatch.config.json'), JSON.stringify({ reap_batch: 7 }));
    process.chdir(here);
    try {
      assert.equal(loadConfig(undefined, NO_ENV).reap_batch, 7);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('bounded history settings', () => {
  const NONE = {} as NodeJS.ProcessEnv;
  test('queue_poll_interval defaults to 5 minutes and history_limit to 2000 events', () => {
    const c = compileConfig({}, NONE);
    assert.equal(c.queue_poll_interval, 300);
    assert.equal(c.history_limit, 2000);
    assert.equal(compileConfig({ queue_poll_interval: '90s' }, NONE).queue_poll_interval, 90);
  });

  test('a history_limit outside 30..10000 is refused with the key name', () => {
    for (const v of [10, 20000])
      assert.throws(() => compileConfig({ history_limit: v }, NONE), /config: history_limit: must be between 30 and 10000/);
    assert.throws(() => compileConfig({ queue_poll_interval: 'soon' }, NONE), /config: queue_poll_interval/);
  });
});
