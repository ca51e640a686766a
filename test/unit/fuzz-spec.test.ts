/**
 * Property tests for the spec parser (src/spec/spec.ts parseSpecText / buildTaskSpec). Every
 * property runs 10,000 times. The contract: any input either gives a TaskSpec that is safe to use
 * (valid id, safe-integer priority, finite max runtime >= 1 s, no NUL in the command) or a SpecError
 * (a UserError) whose message starts with the source name. Nothing else may be thrown.
 *
 * Three bugs these properties found are fixed, pinned by test/unit/regressions.test.ts, and the
 * generators include their inputs again: executor names inherited from Object.prototype
 * ("constructor", "__proto__", ...), self-referencing YAML aliases (`&a [*a]`), and max_runtime
 * values whose units overflow ("<400 nines>h").
 *  - Values are never BigInt: YAML (with the parser's default options) and the CLI's flags cannot
 *    produce one, and JSON.stringify(1n) would throw in the error messages.
 */
import { test, describe, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify as yamlStringify } from 'yaml';
import { buildTaskSpec, parseSpecText, type RawTask, type SpecDefaults } from '../../src/spec/spec';
import { SpecError, UserError } from '../../src/common/errors';
import type { TaskSpec } from '../../src/common/types';

const RUNS = { numRuns: 10_000 };
const SOURCE = 'fuzz/specs/S1-fuzz.md';
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DEFAULTS: SpecDefaults = {
  maxRuntimeS: 7200,
  executors: { glm: 'glm-agent --spec {spec}', 'run.v2': "runner {task_id} --file {spec} # 'quoted' $HOME", plain: 'claude -p' },
};
const KEYS = [
  'task_id',
  'project',
  'priority',
  'depends_on',
  'modifies',
  'executor',
  'estimated_minutes',
  'command',
  'max_runtime',
  'node',
] as const;

/** Names that a plain object inherits: executor names that once reached the prototype (fixed). */
const PROTO_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Runs fn and checks the contract; returns whether it produced a spec (to count successes). */
function checkContract(fn: () => TaskSpec, source = SOURCE): boolean {
  let spec: TaskSpec;
  try {
    spec = fn();
  } catch (e) {
    if (!(e instanceof SpecError))
      throw new Error(`threw ${(e as Error)?.name ?? typeof e} instead of SpecError: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    assert.ok(e instanceof UserError);
    assert.ok(e.message.startsWith(`${source}: `), `message does not start with the source: ${e.message}`);
    assert.equal(e.source, source);
    return false;
  }
  assert.equal(typeof spec.id, 'string');
  assert.match(spec.id, ID_RE);
  assert.ok(Number.isSafeInteger(spec.priority), `priority ${spec.priority}`);
  assert.ok(Number.isFinite(spec.maxRuntimeS) && spec.maxRuntimeS >= 1, `maxRuntimeS ${spec.maxRuntimeS}`);
  assert.equal(typeof spec.command, 'string');
  assert.ok(!spec.command.includes('\0'), 'command has a NUL');
  assert.ok(spec.command.trim() !== '', 'command is blank');
  assert.match(spec.project, ID_RE);
  for (const d of spec.dependsOn) assert.match(d, ID_RE);
  assert.ok(!spec.dependsOn.includes(spec.id));
  for (const m of spec.modifies) assert.ok(typeof m === 'string' && m !== '' && !/[\0\n\r]/.test(m));
  assert.ok(spec.node === null || /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(spec.node));
  assert.ok(spec.estimatedMinutes === null || (Number.isFinite(spec.estimatedMinutes) && spec.estimatedMinutes >= 0));
  return true;
}

// ---- value generators ----

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'.split('');
const validId = fc
  .tuple(fc.constantFrom(...ALNUM), fc.string({ unit: fc.constantFrom(...ALNUM, '.', '_', '-'), maxLength: 20 }))
  .map(([a, b]) => a + b);

/** Strings that trip parsers: YAML specials, quotes, NUL, unicode, control characters, huge digit runs. */
const trickyString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\0',
    'a\0b',
    '\n',
    '\r\n',
    'true',
    'false',
    'null',
    '~',
    'yes',
    'no',
    'on',
    '0',
    '-0',
    '007',
    '0x1F',
    '0o17',
    '1e3',
    '1e400',
    '-1e400',
    '.inf',
    '-.inf',
    '.nan',
    'NaN',
    'Infinity',
    '9007199254740993',
    '-9007199254740993',
    '1000000',
    '1000001',
    '-1000001',
    '12345678901234567890123456789012345678',
    '2h',
    '90s',
    '1h30m',
    '0s',
    '1ms',
    '0.0001s',
    '-5m',
    '10d',
    'constructor-like',
    'a,b,,c',
    ' a , b ',
    'S15-ghost-task-cleaner',
    '.hidden',
    '-rf',
    'a/b',
    'x'.repeat(129),
    "it's",
    '"quoted"',
    '$(id)',
    '`id`',
    'é',
    '日本語',
    '🎉',
    '\u202e',
    '\ufeff',
    '\u2028',
    '#',
    ': ',
    '- ',
    '? ',
    '&a',
    '*a',
    '!!str',
    '|',
    '>',
  ),
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({
    unit: fc.constantFrom(
      'a',
      '1',
      ' ',
      ':',
      '-',
      '#',
      "'",
      '"',
      '\\',
      '{',
      '}',
      '[',
      ']',
      ',',
      '&',
      '*',
      '!',
      '|',
      '>',
      '%',
      '@',
      '`',
      '\n',
      '\t',
      '\0',
      '.',
    ),
    maxLength: 20,
  }),
);

const hugeNumber = fc.constantFrom(
  0,
  -0,
  1,
  -1,
  0.5,
  1e-300,
  1e21,
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  Number.MIN_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Infinity,
  -Infinity,
  NaN,
  1_000_000,
  1_000_001,
  -1_000_001,
);

const junk = fc.oneof(
  trickyString,
  hugeNumber,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.anything({
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withDate: true,
    withTypedArray: true,
    withSparseArray: true,
    withNullPrototype: true,
    maxDepth: 1,
  }),
  fc.array(trickyString, { maxLength: 4 }),
  fc.array(validId, { maxLength: 4 }),
);

/** Per-key values: often plausible (so specs do get accepted), often junk. */
const plausibleOrJunk = (plausible: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: junk });
const valueFor: Record<(typeof KEYS)[number], fc.Arbitrary<unknown>> = {
  task_id: plausibleOrJunk(validId),
  project: plausibleOrJunk(validId),
  priority: plausibleOrJunk(
    fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String)),
  ),
  depends_on: plausibleOrJunk(
    fc.oneof(
      fc.array(validId, { maxLength: 3 }),
      fc.array(validId, { maxLength: 3 }).map((a) => a.join(',')),
    ),
  ),
  modifies: plausibleOrJunk(fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 3 })),
  executor: plausibleOrJunk(fc.constantFrom('glm', 'run.v2', 'plain', 'missing', ...PROTO_NAMES)),
  estimated_minutes: plausibleOrJunk(fc.oneof(fc.double({ min: 0, noNaN: true }), fc.nat())),
  command: plausibleOrJunk(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })),
  max_runtime: plausibleOrJunk(
    fc.oneof(
      fc.constantFrom('30m', '2h', '1h30m', '90', 1, 0.001, 3600, `${'9'.repeat(400)}h`, '4000d'),
      fc.double({ min: 0.001, max: 1e9, noNaN: true }),
    ),
  ),
  node: plausibleOrJunk(validId),
};

/** A raw front-matter object: a random subset of the known keys, each with a plausible or junk value. */
const rawTask: fc.Arbitrary<RawTask> = fc.record(valueFor, { requiredKeys: [] }) as fc.Arbitrary<RawTask>;

// ---- front-matter text generators ----

/** YAML fragments for a value position, self-referencing aliases included. */
const yamlValue = fc.oneof(
  trickyString.map((s) => JSON.stringify(s)), // a double-quoted YAML string (JSON strings are YAML)
  trickyString.filter((s) => !s.includes('\n') && !s.includes('\r')),
  fc.constantFrom(
    '',
    '~',
    'null',
    '[]',
    '{}',
    '[a, b]',
    '{a: 1}',
    '&x 5',
    '&y "S1"',
    '*x',
    '*nope',
    '!!str 5',
    '!!int "7"',
    '!!float 1e3',
    '!!binary aGk=',
    '!!set {a, b}',
    '!!omap [a: 1]',
    '!!timestamp 2024-01-01',
    '!!bool yes',
    '!custom x',
    '|\n  line one\n  line two',
    '>-\n  folded\n  text',
    '|-',
    "'single ''quoted'''",
    '"\\0 NUL escape"',
    '"\\x00"',
    '"\\u0000"',
    '"\\U0001F389"',
    '[unterminated',
    '{bad: [}',
    '"unterminated',
    '- a\n  - b',
    '\n  - a\n  - b',
    '\n  nested: map',
    '0b101',
    '0o777',
    '0x_ff',
    '1_000',
    '+12',
    '.5',
    '6.',
    '1e400',
    '-.inf',
    '.NaN',
    '2001-12-14t21:59:43.10-05:00',
    `"${'9'.repeat(38)}"`,
    '9'.repeat(38),
    `-${'9'.repeat(38)}`,
    '? complex key',
    '<<: *x',
    '@reserved',
    '`reserved',
    '%directive',
    '#comment only',
    '&c [*c]',
    '&m {k: *m}',
    '&n [a, [b, *n]]',
    `${'9'.repeat(400)}h`,
    `"${'9'.repeat(400)}h"`,
  ),
  fc.array(validId, { maxLength: 3 }).map((a) => `[${a.join(', ')}]`),
  fc.array(validId, { minLength: 1, maxLength: 3 }).map((a) => `\n${a.map((x) => `  - ${x}`).join('\n')}`),
  fc.integer().map(String),
  fc.double().map(String),
);

const keyName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KEYS) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('depend_on', 'Task_ID', '"task_id"', '? task_id', 'task_id ', '<<', '__proto__', 'constructor', ''),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** A front-matter line; task_id and command get plausible values often enough that many specs parse. */
const fmLine = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(keyName, yamlValue).map(([k, v]) => `${k}: ${v}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '---',
      '...',
      '%YAML 1.1',
      '%YAML 1.2',
      '%TAG ! tag:x,2024:',
      '# comment',
      '',
      '\t',
      '  indented: x',
      '- list item',
      '&a',
      'key: value: more',
      '"a": 1',
      '{a: 1}',
    ),
  },
);

const fmText = fc
  .record({
    bom: fc.boolean(),
    open: fc.oneof(
      { weight: 5, arbitrary: fc.constant('---') },
      { weight: 1, arbitrary: fc.constantFrom('---  ', '---\t', '--- ', '----', ' ---') },
    ),
    id: fc.oneof(
      validId.map((i) => `task_id: ${i}`),
      validId.map((i) => `task_id: ${JSON.stringify(i)}`),
      fc.constant(''),
    ),
    command: fc.oneof(
      fc.constantFrom(
        'command: "echo hi"',
        'command: true',
        'command: ""',
        'command: "a\\0b"',
        'executor: glm',
        'executor: run.v2',
        'executor: missing',
        'executor: constructor',
        'executor: __proto__',
        '',
      ),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map((s) => `command: ${JSON.stringify(s)}`),
    ),
    lines: fc.array(fmLine, { maxLength: 4 }),
    eol: fc.oneof({ weight: 5, arbitrary: fc.constant('\n') }, { weight: 1, arbitrary: fc.constantFrom('\r\n', '\r') }),
    close: fc.oneof(
      { weight: 5, arbitrary: fc.constant('---') },
      { weight: 1, arbitrary: fc.constantFrom('--- ', '---\t', '...', '', '----') },
    ),
    body: fc.oneof(fc.constant(''), fc.string({ unit: 'binary', maxLength: 60 }), fc.constant('\0\0\0')),
  })
  .map((r) => {
    const lines = [r.id, r.command, ...r.lines].filter((l) => l !== '');
    return `${r.bom ? '\ufeff' : ''}${r.open}${r.eol}${lines.join(r.eol)}${r.eol}${r.close}${r.eol}${r.body}`;
  });

describe('fuzz: spec parser', () => {
  // The yaml library reports unresolved tags and odd anchors through process.emitWarning; thousands
  // of them would bury the test output. Only this test process is affected.
  before(() => mock.method(process, 'emitWarning', () => undefined));
  after(() => mock.restoreAll());

  test('parseSpecText on arbitrary strings returns a safe spec or throws a SpecError naming the source', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'grapheme' }),
          fc.string({ unit: 'binary' }).map((s) => `---\n${s}\n---\n`),
        ),
        (text) => {
          checkContract(() => parseSpecText(text, SOURCE, DEFAULTS));
        },
      ),
      RUNS,
    );
  });

  test('parseSpecText on generated front matter full of YAML specials, unicode, NUL and huge numbers returns a safe spec or a SpecError', () => {
    let ok = 0;
    fc.assert(
      fc.property(fmText, (text) => {
        if (checkContract(() => parseSpecText(text, SOURCE, DEFAULTS))) ok++;
      }),
      RUNS,
    );
    assert.ok(ok > 200, `only ${ok} generated specs parsed: the generator no longer reaches the success path`);
  });

  test('parseSpecText on arbitrary front-matter objects written as YAML returns a safe spec or a SpecError', () => {
    let ok = 0;
    const asYaml = fc.oneof({ weight: 3, arbitrary: rawTask }, { weight: 1, arbitrary: fc.object({ maxDepth: 1 }) }).chain((o) => {
      let y: string;
      try {
        y = yamlStringify(o);
      } catch {
        y = 'task_id: [unserialisable';
      }
      return fc.constant(`---\n${y.replace(/\n$/, '')}\n---\n# body\n`);
    });
    fc.assert(
      fc.property(asYaml, (text) => {
        if (checkContract(() => parseSpecText(text, SOURCE, DEFAULTS))) ok++;
      }),
      RUNS,
    );
    assert.ok(ok > 200, `only ${ok} specs parsed`);
  });

  test('buildTaskSpec on arbitrary raw front-matter objects (fc.anything values) returns a safe spec or a SpecError', () => {
    let ok = 0;
    fc.assert(
      fc.property(rawTask, fc.option(fc.string({ unit: 'binary', maxLength: 50 })), (raw, body) => {
        if (checkContract(() => buildTaskSpec(raw, body, DEFAULTS, SOURCE))) ok++;
      }),
      RUNS,
    );
    assert.ok(ok > 500, `only ${ok} raw tasks were accepted`);
  });

  test('buildTaskSpec on fc.object() front matter and arbitrary source names keeps the source as the message prefix', () => {
    const raw = fc
      .oneof(fc.object({ maxDepth: 2, values: [fc.anything({ maxDepth: 1 }), junk] }), fc.dictionary(fc.constantFrom(...KEYS), junk))
      .map((o) => o as RawTask);
    const source = fc.oneof(fc.constantFrom('--id x', 'specs/a.md', ''), fc.string({ unit: 'binary', maxLength: 20 }));
    fc.assert(
      fc.property(raw, source, (r, src) => {
        checkContract(() => buildTaskSpec(r, null, DEFAULTS, src), src);
      }),
      RUNS,
    );
  });

  test('a command given in the front matter is kept byte for byte when the spec is accepted', () => {
    const cmd = fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).filter((s) => s.trim() !== '' && !s.includes('\0'));
    fc.assert(
      fc.property(validId, cmd, (id, command) => {
        const spec = parseSpecText(`---\ntask_id: ${JSON.stringify(id)}\ncommand: ${JSON.stringify(command)}\n---\n`, SOURCE, DEFAULTS);
        assert.equal(spec.id, id);
        assert.equal(spec.command, command);
        assert.equal(spec.executor, null);
      }),
      RUNS,
    );
  });
});
