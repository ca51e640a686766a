/** Parses durations like "90s", "15m", "2h", "1h30m" or a plain number of seconds. Pure. */
import { UserError } from './errors';

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
/** Ten years: anything longer is a typo, and Infinity must never become a timer. */
const MAX_S = 10 * 365 * 86400;

export function parseDurationSeconds(input: unknown, what = 'duration'): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input > 0 && input <= MAX_S) return input;
    throw new UserError(`invalid ${what} ${input}: must be a positive number of seconds`);
  }
  if (typeof input !== 'string') throw new UserError(`invalid ${what}: expected a string like "2h" or "90m"`);
  const s = input.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) return parseDurationSeconds(Number(s), what);
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNIT_S[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== s.length || s.length === 0 || !(total > 0) || !Number.isFinite(total) || total > MAX_S) {
    throw new UserError(`invalid ${what} ${JSON.stringify(input)}: use a form like "30s", "15m", "2h" or "1h30m"`);
  }
  return total;
}

export function formatSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
