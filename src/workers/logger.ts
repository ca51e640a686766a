/**
 * The SDK's logger, with one change: notices that describe dispatch's intended set-up are logged
 * at debug, so that a healthy worker logs no warning and a warning always points at something
 * real (a task workflow that failed because its task failed still logs "Workflow failed").
 */
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';

/** The dispatch-db worker runs activities only, by design. */
const EXPECTED = new Set(['No workflows registered, not polling for workflow tasks']);

export class DispatchSdkLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    super.log(level === 'WARN' && EXPECTED.has(message) ? 'DEBUG' : level, message, meta);
  }
}

let installed = false;

/**
 * Installs the logger once per process, before the first worker or native connection, and with
 * `metricsAddress` the SDK's Prometheus exporter there (it serves dispatch's metrics too).
 */
export function installSdkLogger(metricsAddress?: string | null): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DispatchSdkLogger('INFO'),
    ...(metricsAddress
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress: metricsAddress, countersTotalSuffix: true, useSecondsForDurations: true } },
          },
        }
      : {}),
  });
}
