// The smoke path in-process against the test stack: worker + workflow + activity + MongoDB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { createLogger } from '../../infra/logger.js';
import { SMOKE_COLLECTION, type SmokeDoc } from '../../activities/smoke.js';
import { runSmoke } from '../../workers/smoke.js';
import { sharedStackEnv } from './harness.js';

test('the smoke workflow writes a document through its activity and reads it back', async () => {
  const config = loadConfig(sharedStackEnv());
  const logger = createLogger({ level: 'warn', console: false });
  const note = `integration ${Date.now()}`;
  const out = await runSmoke(config, logger, note);
  assert.equal(out.result.matches, true);
  assert.equal(out.result.id, out.workflowId);
  assert.equal(out.result.note, note);

  // Read it independently of the activity, with a fresh client.
  const mongo = mongoClient(config);
  try {
    const doc = await mongo
      .db(config.mongo.db)
      .collection<SmokeDoc>(SMOKE_COLLECTION)
      .findOne({ _id: out.workflowId });
    assert.equal(doc?.note, note);
    assert.equal(doc?.workflowId, out.workflowId);
  } finally {
    await mongo.close();
  }
  // And Temporal recorded the run as completed.
  const connection = await Connection.connect({ address: config.temporal.address });
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const desc = await client.workflow.getHandle(out.workflowId, out.runId).describe();
    assert.equal(desc.status.name, 'COMPLETED');
    assert.equal(desc.taskQueue, out.taskQueue);
  } finally {
    await connection.close();
  }
});
