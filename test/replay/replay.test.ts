/**
 * The replay gate: the workflow bundle as built must replay every history that any version of
 * dispatch recorded (test/histories/<version>/*.json, written by scripts/record-histories.ts). A
 * change to a running code path that is not behind patched() fails here, before it reaches a
 * fleet whose tasks are mid-flight.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

const ROOT = path.resolve(__dirname, '../../..');
const HISTORIES = path.join(ROOT, 'test', 'histories');
const BUNDLE = path.join(ROOT, 'dist', 'workflow-bundle.js');

interface Recorded {
  file: string;
  workflowId: string;
  history: ReturnType<typeof historyFromJSON>;
}

function recorded(): Recorded[] {
  const out: Recorded[] = [];
  for (const version of readdirSync(HISTORIES).sort()) {
    const dir = path.join(HISTORIES, version);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort()) {
      const file = path.join(version, f);
      out.push({ file, workflowId: `${version}/${f}`, history: historyFromJSON(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) });
    }
  }
  return out;
}

async function replay(bundle: string, histories: Recorded[]): Promise<{ file: string; error: string | null }[]> {
  const results: { file: string; error: string | null }[] = [];
  const byId = new Map(histories.map((h) => [h.workflowId, h.file]));
  const it = Worker.runReplayHistories(
    { workflowBundle: { codePath: bundle }, replayName: 'dispatch-replay-gate' },
    histories.map((h) => ({ workflowId: h.workflowId, history: h.history })),
  );
  for await (const r of it)
    results.push({ file: byId.get(r.workflowId) ?? r.workflowId, error: r.error ? `${r.error.name}: ${r.error.message}` : null });
  return results;
}

describe('replay gate', () => {
  test('the built workflow bundle replays every committed history of every version', async () => {
    const all = recorded();
    const types = new Set(all.map((h) => h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name));
    for (const t of ['taskWorkflow', 'reaperWorkflow', 'nodeProbeWorkflow', 'guardianWorkflow', 'factoryWorkflow']) {
      assert.ok(types.has(t), `no committed history of ${t}`);
    }
    const results = await replay(BUNDLE, all);
    assert.equal(results.length, all.length);
    const failed = results.filter((r) => r.error);
    assert.deepEqual(failed, [], `histories that no longer replay: ${failed.map((f) => `${f.file}: ${f.error}`).join('\n')}`);
  });

  test('a bundle with one command moved fails the gate', async () => {
    const code = readFileSync(BUNDLE, 'utf8');
    const tag = /\n(\s*)run\.tagSearchAttributes\(\);\n/;
    const register = /(if \(!resume && !\(await run\.register\(\)\)\)\n(\s*)return run\.state;\n)/;
    assert.match(code, tag, 'the bundle no longer has the lines this test moves: update the test with the code');
    assert.match(code, register, 'the bundle no longer has the lines this test moves: update the test with the code');
    // The search attribute upsert moves after the register activity.
    const moved = code
      .replace(tag, '\n')
      .replace(register, (_m, block: string, indent: string) => `${block}${indent}run.tagSearchAttributes();\n`);
    assert.notEqual(moved, code);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-replay-'));
    const bad = path.join(dir, 'workflow-bundle.js');
    writeFileSync(bad, moved);
    const completed = recorded().filter((h) => h.file.endsWith('task-launched-completed.json'));
    assert.ok(completed.length > 0);
    const results = await replay(bad, completed);
    for (const r of results) assert.match(r.error ?? '', /Determinism|nondetermin|TMPRL1100/i, `${r.file} replayed on the altered bundle`);
  });
});
