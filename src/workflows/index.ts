/** Everything the worker's workflow bundle registers. */
export { taskWorkflow } from './task';
