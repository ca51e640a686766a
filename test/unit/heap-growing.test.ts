import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/common/errors';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { applyHeapGrowing, HEAP_GROWING_PERCENT_DEFAULT, missingStartFlags, WORKER_START } from '../../src/workers/memory';

const REPO = path.resolve(__dirname, '../../..');
const read = (p: string): string => readFileSync(path.join(REPO, p), 'utf8');

describe('DISPATCH_HEAP_GROWING_PERCENT', () => {
  test('unset or empty: the default; 0: V8 chooses; a whole number up to 1000 is taken', () => {
    assert.equal(applyHeapGrowing({}), HEAP_GROWING_PERCENT_DEFAULT);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '' }), HEAP_GROWING_PERCENT_DEFAULT);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '80' }), 80);
    assert.equal(applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: '0' }), 0);
  });

  test('anything else is refused with a message that names the variable', () => {
    for (const bad of ['-1', '1001', '12.5', 'lots', '50%', '0x32', '5e1', ' 50'])
      assert.throws(
        () => applyHeapGrowing({ DISPATCH_HEAP_GROWING_PERCENT: bad }),
        (e: unknown) => e instanceof UserError && /DISPATCH_HEAP_GROWING_PERCENT/.test(e.message),
        bad,
      );
  });
});

describe("the worker's start (WORKER_START)", () => {
  const all = WORKER_START.nodeFlags;

  test('missingStartFlags: by flag name, from the command line or NODE_OPTIONS', () => {
    assert.deepEqual(missingStartFlags([], {}), [...all]);
    assert.deepEqual(missingStartFlags([...all], {}), []);
    // Another value is the operator's choice, not a missing flag.
    assert.deepEqual(missingStartFlags(['--max-semi-space-size=4', '--heap-growing-percent=80'], {}), []);
    assert.deepEqual(missingStartFlags(['--heap_growing_percent=50'], { NODE_OPTIONS: ' --max-semi-space-size=2 ' }), []);
    assert.deepEqual(missingStartFlags([], { DISPATCH_HEAP_GROWING_PERCENT: '50' }), ['--max-semi-space-size=1']);
    assert.deepEqual(missingStartFlags(['--inspect'], { NODE_OPTIONS: '--max-old-space-size=512' }), [...all]);
  });

  test('the systemd unit, the launchd plist and npm run dev start node with the same flags', () => {
    const unit = read('docs/service/dispatch-worker.service');
    const execs = unit.split('\n').filter((l) => /^#?\s*ExecStart=/.test(l.trim()));
    assert.ok(execs.length >= 2, 'the unit and its --queues dispatch variant');
    for (const l of execs) assert.ok(l.includes(`/usr/bin/node ${all.join(' ')} /opt/dispatch/bin/dispatch.js worker`), l);
    for (const [k, v] of Object.entries(WORKER_START.env)) assert.match(unit, new RegExp(`^Environment=${k}=${v}$`, 'm'));
    // Node's start gives the flags; the environment must not set them a second way.
    assert.doesNotMatch(unit, /^Environment=(NODE_OPTIONS|DISPATCH_HEAP_GROWING_PERCENT)=/m);

    const plist = read('docs/service/com.dispatch.worker.plist');
    const args = [
      ...(/<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(plist)?.[1] ?? '').matchAll(/<string>([^<]*)<\/string>/g),
    ].map((m) => m[1]);
    assert.deepEqual(args.slice(1, 1 + all.length + 2), [...all, '/opt/dispatch/bin/dispatch.js', 'worker']);
    assert.doesNotMatch(plist, /<key>(NODE_OPTIONS|DISPATCH_HEAP_GROWING_PERCENT)<\/key>/);

    const dev = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.dev!;
    assert.ok(dev.includes(`node ${all.join(' ')} bin/dispatch.js dev`), dev);
  });
});
