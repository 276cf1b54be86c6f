// Worker versioning: every sweep worker announces a Worker Deployment version, the deployment name
// (ROBUSTSBI_WORKER_DEPLOYMENT, default "robustsbi") and a build ID derived from the code version
// (ROBUSTSBI_BUILD_ID overrides it). Temporal's Worker Deployments are what it recommends now; the
// older build-ID compatibility sets (useVersioning / updateBuildIdCompatibility) are deprecated in
// SDK 1.24 and off by default on servers from 1.28 on.
//
// With ROBUSTSBI_WORKER_VERSIONING=on, Temporal routes tasks by version and every robustsbi workflow
// is AUTO_UPGRADE: when the deployment's current version changes (`temporal worker deployment
// set-current-version`), running sweeps and trials move to the new workers at their next workflow
// task, which is safe because every change to workflow code goes behind patched() (replay tests).
// PINNED would keep a week-long sweep on the old build until it ends, so the old workers could not
// be stopped mid-sweep. With versioning off (the default) the version only labels the pollers.
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { CodeVersion } from '../sbi/model-file.js';

export interface WorkerDeployment {
  deploymentName: string;
  buildId: string;
  versioning: boolean;
}

/**
 * The build ID of a code version: package version and 12 digits of the commit, "-dirty" kept, with
 * the characters Temporal's version strings reserve ("." joins deployment and build) replaced.
 */
export function buildIdOf(cv: CodeVersion): string {
  const commit = cv.commit
    ? `+${cv.commit.slice(0, 12)}${cv.commit.endsWith('-dirty') ? '-dirty' : ''}`
    : '';
  return `${cv.version}${commit}`.replace(/[^A-Za-z0-9_+-]/g, '_');
}

export function workerDeploymentOptions(d: WorkerDeployment): WorkerDeploymentOptions {
  const version = { deploymentName: d.deploymentName, buildId: d.buildId };
  return d.versioning
    ? { version, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' }
    : { version, useWorkerVersioning: false };
}
