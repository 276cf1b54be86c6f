// The defense names alone, without tfjs, for option parsing (`robustsbi --help` loads every command).
export const DEFENSE_NAMES = [
  'none',
  'fim',
  'fim-fast',
  'trades',
  'adversarial',
  'noise',
  'fim-exact',
  'fim-eigenvalue',
] as const;
export type DefenseName = (typeof DEFENSE_NAMES)[number];

export function isDefenseName(s: string): s is DefenseName {
  return (DEFENSE_NAMES as readonly string[]).includes(s);
}

/** Which of --beta / --train-eps each defense takes. */
export const DEFENSE_TAKES: Record<DefenseName, { beta: boolean; trainEps: boolean }> = {
  none: { beta: false, trainEps: false },
  fim: { beta: true, trainEps: false },
  'fim-fast': { beta: true, trainEps: false },
  trades: { beta: true, trainEps: true },
  adversarial: { beta: false, trainEps: true },
  noise: { beta: false, trainEps: true },
  'fim-exact': { beta: true, trainEps: false },
  'fim-eigenvalue': { beta: true, trainEps: false },
};
