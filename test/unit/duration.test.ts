import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatSeconds, parseDurationSeconds } from '../../src/common/duration';
import { UserError } from '../../src/common/errors';

describe('parseDurationSeconds', () => {
  test('takes a positive number as seconds', () => {
    assert.equal(parseDurationSeconds(90), 90);
    assert.equal(parseDurationSeconds(0.5), 0.5);
  });

  test('takes a plain digit string as seconds', () => {
    assert.equal(parseDurationSeconds('90'), 90);
    assert.equal(parseDurationSeconds('2.5'), 2.5);
  });

  test('reads each unit', () => {
    assert.equal(parseDurationSeconds('500ms'), 0.5);
    assert.equal(parseDurationSeconds('30s'), 30);
    assert.equal(parseDurationSeconds('15m'), 900);
    assert.equal(parseDurationSeconds('2h'), 7200);
    assert.equal(parseDurationSeconds('1d'), 86400);
  });

  test('adds up compound forms', () => {
    assert.equal(parseDurationSeconds('1h30m'), 5400);
    assert.equal(parseDurationSeconds('1d2h3m4s'), 86400 + 7200 + 180 + 4);
    assert.equal(parseDurationSeconds('0h30m'), 1800);
  });

  test('reads fractional units', () => {
    assert.equal(parseDurationSeconds('1.5h'), 5400);
  });

  test('ignores surrounding whitespace', () => {
    assert.equal(parseDurationSeconds('  15m\n'), 900);
  });

  test('refuses zero in every form', () => {
    for (const v of [0, '0', '0s', '0h0m', '0.0']) assert.throws(() => parseDurationSeconds(v), UserError, JSON.stringify(v));
  });

  test('refuses negative numbers and negative strings', () => {
    for (const v of [-1, '-5', '-5m']) assert.throws(() => parseDurationSeconds(v), UserError, JSON.stringify(v));
  });

  test('refuses NaN and infinity', () => {
    for (const v of [NaN, Infinity, -Infinity]) assert.throws(() => parseDurationSeconds(v), UserError, String(v));
  });

  test('refuses unknown units, uppercase units and a unit without a number', () => {
    for (const v of ['1x', '1H', '2 hours', 'h', 'm30', '1.h', '.5h']) assert.throws(() => parseDurationSeconds(v), UserError, v);
  });

  test('refuses spaces between parts and trailing junk', () => {
    for (const v of ['1h 30m', '1h30', '15m!', '15m;rm']) assert.throws(() => parseDurationSeconds(v), UserError, v);
  });

  test('refuses the empty string and blank strings', () => {
    for (const v of ['', '   ']) assert.throws(() => parseDurationSeconds(v), UserError, JSON.stringify(v));
  });

  test('refuses values that are neither numbers nor strings', () => {
    for (const v of [null, undefined, true, ['1h'], { h: 1 }]) assert.throws(() => parseDurationSeconds(v), UserError, String(v));
  });

  test('names what was being parsed in the error', () => {
    assert.throws(() => parseDurationSeconds('soon', 'max_runtime'), /invalid max_runtime "soon"/);
    assert.throws(() => parseDurationSeconds(-3, 'kill_grace'), /invalid kill_grace -3/);
  });
});

describe('formatSeconds', () => {
  test('prints whole hours, whole minutes, or seconds', () => {
    assert.equal(formatSeconds(7200), '2h');
    assert.equal(formatSeconds(900), '15m');
    assert.equal(formatSeconds(90), '90s');
  });
});
