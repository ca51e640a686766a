/** What activities count for the metrics (src/workers/metrics.ts), whichever worker runs them. */
export interface DispatchMetrics {
  kill(outcome: string, by: 'task' | 'reaper'): void;
  probeFailure(node: string): void;
  sweepDone(seconds: number): void;
}

export const NO_METRICS: DispatchMetrics = { kill: () => undefined, probeFailure: () => undefined, sweepDone: () => undefined };
