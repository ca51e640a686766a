/**
 * Building the command strings sent to nodes. Every command is a fixed script passed to `sh -c`
 * plus positional arguments, each single-quoted; nothing from a user is ever spliced into a script.
 */

/** POSIX single-quote: the result is always exactly one shell word with the same bytes. */
export function shq(value: string): string {
  if (value.includes('\0')) throw new Error('refusing to quote a string with a NUL byte');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export type CommandArg = string | number;

/** `sh -c '<script>' <name> '<arg>'...`: integers must be safe non-negative integers. */
export function buildCommand(script: string, name: string, args: readonly CommandArg[]): string {
  const words = args.map((a, i) => {
    if (typeof a === 'number') {
      if (!Number.isSafeInteger(a) || a < 0) throw new Error(`argument ${i} of ${name} is not a safe integer: ${a}`);
      return String(a);
    }
    if (typeof a !== 'string') throw new Error(`argument ${i} of ${name} is not a string`);
    return shq(a);
  });
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`bad script name ${name}`);
  return ['sh', '-c', shq(script), name, ...words].join(' ');
}
