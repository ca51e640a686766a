/** Exit codes of `dispatch` (documented in the README) and the one place errors are mapped to them. */
import { CommanderError } from 'commander';
import { NodeUnreachableError, NotFoundError, TemporalUnavailableError, UserError } from '../common/errors';

/** unavailable: Temporal, or the node a command needs, does not answer; notFound: no such task, attempt or output. */
export const EXIT = { ok: 0, failure: 1, usage: 2, unavailable: 3, notFound: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Decided by the error's type, never its message. */
export function exitCodeFor(e: unknown): ExitCode {
  // Commander has printed its own message; --help and --version end with exitCode 0.
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (e instanceof TemporalUnavailableError || e instanceof NodeUnreachableError) return EXIT.unavailable;
  if (e instanceof NotFoundError) return EXIT.notFound;
  if (e instanceof UserError) return EXIT.usage;
  return EXIT.failure;
}
