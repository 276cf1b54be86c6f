// `robustsbi sweep list` filters: the flags become a Temporal visibility query over the search
// attributes of sweeps/search-attributes.ts, joined with AND to a raw --query when both are given.
import { UserError } from './errors.js';

export interface ListFilters {
  query?: string;
  sweepId?: string;
  trialStatus?: string;
  task?: string;
  defense?: string;
}

const FLAG_OF: Record<Exclude<keyof ListFilters, 'query'>, [string, string]> = {
  sweepId: ['--sweep-id', 'SweepId'],
  trialStatus: ['--trial-status', 'TrialStatus'],
  task: ['--task', 'Task'],
  defense: ['--defense', 'Defense'],
};

/** The visibility query of `f`, or undefined when no filter is given (list from MongoDB then). */
export function visibilityQuery(f: ListFilters): string | undefined {
  const parts: string[] = [];
  for (const [k, [flag, attr]] of Object.entries(FLAG_OF) as [
    keyof typeof FLAG_OF,
    [string, string],
  ][]) {
    const v = f[k];
    if (v === undefined) continue;
    if (!/^[A-Za-z0-9_.:+-]+$/.test(v))
      throw new UserError(
        `${flag} may hold letters, digits and "_ . : + -" only (got "${v}"); use --query for anything else.`,
      );
    parts.push(`${attr} = '${v}'`);
  }
  if (f.query !== undefined) {
    if (f.query.trim() === '') throw new UserError('--query must not be empty.');
    parts.unshift(parts.length ? `(${f.query})` : f.query);
  }
  return parts.length ? parts.join(' AND ') : undefined;
}
