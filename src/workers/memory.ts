/**
 * What the worker's resident memory is made of, in parts that add up to its VmRSS (/proc/self/status):
 *
 * - `code`: file-backed and shared pages (RssFile + RssShmem): node, the SDK's native module, libraries.
 * - `main_heap`: the main thread's V8 heap (committed): activities, the SSH pool, the SDK's JS side.
 * - `workflow_heap`: the V8 heaps of the SDK's workflow threads (committed), read through the
 *   in-process inspector: the workflow cache lives there, one sandboxed workflow per cached run.
 * - `external`: memory V8 objects hold outside the heaps (Buffers, ArrayBuffers) on the main thread.
 * - `native`: the rest of the anonymous memory (RssAnon less the three above): the Rust core's state
 *   (per open workflow and per running activity), gRPC buffers, allocator arenas, thread stacks.
 *
 * Read on demand (the metrics gauge, the benchmark's profile); nothing here runs unless asked.
 */
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { setFlagsFromString } from 'node:v8';
import { UserError } from '../common/errors';

/** How far V8 lets a heap grow past what it kept alive at its last full collection, in %; 0: V8 chooses. */
export const HEAP_GROWING_PERCENT_DEFAULT: number = 0;

/**
 * Sets V8's heap growing factor for this process from DISPATCH_HEAP_GROWING_PERCENT (default 0: V8
 * chooses, and lets a heap grow to up to 4 times its live size before the next full collection; 50:
 * 1.5 times). An override of node's start flag (WORKER_START), set at runtime: call it before the SDK
 * starts its workflow thread, whose heap takes the same flag.
 * Under a steady churn of activations and heartbeats V8's own choice keeps the worker's heaps
 * committed at two to three times what they hold (bench/RESULTS.md, "Worker memory profile"); a
 * lower factor trades that memory for more full collections. Returns the percent in force.
 */
export function applyHeapGrowing(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DISPATCH_HEAP_GROWING_PERCENT;
  // Digits only: Number() alone would also take ' 50', '0x32' and '5e1'.
  const pct = raw === undefined || raw === '' ? HEAP_GROWING_PERCENT_DEFAULT : /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(pct) || pct < 0 || pct > 1000)
    throw new UserError(`DISPATCH_HEAP_GROWING_PERCENT: expected a whole number from 0 (V8 chooses) to 1000, got ${JSON.stringify(raw)}`);
  if (pct > 0) setFlagsFromString(`--heap-growing-percent=${pct}`);
  return pct;
}

/**
 * How the worker's node is started: the service units (docs/service/), `npm run dev` and the test
 * suite's workers all start it this way. Both are V8 flags that only node's command line can give
 * every thread (NODE_OPTIONS refuses --heap-growing-percent; a flag set at runtime reaches only
 * isolates created after it): V8 heaps at most 1.5 times their live size, and a young generation of
 * two 1 MB semi-spaces instead of up to 16 MB each, in the main thread and in the SDK's workflow
 * thread. `env` is what the units put in the environment (glibc's malloc arenas: 2 instead of 8 per
 * core; harmless elsewhere). Measured: bench/RESULTS.md, "The worker's memory levers".
 */
export const WORKER_START: { readonly nodeFlags: readonly string[]; readonly env: Readonly<Record<string, string>> } = {
  nodeFlags: ['--max-semi-space-size=1', '--heap-growing-percent=50'],
  env: { MALLOC_ARENA_MAX: '2' },
};

/**
 * The WORKER_START flags this process was not started with (by flag name, from node's command line
 * or NODE_OPTIONS; DISPATCH_HEAP_GROWING_PERCENT stands in for --heap-growing-percent). Empty: started
 * as the units start it.
 */
export function missingStartFlags(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)]
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0]!.replace(/_/g, '-'));
  return WORKER_START.nodeFlags.filter((f) => {
    const name = f.split('=')[0]!;
    if (name === '--heap-growing-percent' && (env.DISPATCH_HEAP_GROWING_PERCENT ?? '') !== '') return false;
    return !given.includes(name);
  });
}

export interface MemoryParts {
  rss: number;
  code: number;
  main_heap: number;
  workflow_heap: number;
  external: number;
  native: number;
  /** Used (not only committed) bytes of the two heaps, for reading the parts. */
  main_heap_used: number;
  workflow_heap_used: number;
  workflow_threads: number;
}

export const MEMORY_PARTS = ['code', 'main_heap', 'workflow_heap', 'external', 'native'] as const;

function statusKb(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

type HeapUsage = { usedSize: number; totalSize: number };

/** Reads the heaps of the process's worker threads over one in-process inspector session. */
export class MemoryProbe {
  private session: Session | null = null;
  private readonly threads = new Map<string, string>();
  private readonly pending = new Map<number, (u: HeapUsage | null) => void>();
  private nextId = 1;

  private async connect(): Promise<Session> {
    if (this.session) return this.session;
    const s = new Session();
    s.connect();
    s.on('NodeWorker.attachedToWorker', (m: { params: { sessionId: string; workerInfo: { workerId: string } } }) => {
      this.threads.set(m.params.workerInfo.workerId, m.params.sessionId);
    });
    s.on('NodeWorker.detachedFromWorker', (m: { params: { sessionId: string } }) => {
      for (const [k, v] of this.threads) if (v === m.params.sessionId) this.threads.delete(k);
    });
    s.on('NodeWorker.receivedMessageFromWorker', (m: { params: { message: string } }) => {
      try {
        const msg = JSON.parse(m.params.message) as { id?: number; result?: HeapUsage };
        if (typeof msg.id !== 'number') return;
        const done = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        done?.(msg.result && typeof msg.result.totalSize === 'number' ? msg.result : null);
      } catch {
        /* not ours */
      }
    });
    await new Promise<void>((resolve, reject) =>
      s.post('NodeWorker.enable', { waitForDebuggerOnStart: false }, (e) => (e ? reject(e) : resolve())),
    );
    // The attach events for threads that already run arrive right after enable.
    await new Promise((r) => setTimeout(r, 50));
    this.session = s;
    return s;
  }

  private async threadHeap(s: Session, sessionId: string): Promise<HeapUsage | null> {
    const id = this.nextId++;
    const answer = new Promise<HeapUsage | null>((resolve) => {
      this.pending.set(id, resolve);
      setTimeout(() => {
        if (this.pending.delete(id)) resolve(null);
      }, 2000).unref();
    });
    s.post(
      'NodeWorker.sendMessageToWorker',
      { sessionId, message: JSON.stringify({ id, method: 'Runtime.getHeapUsage' }) },
      () => undefined,
    );
    return answer;
  }

  async read(): Promise<MemoryParts> {
    const s = await this.connect();
    const heaps = await Promise.all([...this.threads.values()].map((id) => this.threadHeap(s, id)));
    const status = readFileSync('/proc/self/status', 'utf8');
    const mu = process.memoryUsage();
    const rss = statusKb(status, 'VmRSS');
    const code = statusKb(status, 'RssFile') + statusKb(status, 'RssShmem');
    let wfTotal = 0;
    let wfUsed = 0;
    let n = 0;
    for (const h of heaps) {
      if (!h) continue;
      wfTotal += h.totalSize;
      wfUsed += h.usedSize;
      n++;
    }
    const native = rss - code - mu.heapTotal - wfTotal - mu.external;
    return {
      rss,
      code,
      main_heap: mu.heapTotal,
      workflow_heap: wfTotal,
      external: mu.external,
      native,
      main_heap_used: mu.heapUsed,
      workflow_heap_used: wfUsed,
      workflow_threads: n,
    };
  }

  close(): void {
    this.session?.disconnect();
    this.session = null;
  }
}
