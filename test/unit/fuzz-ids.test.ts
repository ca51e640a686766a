/**
 * Property tests for task id validation (src/common/validate.ts). Every property runs 10,000 times.
 * The oracle below is written by hand, character by character, so it does not share the regex it
 * checks (a `$` that accepts a trailing newline, or a `\w` that lets unicode in, would show up).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TASK_ID_RE, assertTaskId, isValidTaskId } from '../../src/common/validate';
import { InvalidTaskIdError, UserError } from '../../src/common/errors';

const RUNS = { numRuns: 10_000 };
const DOCUMENTED = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ID_CHARS = `${ALNUM}._-`;

/** Independent oracle: 1..128 characters, the first ASCII alphanumeric, the rest alphanumeric or . _ - */
function oracle(s: string): boolean {
  if (s.length < 1 || s.length > 128) return false;
  for (let i = 0; i < s.length; i++) {
    const allowed = i === 0 ? ALNUM : ID_CHARS;
    if (!allowed.includes(s[i]!)) return false;
  }
  return true;
}

/** Strings close to ids: the id alphabet plus the characters that break ids, of lengths around 128. */
const nearIdChar = fc.constantFrom(
  ...ID_CHARS.split(''),
  '/',
  ' ',
  '\n',
  '\r',
  '\t',
  '\0',
  '\u00e9',
  '\u0661',
  '\uff14',
  '$',
  "'",
  '..',
  '\u212a',
);
const nearId = fc.oneof(
  fc.string({ unit: nearIdChar, maxLength: 8 }),
  fc.string({ unit: nearIdChar, minLength: 120, maxLength: 135 }),
  fc
    .tuple(
      fc.constantFrom(...ALNUM.split('')),
      fc.string({ unit: fc.constantFrom(...ID_CHARS.split('')), maxLength: 130 }),
      fc.constantFrom('', '\n', '\r\n', ' ', '\0', '/x'),
    )
    .map(([a, b, c]) => a + b + c),
);

const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary-ascii' }),
  fc.string({ unit: 'grapheme' }),
  nearId,
);

/** Valid ids generated from the allowed alphabet: one alphanumeric, then 0..127 of alphanumeric . _ - */
const validId = fc
  .tuple(fc.constantFrom(...ALNUM.split('')), fc.string({ unit: fc.constantFrom(...ID_CHARS.split('')), maxLength: 127 }))
  .map(([first, rest]) => first + rest);

describe('fuzz: task id validation', () => {
  test('the exported pattern is exactly the documented one', () => {
    assert.equal(TASK_ID_RE.source, DOCUMENTED.source);
    assert.equal(TASK_ID_RE.flags, DOCUMENTED.flags);
  });

  test('isValidTaskId agrees with the documented regex and a hand-written oracle for arbitrary strings', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const got = isValidTaskId(s);
        assert.equal(got, DOCUMENTED.test(s), JSON.stringify(s));
        assert.equal(got, oracle(s), JSON.stringify(s));
      }),
      RUNS,
    );
  });

  test('isValidTaskId is false for every value that is not a string', () => {
    fc.assert(
      fc.property(
        fc
          .anything({
            withBoxedValues: true,
            withMap: true,
            withSet: true,
            withDate: true,
            withTypedArray: true,
            withBigInt: true,
            withNullPrototype: true,
          })
          .filter((v) => typeof v !== 'string'),
        (v) => {
          assert.equal(isValidTaskId(v), false);
        },
      ),
      RUNS,
    );
  });

  test('assertTaskId throws InvalidTaskIdError naming the value for every invalid id', () => {
    const invalid = fc.oneof(
      anyString.filter((s) => !oracle(s)),
      fc
        .anything({ withBoxedValues: true, withMap: true, withSet: true, withDate: true, withNullPrototype: true })
        .filter((v) => typeof v !== 'string'),
    );
    fc.assert(
      fc.property(invalid, (v) => {
        let thrown: unknown = null;
        try {
          assertTaskId(v);
        } catch (e) {
          thrown = e;
        }
        assert.ok(thrown instanceof InvalidTaskIdError, `no InvalidTaskIdError for ${String(JSON.stringify(v))}`);
        assert.ok(thrown instanceof UserError);
        assert.equal(thrown.taskId, v);
        assert.ok(thrown.message.startsWith('invalid task id '));
        assert.ok(thrown.message.endsWith('ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'));
      }),
      RUNS,
    );
  });

  test('every id generated from the allowed alphabet is accepted and returned unchanged', () => {
    fc.assert(
      fc.property(validId, (id) => {
        assert.equal(oracle(id), true);
        assert.equal(isValidTaskId(id), true, id);
        assert.equal(assertTaskId(id), id);
      }),
      RUNS,
    );
  });

  test('a valid id with any one character appended, prepended or substituted from outside the alphabet is refused', () => {
    const outside = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !ID_CHARS.includes(c));
    fc.assert(
      fc.property(validId, outside, fc.nat(), fc.constantFrom('append', 'prepend', 'substitute'), (id, c, at, how) => {
        const i = at % id.length;
        const bad = how === 'append' ? id + c : how === 'prepend' ? c + id : id.slice(0, i) + c + id.slice(i + 1);
        assert.equal(isValidTaskId(bad), false, JSON.stringify(bad));
        assert.throws(() => assertTaskId(bad), InvalidTaskIdError);
      }),
      RUNS,
    );
  });
});
