// The smoke workflow: runs one activity that round-trips a document through MongoDB.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { SmokeActivities, SmokeReadBack } from '../activities/smoke.js';

const { writeAndReadBack } = proxyActivities<SmokeActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

export async function smokeWorkflow(input: { note: string }): Promise<SmokeReadBack> {
  const { workflowId } = workflowInfo();
  return writeAndReadBack({ id: workflowId, workflowId, note: input.note });
}
