/** The CLI's exit code follows the error's type; a message that looks like another error's changes nothing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, RetryState, TerminatedFailure } from '@temporalio/common';
import {
  ConfigError,
  InvalidTaskIdError,
  NodeUnreachableError,
  NotFoundError,
  SpecError,
  TemporalUnavailableError,
  UserError,
} from '../../src/common/errors';
import { EXIT, exitCodeFor } from '../../src/cli/main';
import { endedCancelled } from '../../src/cli/commands/cancel';

test('exit codes are the documented ones', () => {
  assert.deepEqual(EXIT, { ok: 0, failure: 1, usage: 2, unavailable: 3, notFound: 4 });
});

test('TemporalUnavailableError exits 3 and keeps the message the CLI has always printed', () => {
  const e = new TemporalUnavailableError('localhost:7233', ': connection refused');
  assert.equal(e.message, 'cannot reach Temporal at localhost:7233: connection refused');
  assert.ok(e instanceof UserError);
  assert.equal(exitCodeFor(e), 3);
});

test('a UserError whose message merely starts with "cannot reach Temporal" exits 2', () => {
  assert.equal(exitCodeFor(new UserError('cannot reach Temporal at localhost:7233: connection refused')), 2);
});

test('other UserErrors exit 2', () => {
  assert.equal(exitCodeFor(new UserError('give exactly one of --host HOST or --local')), 2);
  assert.equal(exitCodeFor(new InvalidTaskIdError('bad id')), 2);
  assert.equal(exitCodeFor(new SpecError('a.md', 'no command')), 2);
  assert.equal(exitCodeFor(new ConfigError('lease_s', 'must be a number')), 2);
});

test('CommanderError: 0 for --help and --version, 2 otherwise', () => {
  assert.equal(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), 0);
  assert.equal(exitCodeFor(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")), 2);
  assert.equal(exitCodeFor(new CommanderError(1, 'commander.missingMandatoryOptionValue', 'error: required option')), 2);
});

test('a node that does not answer exits 3, as Temporal does; what does not exist exits 4', () => {
  assert.equal(exitCodeFor(new NodeUnreachableError('gpu-1', 'timed out')), 3);
  assert.equal(exitCodeFor(new NotFoundError('unknown task x')), 4);
});

test('anything else exits 1', () => {
  assert.equal(exitCodeFor(new Error('cannot reach Temporal at localhost:7233')), 1);
  assert.equal(exitCodeFor(new TypeError('x is undefined')), 1);
  assert.equal(exitCodeFor('a string'), 1);
  assert.equal(exitCodeFor(null), 1);
});

test('cancel --wait: only a workflow that ended cancelled counts as cancelled', () => {
  const ended = (message: string, cause: Error) => new WorkflowFailedError(message, cause, RetryState.NON_RETRYABLE_FAILURE);
  assert.equal(endedCancelled(ended('Workflow execution cancelled', new CancelledFailure('Workflow canceled'))), true);
  assert.equal(endedCancelled(ended('Workflow execution failed', ApplicationFailure.nonRetryable('cancel this'))), false);
  assert.equal(endedCancelled(ended('Workflow execution terminated', new TerminatedFailure('cancelled by hand'))), false);
  assert.equal(endedCancelled(new Error('Workflow execution cancelled')), false);
  assert.equal(endedCancelled(Object.assign(new Error('x'), { cause: new CancelledFailure('Workflow canceled') })), false);
});
