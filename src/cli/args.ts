/** Checks of numeric flag values; a bad value is the user's to fix (exit 2). */
import { UserError } from '../common/errors';

export function positiveInt(name: string, v: string, min = 0): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > 100000) {
    throw new UserError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

export function positiveNumber(name: string, v: string): number {
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) throw new UserError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}
