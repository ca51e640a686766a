import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TASK_ID_RE, assertSafePath, assertTaskId, isBootId, isStartTime, isValidTaskId, parsePid } from '../../src/common/validate';
import { InvalidTaskIdError, UserError } from '../../src/common/errors';

describe('task ids', () => {
  test('accepts plain ids, dots, dashes and underscores after the first character', () => {
    for (const id of ['a', 'Z', '7', 'S15-ghost-task-cleaner', 'DI09_consolidate.daemons', 'a..b', 'x-', 'x.']) {
      assert.equal(isValidTaskId(id), true, id);
    }
  });

  test('accepts an id of exactly 128 characters', () => {
    assert.equal(isValidTaskId('a'.repeat(128)), true);
  });

  test('refuses an id of 129 characters', () => {
    assert.equal(isValidTaskId('a'.repeat(129)), false);
  });

  test('refuses a leading dot, dash or underscore', () => {
    for (const id of ['.hidden', '..', '-rf', '_x']) assert.equal(isValidTaskId(id), false, id);
  });

  test('refuses a task id with a slash', () => {
    for (const id of ['a/b', '../etc', '/abs', 'a\\b']) assert.equal(isValidTaskId(id), false, id);
  });

  test('refuses unicode letters and digits', () => {
    for (const id of ['café', 'задача', '任务', 'a\u00a0b', '４２']) assert.equal(isValidTaskId(id), false, id);
  });

  test('refuses an id with a newline, even a trailing one', () => {
    for (const id of ['a\nb', 'abc\n', '\nabc', 'abc\r']) assert.equal(isValidTaskId(id), false, JSON.stringify(id));
  });

  test('refuses spaces, shell metacharacters and the empty string', () => {
    for (const id of ['', ' a', 'a b', "a'b", 'a;b', '$(x)', 'a`b`', 'a*']) assert.equal(isValidTaskId(id), false, id);
  });

  test('refuses values that are not strings', () => {
    for (const v of [42, null, undefined, ['a'], { id: 'a' }]) assert.equal(isValidTaskId(v), false);
  });

  test('assertTaskId returns a valid id and throws InvalidTaskIdError naming a bad one', () => {
    assert.equal(assertTaskId('ok-1'), 'ok-1');
    assert.throws(
      () => assertTaskId('../x'),
      (e: unknown) => e instanceof InvalidTaskIdError && e instanceof UserError && e.message.includes('"../x"'),
    );
  });

  test('exports the documented pattern', () => {
    assert.equal(TASK_ID_RE.source, '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$');
  });
});

describe('parsePid', () => {
  test('accepts integer pids above 1 as numbers and digit strings', () => {
    assert.equal(parsePid(2), 2);
    assert.equal(parsePid(12345), 12345);
    assert.equal(parsePid('12345'), 12345);
    assert.equal(parsePid(4_194_304), 4_194_304);
  });

  test('trims surrounding whitespace from a digit string', () => {
    assert.equal(parsePid(' 42 '), 42);
    assert.equal(parsePid('42\n'), 42);
  });

  test('refuses pid 0 and pid 1 in any form', () => {
    for (const v of [0, 1, '0', '1', ' 1 ', '00', '001']) assert.equal(parsePid(v), null, JSON.stringify(v));
  });

  test('refuses negative numbers, which would signal a process group', () => {
    for (const v of [-1, -5, -12345, '-5', '-1']) assert.equal(parsePid(v), null, JSON.stringify(v));
  });

  test('refuses floats', () => {
    for (const v of [1.5, 42.0001, '42.0', '1.5', '4e3', 1e-9]) assert.equal(parsePid(v), null, JSON.stringify(v));
  });

  test('refuses strings with junk around the digits', () => {
    for (const v of ['12abc', 'abc', 'abc12', '0x1f', '4 2', '+42', '', '   ', '42;rm -rf /', '４２']) {
      assert.equal(parsePid(v), null, JSON.stringify(v));
    }
  });

  test('refuses huge values beyond the kernel pid limit', () => {
    for (const v of [4_194_305, 99_999_999, Number.MAX_SAFE_INTEGER, 2 ** 53, '9999999', '12345678901234567890', Infinity, NaN]) {
      assert.equal(parsePid(v), null, String(v));
    }
  });

  test('refuses non-number, non-string values', () => {
    for (const v of [null, undefined, true, [42], { pid: 42 }, 42n]) assert.equal(parsePid(v), null, String(v));
  });
});

describe('isBootId', () => {
  const good = 'e8420e0f-aa2a-415c-b2d3-8584c8e0088d';

  test('accepts a lowercase uuid as the kernel prints it', () => {
    assert.equal(isBootId(good), true);
  });

  test('refuses uppercase, trailing newline, truncation and junk', () => {
    for (const v of [good.toUpperCase(), good + '\n', good.slice(0, -1), good.replace(/-/g, ''), `${good}x`, 'not-a-boot-id', '']) {
      assert.equal(isBootId(v), false, JSON.stringify(v));
    }
  });

  test('refuses values that are not strings', () => {
    assert.equal(isBootId(null), false);
    assert.equal(isBootId(123), false);
  });
});

describe('isStartTime', () => {
  test('accepts digit strings up to 20 digits', () => {
    assert.equal(isStartTime('0'), true);
    assert.equal(isStartTime('123456'), true);
    assert.equal(isStartTime('9'.repeat(20)), true);
  });

  test('refuses 21 digits, signs, decimals, whitespace and the empty string', () => {
    for (const v of ['9'.repeat(21), '-1', '+1', '1.5', ' 12', '12\n', '', '12a']) assert.equal(isStartTime(v), false, JSON.stringify(v));
  });

  test('refuses a number, which must be compared as a string identity', () => {
    assert.equal(isStartTime(123), false);
  });
});

describe('assertSafePath', () => {
  test('returns absolute and relative paths unchanged, including spaces and quotes', () => {
    for (const p of ['/var/lib/dispatch/tasks/t1/1', 'work/t1', "/tmp/it's here", '/tmp/a b/$(x)']) {
      assert.equal(assertSafePath(p, 'work dir'), p);
    }
  });

  test('accepts 1024 characters and refuses 1025', () => {
    assert.equal(assertSafePath('/' + 'a'.repeat(1023), 'p').length, 1024);
    assert.throws(() => assertSafePath('/' + 'a'.repeat(1024), 'p'), UserError);
  });

  test('refuses a leading dash that a command would read as an option', () => {
    assert.throws(() => assertSafePath('-rf', 'work dir'), UserError);
  });

  test('refuses NUL, newline and carriage return', () => {
    for (const p of ['/tmp/a\0b', '/tmp/a\nb', '/tmp/a\rb']) assert.throws(() => assertSafePath(p, 'p'), UserError, JSON.stringify(p));
  });

  test('refuses the empty string and non-strings with a message naming what was checked', () => {
    assert.throws(() => assertSafePath('', 'work dir'), /invalid work dir ""/);
    assert.throws(() => assertSafePath(42, 'key path'), /invalid key path 42/);
    assert.throws(() => assertSafePath(null, 'key path'), /invalid key path null/);
  });
});
