/** Errors a person can fix by changing their input. The CLI prints their message without a stack. */
export class UserError extends Error {
  override readonly name: string = 'UserError';
}

/**
 * Thrown when the Temporal frontend does not answer. A UserError (no stack: the fix is to start
 * Temporal or pass the right address), with its own exit code so scripts can retry.
 */
export class TemporalUnavailableError extends UserError {
  override readonly name = 'TemporalUnavailableError';
  /** `detail` follows the address verbatim, e.g. `: connection refused`. */
  constructor(
    readonly address: string,
    detail: string,
  ) {
    super(`cannot reach Temporal at ${address}${detail}`);
  }
}

/** Thrown when a task id does not match the allowed pattern. */
export class InvalidTaskIdError extends UserError {
  override readonly name = 'InvalidTaskIdError';
  constructor(readonly taskId: unknown) {
    super(`invalid task id ${JSON.stringify(taskId)}: ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`);
  }
}

/** Thrown when a spec file or submit flags do not describe a valid task. */
export class SpecError extends UserError {
  override readonly name = 'SpecError';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

/** Thrown when the config file or an environment override is invalid; names the key. */
export class ConfigError extends UserError {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config: ${key}: ${message}`);
  }
}

/** Thrown when a node cannot be reached or refuses a command. */
export class NodeUnreachableError extends Error {
  override readonly name: string = 'NodeUnreachableError';
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(`node ${node}: ${message}`);
  }
}

/** Thrown when a node's host key does not match known_hosts, or its key files cannot be read: retrying will not help. */
export class NodeConfigError extends NodeUnreachableError {
  override readonly name = 'NodeConfigError';
}

/** Thrown when what the user named does not exist: an unknown task, a pruned attempt directory. */
export class NotFoundError extends UserError {
  override readonly name = 'NotFoundError';
}
