/** Guardian: dependency health and long runners. Reports; only blocking is a state change. Pure parts here. */

export interface DepNode {
  id: string;
  dependsOn: string[];
}

/** Dependency cycles among the given tasks, each as a list of ids (first id repeated at the end). */
export function findCycles(tasks: DepNode[]): string[][] {
  const deps = new Map(tasks.map((t) => [t.id, t.dependsOn]));
  const state = new Map<string, 1 | 2>();
  const cycles: string[][] = [];
  const stack: string[] = [];
  const visit = (id: string): void => {
    state.set(id, 1);
    stack.push(id);
    for (const d of deps.get(id) ?? []) {
      if (!deps.has(d)) continue;
      if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(id, 2);
  };
  for (const t of tasks) if (!state.has(t.id)) visit(t.id);
  return cycles;
}

export const LONG_RUNNING_S = 4 * 3600;
