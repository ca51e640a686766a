/**
 * The Temporal Web UI tells a task's story, checked in a real browser: Debian's chromium driven by
 * playwright-core through its executablePath (no browser download), against the dev server's own
 * Web UI. The list filtered by `TaskNode="n1" AND ExecutionStatus="Running"` shows the running task;
 * its page (User Metadata) shows its summary, its details and its current details (node, pid,
 * attempt, last heartbeat), and the activities carry summaries (launch on n1, supervise attempt 1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startCluster, type Cluster } from '../helpers/cluster';
import { startTemporal, type TemporalServer } from '../helpers/temporal';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
let temporal: TemporalServer;
let c: Cluster;
let browser: Browser;

before(async () => {
  assert.ok(CHROMIUM, "Debian's chromium is not installed (bash scripts/setup.sh --test installs it)");
  temporal = await startTemporal({ ui: true });
  c = await startCluster({ temporal, nodes: 1, slots: 2, config: { lease_s: 3, kill_grace: 1, heartbeat_record_interval: 2 } });
  await c.startWorker();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
after(async () => {
  await browser?.close();
  await c?.stop();
  await temporal?.stop();
});

describe('the Web UI', () => {
  test('the filtered list shows the running task with its summary; its page shows its current details', async () => {
    await c.cliOk(['submit', '--id', 'ui-long', '--node', 'n1', '--project', 'webui', '--command', 'sleep 300']);
    const row = await c.waitTask(
      'ui-long',
      (t) => t.status === 'running' && t.last_heartbeat !== t.started_at,
      'running with a recorded heartbeat',
    );
    const ui = `http://127.0.0.1:${temporal.uiPort}`;
    const page = await browser.newPage();
    const query = 'TaskNode="n1" AND ExecutionStatus="Running"';
    // The UI renders summaries and details (markdown) in frames of their own: read them all.
    const text = async (): Promise<string> => {
      const parts: string[] = [];
      for (const f of page.frames()) parts.push(await f.innerText('body').catch(() => ''));
      return parts.join('\n');
    };
    // The UI is a single-page app: give it time to render (and to fetch) before reading, and load
    // the page again only now and then (visibility and the details query catch up in seconds).
    const waitText = async (want: RegExp, what: string, reload: () => Promise<unknown>): Promise<string> => {
      const until = Date.now() + 90_000;
      let last = '';
      let loadedAt = Date.now();
      while (Date.now() < until) {
        await page.waitForTimeout(1000);
        last = await text().catch((e: Error) => `(page not readable: ${e.message.split('\n')[0]})`);
        if (want.test(last)) return last;
        if (Date.now() - loadedAt > 8000) {
          await reload().catch(() => undefined);
          loadedAt = Date.now();
        }
      }
      throw new Error(`${what}: ${want} not on the page; it shows:\n${last.slice(0, 3000)}`);
    };
    const listUrl = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
    await page.goto(listUrl);
    await waitText(/task-ui-long/, 'the filtered workflow list', () => page.goto(listUrl));
    const summary = 'sleep 300 (project webui, priority 50)';
    // The list shows the id, status, type and times (its default columns leave the summary out).
    await page.locator('a[href*="/workflows/task-ui-long/"]').first().click();
    await waitText(/User Metadata/, 'the workflow page', () => page.reload());
    await page.getByText('User Metadata', { exact: true }).first().click();
    const detail = await waitText(/node\W+n1\W+pid/i, 'the current details', async () => {
      await page.reload();
      await page.waitForTimeout(2000);
      await page.getByText('User Metadata', { exact: true }).first().click();
    });
    assert.ok(detail.includes(summary), `the summary is on the workflow page:\n${detail.slice(0, 3000)}`);
    assert.match(detail, new RegExp(`pid\\W+${row.pid}`), 'the pid is in the current details');
    assert.match(detail, /attempt\W+1 of/);
    assert.match(detail, /last heartbeat\W+\d{4}-\d\d-\d\dT/);
    // The event history names each activity by its summary.
    const history = await waitText(/launch attempt 1 on n1/, 'the activity summaries', () => page.reload());
    assert.match(history, /supervise attempt 1 \(pid \d+ on n1\)/);
    await page.close();
    await c.cliOk(['cancel', 'ui-long', '--wait']);
  });
});
