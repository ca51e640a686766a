/** Server round trips of a workflow run, counted from its history (tests and `npm run bench`). */
import type { WorkflowHandle } from '@temporalio/client';

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

export interface RoundTrips {
  /** Workflow tasks the worker completed. */
  workflow_tasks: number;
  /** Activity tasks the server scheduled (each one a dispatch to a worker and an answer). */
  activity_tasks: number;
  /** Local activities: run inside a workflow task, recorded as markers, no round trip of their own. */
  local_activities: number;
}

export function countRoundTrips(events: HistoryEvent[]): RoundTrips {
  let wft = 0;
  let at = 0;
  let la = 0;
  for (const e of events) {
    if (e.workflowTaskCompletedEventAttributes) wft++;
    else if (e.activityTaskScheduledEventAttributes) at++;
    else if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') la++;
  }
  return { workflow_tasks: wft, activity_tasks: at, local_activities: la };
}

/** The activity types scheduled, in order. */
export function activityTypes(events: HistoryEvent[]): string[] {
  return events.flatMap((e) => {
    const n = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return n ? [n] : [];
  });
}
