/**
 * Checks a worker makes before it polls, so that a set-up mistake is one clear line at start-up
 * instead of workflow tasks that fail forever.
 */
import type { Connection } from '@temporalio/client';
import { UserError } from '../common/errors';

/** Temporal's IndexedValueType numbers (temporal.api.enums.v1). */
const KEYWORD = 2;
const INT = 3;
const TYPE_NAMES: Record<number, string> = { 1: 'Text', 2: 'Keyword', 3: 'Int', 4: 'Double', 5: 'Bool', 6: 'Datetime', 7: 'KeywordList' };

/** The search attributes every task workflow sets; without them its first upsert fails. */
export const REQUIRED_SEARCH_ATTRIBUTES: readonly { name: string; type: number }[] = [
  { name: 'TaskProject', type: KEYWORD },
  { name: 'TaskNode', type: KEYWORD },
  { name: 'TaskStatus', type: KEYWORD },
  { name: 'TaskPriority', type: INT },
];

/** What is missing or of the wrong type, as "Name (Type)" or "Name (Type, registered as Other)". Pure. */
export function searchAttributeProblems(have: Record<string, number | string>): string[] {
  const out: string[] = [];
  for (const want of REQUIRED_SEARCH_ATTRIBUTES) {
    const got = have[want.name];
    const gotType = typeof got === 'string' ? Number(/^[0-9]+$/.test(got) ? got : NaN) : got;
    if (got === undefined) out.push(`${want.name} (${TYPE_NAMES[want.type]})`);
    else if (gotType !== want.type)
      out.push(`${want.name} (${TYPE_NAMES[want.type]}, registered as ${TYPE_NAMES[gotType as number] ?? String(got)})`);
  }
  return out;
}

export function searchAttributeError(namespace: string, problems: string[]): UserError {
  const missing = REQUIRED_SEARCH_ATTRIBUTES.filter((a) => problems.some((p) => p.startsWith(`${a.name} `)));
  const how = missing
    .map((a) => `temporal operator search-attribute create --namespace ${namespace} --name ${a.name} --type ${TYPE_NAMES[a.type]}`)
    .join('; ');
  return new UserError(
    `namespace ${namespace} lacks the search attributes ${problems.join(', ')} that every task workflow sets: ` +
      `register them (self-hosted: ${how}; Temporal Cloud: with tcld or the Cloud UI) and start the worker again`,
  );
}

/**
 * Refuses to start when the namespace lacks the four search attributes. When the server will not
 * say (an older server, or an API key without operator rights), it logs that and goes on.
 */
export async function checkSearchAttributes(conn: Connection, namespace: string, log: (line: string) => void): Promise<void> {
  let have: Record<string, number | string>;
  try {
    const r = await conn.operatorService.listSearchAttributes({ namespace });
    have = { ...(r.systemAttributes ?? {}), ...(r.customAttributes ?? {}) } as Record<string, number | string>;
  } catch (e) {
    log(`could not list the search attributes of namespace ${namespace} (${(e as Error).message.split('\n')[0]}); not checked`);
    return;
  }
  const problems = searchAttributeProblems(have);
  if (problems.length) throw searchAttributeError(namespace, problems);
}
