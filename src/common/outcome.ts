/**
 * How an attempt ended, read from what the books kept of it (pure). The error texts are the ones
 * the store and the reaper write: see store/tasks.ts finishAttempt and reaper/steps.ts.
 */
import type { AttemptRecord } from './types';

export type EndedBy =
  | 'dispatched'
  | 'running'
  | 'exited'
  | 'cancelled'
  | 'fenced'
  | 'runtime-cap'
  | 'vanished'
  | 'launch-failed'
  | 'launch-lost'
  | `reaped:${string}`
  | 'blocked'
  | 'unknown';

export function endedBy(a: AttemptRecord): EndedBy {
  // A fenced attempt ended by its own watchdog, whatever was booked when contact came back.
  if (a.fenced_at) return 'fenced';
  if (!a.ended_at) return a.started_at ? 'running' : 'dispatched';
  const err = a.error ?? '';
  const reaped = /^Ghost task auto-cleanup: ([a-z-]+)/.exec(err);
  if (reaped) return `reaped:${reaped[1]}`;
  if (a.status === 'cancelled') return 'cancelled';
  if (a.status === 'blocked') return 'blocked';
  if (a.status === 'completed' || /^exit code -?\d+/.test(err)) return 'exited';
  if (err.startsWith('max_runtime exceeded')) return 'runtime-cap';
  if (err.startsWith('process vanished')) return 'vanished';
  if (err.startsWith('launch lost contact')) return 'launch-lost';
  if (err.startsWith('launch failed')) return 'launch-failed';
  return 'unknown';
}
