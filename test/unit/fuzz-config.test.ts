/**
 * Property tests for the config loader (src/config/config.ts compileConfig). Every property runs
 * 10,000 times. The contract: arbitrary JSON plus arbitrary TASK_* environment values give either a
 * valid DispatchConfig or a ConfigError whose message is `config: <key>: ...` for a key (or
 * variable) that was actually given, or stale_s for the cross-key rule.
 *
 * Two bugs these properties found are fixed, pinned by test/unit/regressions.test.ts, and the
 * generators include their inputs again: duration strings whose units overflow ("<400 nines>s",
 * once accepted as Infinity) and the stale_s rule, which is now checked on the final values (it
 * used to be checked before heartbeat_record_interval was raised to lease_s / 3).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONFIG_DEFAULTS, compileConfig, type DispatchConfig } from '../../src/config/config';
import { ConfigError, UserError } from '../../src/common/errors';

const RUNS = { numRuns: 10_000 };
const CONFIG_KEYS = Object.keys(CONFIG_DEFAULTS) as (keyof DispatchConfig)[];
const ENV_NAMES = ['TASK_LEASE_S', 'TASK_STALE_S', 'TASK_MAX_REQUEUE', 'TASK_REAP_BATCH'] as const;
const DURATION_KEYS = [
  'check_interval',
  'lease_s',
  'stale_s',
  'max_runtime',
  'kill_grace',
  'heartbeat_record_interval',
  'probe_interval',
  'guardian_interval',
  'retention',
] as const;

const posFinite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** Every field of an accepted config is usable. */
function assertValidConfig(c: DispatchConfig): void {
  assert.deepEqual(Object.keys(c).sort(), [...CONFIG_KEYS].sort(), 'exactly the known keys');
  for (const k of ['enabled', 'auto_kill', 'notify_on_clean'] as const) assert.equal(typeof c[k], 'boolean', k);
  assert.ok(posFinite(c.threshold_hours), `threshold_hours ${c.threshold_hours}`);
  for (const k of DURATION_KEYS) assert.ok(posFinite(c[k]), `${k} ${c[k]}`);
  for (const k of ['max_requeue', 'reap_batch'] as const) assert.ok(Number.isSafeInteger(c[k]) && c[k] >= 1, `${k} ${c[k]}`);
  assert.ok(c.ghost_action === 'fail' || c.ghost_action === 'requeue');
  assert.ok(c.webhook_url === null || (typeof c.webhook_url === 'string' && /^https?:\/\/\S+$/.test(c.webhook_url)));
  assert.ok(typeof c.executors === 'object' && c.executors !== null && !Array.isArray(c.executors));
  for (const [name, tpl] of Object.entries(c.executors)) {
    assert.match(name, /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
    assert.ok(typeof tpl === 'string' && tpl.trim() !== '' && !tpl.includes('\0'), `executor ${name}`);
  }
  if (c.factory !== null) {
    assert.deepEqual(Object.keys(c.factory).sort(), ['command', 'interval', 'min_pending']);
    assert.ok(typeof c.factory.command === 'string' && c.factory.command.trim() !== '');
    assert.ok(Number.isSafeInteger(c.factory.min_pending) && c.factory.min_pending >= 0);
    assert.ok(posFinite(c.factory.interval));
  }
  // The documented rule, on the final values.
  assert.ok(c.stale_s > c.heartbeat_record_interval + c.lease_s, `stale_s ${c.stale_s} <= ${c.heartbeat_record_interval} + ${c.lease_s}`);
  assert.ok(c.heartbeat_record_interval >= c.lease_s / 3);
  assert.notEqual(c.executors, CONFIG_DEFAULTS.executors, 'executors must not be the shared defaults object');
}

/** Keys (or variables) a ConfigError may name for this input. */
function allowedErrorKeys(raw: unknown, env: Record<string, string | undefined>): Set<string> {
  const keys = new Set<string>(['stale_s', '(top level)']);
  for (const n of ENV_NAMES) if (env[n] !== undefined && env[n] !== '') keys.add(n);
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw)) {
      keys.add(k);
      if ((k === 'executors' || k === 'factory') && v && typeof v === 'object') {
        for (const sub of Object.keys(v)) keys.add(`${k}.${sub}`);
        if (k === 'factory') for (const sub of ['command', 'min_pending', 'interval']) keys.add(`factory.${sub}`);
      }
    }
  }
  return keys;
}

function checkContract(raw: unknown, env: Record<string, string | undefined>): boolean {
  let c: DispatchConfig;
  try {
    c = compileConfig(raw, env as NodeJS.ProcessEnv);
  } catch (e) {
    if (!(e instanceof ConfigError))
      throw new Error(`threw ${(e as Error)?.name} instead of ConfigError: ${(e as Error)?.message}`, { cause: e });
    assert.ok(e instanceof UserError);
    assert.ok(e.message.startsWith(`config: ${e.key}: `), e.message);
    assert.ok(allowedErrorKeys(raw, env).has(e.key), `error names ${JSON.stringify(e.key)}, which was not given: ${e.message}`);
    return false;
  }
  assertValidConfig(c);
  return true;
}

// ---- generators ----

const durationString = fc.oneof(
  fc.constantFrom(
    '90s',
    '15m',
    '2h',
    '1h30m',
    '7d',
    '0s',
    '0',
    '',
    ' ',
    '-5',
    '1e3',
    '2H',
    '1 h',
    '1h ',
    ' 1h',
    '500ms',
    '0.5s',
    '1.5h',
    'h',
    '10x',
    '1h1h',
    '999999999999999999999999999999h',
    '0.0000001ms',
    `${'9'.repeat(400)}s`,
    `${'9'.repeat(400)}h`,
    `1h${'9'.repeat(320)}m`,
    'Infinity',
    '4000d',
  ),
  fc.tuple(fc.nat({ max: 10_000 }), fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'w', 'S')).map(([n, u]) => `${n}${u}`),
  fc.string({ unit: fc.constantFrom('0', '1', '5', '9', '.', 'm', 's', 'h', 'd', ' ', '-'), maxLength: 12 }),
);
const number = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.5,
    2,
    3,
    30,
    60,
    900,
    1e-9,
    1e21,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    2 ** 53 + 2,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }), // JSON has no NaN or Infinity
  fc.integer({ min: -100, max: 100_000 }),
);
const scalar = fc.oneof(
  number,
  durationString,
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('fail', 'requeue', 'delete', 'FAIL', 'http://hooks.example/x', 'https://x', 'ftp://x', 'http://a b', 'http://', 'true'),
  fc.string({ maxLength: 10 }),
);
const jsonAny = fc.jsonValue({ maxDepth: 3 });

const executorsValue = fc.oneof(
  fc.dictionary(
    fc.oneof(
      fc.constantFrom('glm', 'a.b', '_x', '-x', '', 'x y', 'constructor', '__proto__', 'toString', 'é'),
      fc.string({ maxLength: 8 }),
    ),
    fc.oneof(fc.constantFrom('glm-agent {spec}', '', '  ', 'a\0b', 'run {task_id}'), jsonAny),
    { maxKeys: 4 },
  ),
  jsonAny,
);
const factoryValue = fc.oneof(
  fc.record(
    {
      command: fc.oneof(fc.constantFrom('ls specs/{project}/*.md', '', ' '), jsonAny),
      min_pending: fc.oneof(number, jsonAny),
      interval: fc.oneof(durationString, number, jsonAny),
      extra: jsonAny,
    },
    { requiredKeys: [] },
  ),
  fc.constant(null),
  jsonAny,
);

const keyName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...CONFIG_KEYS) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'check_interval_cycles',
      '$schema',
      '$comment',
      '//',
      'comment',
      'bogus',
      'Lease_S',
      'lease_s ',
      '',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);

/** A config object: a few keys with plausible-or-junk values, the way a hand-edited file goes wrong. */
const configObject = fc
  .array(fc.tuple(keyName, fc.integer({ min: 0, max: 9 }), scalar, jsonAny, executorsValue, factoryValue), { maxLength: 5 })
  .map((pairs) => {
    // JSON.parse makes own properties for every key, __proto__ included.
    const o: Record<string, unknown> = JSON.parse('{}');
    for (const [k, pick, s, j, ex, fa] of pairs) {
      const v = k === 'executors' ? (pick < 7 ? ex : j) : k === 'factory' ? (pick < 7 ? fa : j) : pick < 7 ? s : j;
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return o;
  });

const envValue = fc.oneof(
  fc.constantFrom(
    '30',
    '900',
    '3',
    '200',
    '',
    ' ',
    '0',
    '-1',
    '1e3',
    '30s',
    '15m',
    '2h',
    ' 30 ',
    '30\n',
    '0x10',
    '1.5',
    'abc',
    '9007199254740993',
    '00042',
    '\u0663',
  ),
  fc.nat({ max: 100_000 }).map(String),
  fc.string({ maxLength: 8 }),
);
const envMap = fc.record(
  { TASK_LEASE_S: envValue, TASK_STALE_S: envValue, TASK_MAX_REQUEUE: envValue, TASK_REAP_BATCH: envValue, UNRELATED: fc.string() },
  { requiredKeys: [] },
);

describe('fuzz: config loader', () => {
  test('compileConfig on arbitrary JSON values gives a valid config or a ConfigError naming a given key', () => {
    fc.assert(
      fc.property(fc.oneof(jsonAny, fc.constant(undefined), fc.constant(null)), (raw) => {
        checkContract(raw, {});
      }),
      RUNS,
    );
  });

  test('compileConfig on config objects with junk values gives a valid config or a ConfigError naming the offending key', () => {
    let ok = 0;
    fc.assert(
      fc.property(configObject, (raw) => {
        if (checkContract(raw, {})) ok++;
      }),
      RUNS,
    );
    assert.ok(ok > 500, `only ${ok} configs were accepted`);
  });

  test('compileConfig with arbitrary TASK_LEASE_S, TASK_STALE_S, TASK_MAX_REQUEUE and TASK_REAP_BATCH gives a valid config or a ConfigError naming the variable', () => {
    let ok = 0;
    fc.assert(
      fc.property(fc.oneof(fc.constant({}), configObject), envMap, (raw, env) => {
        if (checkContract(raw, env)) ok++;
      }),
      RUNS,
    );
    assert.ok(ok > 200, `only ${ok} environments were accepted`);
  });

  test('a bad value for one environment variable is refused with exactly that variable named', () => {
    const bad = fc.oneof(
      fc.constantFrom('0', '-1', 'abc', '1.5x', '0s', ' - ', 'NaN', 'Infinity'),
      fc.string({ minLength: 1, maxLength: 6 }).filter((s) => !/^\s*[0-9]/.test(s) && s.trim() !== ''),
    );
    fc.assert(
      fc.property(fc.constantFrom(...ENV_NAMES), bad, (name, value) => {
        let err: unknown = null;
        try {
          compileConfig({}, { [name]: value });
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof ConfigError, `${name}=${JSON.stringify(value)} was accepted`);
        // TASK_STALE_S below lease + record interval is refused by the cross-key rule, which names stale_s.
        assert.ok(err.key === name || (name === 'TASK_STALE_S' && err.key === 'stale_s'), err.message);
      }),
      RUNS,
    );
  });

  test('environment overrides win over the file when they are valid', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 300 }),
        (requeue, batch, lease) => {
          const c = compileConfig(
            { max_requeue: 7, reap_batch: 9, lease_s: 45 },
            { TASK_MAX_REQUEUE: String(requeue), TASK_REAP_BATCH: ` ${batch} `, TASK_LEASE_S: `${lease}s` },
          );
          assert.equal(c.max_requeue, requeue);
          assert.equal(c.reap_batch, batch);
          assert.equal(c.lease_s, lease);
        },
      ),
      RUNS,
    );
  });
});
