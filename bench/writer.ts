/** One of the sqlite_busy_errors writers: a separate process writing through the store's API. */
import { Store } from '../src/store/store';
import type { TaskSpec } from '../src/common/types';

const [dbPath, who, seconds] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4])];
const store = new Store(dbPath);
let writes = 0;
let busy = 0;
let other = 0;
const until = Date.now() + seconds * 1000;
let i = 0;
while (Date.now() < until) {
  const id = `w${who}-${i++}`;
  const spec: TaskSpec = {
    id,
    project: `p${who}`,
    priority: 50,
    dependsOn: [],
    modifies: [],
    command: 'true',
    specBody: null,
    executor: null,
    estimatedMinutes: null,
    maxRuntimeS: 60,
    node: null,
  };
  try {
    store.registerTask(spec, `h-${id}`, `task-${id}`);
    const a = store.allocate();
    for (const x of a.assigned) {
      store.markRunning({
        node: x.node,
        pid: 100 + i,
        starttime: '1',
        bootId: '00000000-0000-0000-0000-000000000000',
        dir: '/x',
        taskId: x.taskId,
        attempt: x.attempt,
      });
      store.recordHeartbeat(x.taskId, x.attempt);
      store.finishAttempt(x.taskId, x.attempt, { kind: 'exited', exitCode: 0 }, 3);
    }
    writes += 1 + a.assigned.length * 3;
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_BUSY' || /database is locked/.test(String(e))) busy++;
    else other++;
  }
}
store.close();
process.stdout.write(JSON.stringify({ who, writes, busy, other }) + '\n');
