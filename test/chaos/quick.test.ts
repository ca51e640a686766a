/**
 * The quick chaos profile as a test (npm run test:chaos; not yet part of npm test, see the note in
 * README): workers, the Temporal server and a node (a partition
 * that outlasts fence_after, with ghost_action requeue) are killed while tasks run; the run exits
 * non-zero if a must-be-zero figure (lost, leaked_slots, double_runs, wrongly_killed,
 * stray_processes, wrongly_fenced) is not zero or the run fell short of what it must prove (no
 * attempt fenced itself during the partition, a fault that did not happen, ...).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

const RUN = path.resolve(__dirname, '../../chaos/run.js');

test(
  'npm run chaos -- --quick: every must-be-zero figure is 0, and at least one attempt fenced itself',
  { timeout: 9 * 60_000 },
  async () => {
    const started = Date.now();
    const p = spawn(process.execPath, [RUN, '--quick'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    const table = out.slice(out.lastIndexOf('chaos run: seed'));
    assert.equal(code, 0, `chaos --quick exited ${code}:\n${table.slice(0, 8000) || out.slice(-8000)}`);
    assert.match(table, /^fenced\s+[1-9]/m, 'an attempt fenced itself during the partition');
    assert.ok(
      Date.now() - started < 8 * 60_000,
      `the quick profile took ${Math.round((Date.now() - started) / 1000)} s (at most 8 minutes)`,
    );
  },
);
