/** Everything the worker's workflow bundle registers. */
export { taskWorkflow } from './task';
export { reaperWorkflow, nodeProbeWorkflow, guardianWorkflow, factoryWorkflow, emptyWorkflow } from './maintenance';
