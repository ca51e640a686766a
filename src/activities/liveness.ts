/**
 * Worker liveness for every activity: while an activity runs, its worker heartbeats once a second.
 * Together with a short heartbeatTimeout in the workflow's activity options, a worker that dies in
 * the middle of ANY activity (a database step, a launch, a node probe, a sweep) is noticed within
 * that timeout and the activity is retried on a live worker, instead of waiting out a
 * start-to-close timeout of minutes. `supervise` heartbeats itself, with details it needs on
 * re-attach, so it is left alone here. Local activities (the launch) have no heartbeat at all: their
 * worker runs the workflow too, and a dead worker loses the workflow task instead.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';

/** Activities that send their own heartbeats (with details). */
const SELF_HEARTBEATING = new Set(['supervise']);
export const LIVENESS_BEAT_MS = 1000;

export function livenessInterceptor(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        if (ctx.info.isLocal || SELF_HEARTBEATING.has(ctx.info.activityType)) return next(input);
        const beat = (): void => {
          try {
            ctx.heartbeat();
          } catch {
            // the activity is finishing: nothing to keep alive
          }
        };
        beat();
        const timer = setInterval(beat, LIVENESS_BEAT_MS);
        try {
          return await next(input);
        } finally {
          clearInterval(timer);
        }
      },
    },
  };
}
