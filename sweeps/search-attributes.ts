// The custom search attributes sweep and trial workflows carry, so that the Temporal UI, `temporal
// workflow list --query` and `robustsbi sweep list --query` find them (e.g. SweepId = 'x' AND
// TrialStatus = 'failed'). Names and types only (pure data): the workflows set them, the embedded dev
// server registers them at start, and a real cluster registers them once per namespace with
//   temporal operator search-attribute create --namespace NS --name SweepId --type Keyword
// (one command per entry below; README "Run it on a cluster").
export const SEARCH_ATTRIBUTES = {
  /** The sweep's ID; on the sweep workflow and on every trial (pack) workflow it starts. */
  SweepId: 'Keyword',
  /** The task(s) of the trials in the workflow. */
  Task: 'KeywordList',
  /** The defense name(s) of the trials in the workflow (none, fim, ...). */
  Defense: 'KeywordList',
  /** The FIM weight of the trials, when they share one (a pack of one always does). */
  Beta: 'Double',
  /** running while the trials run, then each ending they met: completed, skipped, failed, cancelled. */
  TrialStatus: 'KeywordList',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
