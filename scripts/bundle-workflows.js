// Prebuilds the workflow bundle so a (re)started worker polls within a second instead of
// running webpack at every start.
const { bundleWorkflowCode } = require('@temporalio/worker');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

async function run() {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve(path.resolve(__dirname, '../dist/src/workflows')),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  writeFileSync(path.resolve(__dirname, '../dist/workflow-bundle.js'), code);
}
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
