/**
 * Marks a task writes itself: proof of when each copy ran that does not depend on dispatch's books.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A command that appends a time stamp (ms) to DIR/marks every 0.1 s, forever. */
export const MARKER = 'while :; do echo "$(date +%s%3N)" >> "$DISPATCH_DIR/marks"; sleep 0.1; done';

/** The same for `s` seconds, then exit 0. */
export function markerFor(s: number): string {
  return `end=$(( $(date +%s) + ${s} )); while [ "$(date +%s)" -lt "$end" ]; do echo "$(date +%s%3N)" >> "$DISPATCH_DIR/marks"; sleep 0.1; done`;
}

/** The time stamps an attempt directory's task wrote. */
export function marks(dir: string): number[] {
  return readFileSync(path.join(dir, 'marks'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** The longest pause between two marks: a task that never stopped has none past a second or so. */
export function longestGapMs(m: number[]): number {
  let g = 0;
  for (let i = 1; i < m.length; i++) g = Math.max(g, m[i]! - m[i - 1]!);
  return g;
}
