// Sets the search attributes of sweeps/search-attributes.ts on the running workflow. Upserting is a
// command in the history, so it sits behind SEARCH_ATTRIBUTES_PATCH: histories recorded before it
// replay without it. options.searchAttributes false (the client found them unregistered in the
// namespace, where an upsert would fail every workflow task) leaves them out.
import { patched, upsertSearchAttributes } from '@temporalio/workflow';
import { defineSearchAttributeKey, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { TrialConfig } from '../sweeps/types.js';
import type { SweepOptions, TrialsOutcome } from './messages.js';

export const SEARCH_ATTRIBUTES_PATCH = 'search-attributes-v1';

export const SA = {
  SweepId: defineSearchAttributeKey('SweepId', 'KEYWORD'),
  Task: defineSearchAttributeKey('Task', 'KEYWORD_LIST'),
  Defense: defineSearchAttributeKey('Defense', 'KEYWORD_LIST'),
  Beta: defineSearchAttributeKey('Beta', 'DOUBLE'),
  TrialStatus: defineSearchAttributeKey('TrialStatus', 'KEYWORD_LIST'),
};

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** true when this workflow sets search attributes (asks patched() once per call site). */
export function searchAttributesOn(options: Pick<SweepOptions, 'searchAttributes'>): boolean {
  return options.searchAttributes !== false && patched(SEARCH_ATTRIBUTES_PATCH);
}

/** The sweep's own: its ID, and the tasks and defenses it spans. */
export function sweepAttributes(
  sweepId: string,
  tasks: readonly string[],
  defenses: readonly string[],
): SearchAttributeUpdatePair[] {
  return [
    { key: SA.SweepId, value: sweepId },
    { key: SA.Task, value: unique(tasks) },
    { key: SA.Defense, value: unique(defenses) },
  ];
}

/** A trial (pack) workflow's, as its trials start. */
export function trialAttributes(
  sweepId: string,
  trials: readonly TrialConfig[],
): SearchAttributeUpdatePair[] {
  const betas = unique(trials.map((t) => t.defense.beta ?? 0));
  return [
    { key: SA.SweepId, value: sweepId },
    { key: SA.Task, value: unique(trials.map((t) => t.task)) },
    { key: SA.Defense, value: unique(trials.map((t) => t.defense.name)) },
    ...(betas.length === 1 ? [{ key: SA.Beta, value: betas[0]! }] : []),
    { key: SA.TrialStatus, value: ['running'] },
  ];
}

/** The endings the trials met. */
export function trialStatuses(o: TrialsOutcome): string[] {
  const s: string[] = [];
  if (o.completed.length) s.push('completed');
  if (o.skipped.length) s.push('skipped');
  if (o.failed.length) s.push('failed');
  if (o.cancelled.length) s.push('cancelled');
  return s;
}

export function upsert(pairs: SearchAttributeUpdatePair[]): void {
  upsertSearchAttributes(pairs);
}
