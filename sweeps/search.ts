// The search's proposer: given the spec's search block and what the sweep has tried and measured,
// the next defense points to train. Pure and deterministic (a seeded generator, a fixed order
// everywhere), so a resumed or replayed sweep proposes the same points from the same history.
//
// Method "gaps": the front (test NLL against mean KL, both minimized and normalized by the observed
// ranges) is a chain of Pareto points; the next point goes where the chain's widest gap is, halfway
// in the searched parameters' normalized coordinates between the two Pareto neighbours bracketing it
// (for a log-scaled beta: the geometric mean). A batch takes gaps greedily, each taken gap splitting
// into two halves of half its length. Range ends come first, points already tried (dominated ones,
// failed ones) split an interval where they lie, and when no gap is left to split the rest of the
// batch is drawn at random. "random" draws uniformly in the normalized coordinates; "grid" lays the
// whole budget out evenly (log-spaced on log scales) in advance: the two baselines.
import { frontIndices, type Point2 } from './hypervolume.js';
import type { SearchChoice, SearchRange, SearchSpec, TrialDefense } from './types.js';

/** A trial the search holds: its ID, the round that proposed it (0: the grid) and its point. */
export interface SearchPoint {
  trialId: string;
  round: number;
  defense: TrialDefense;
}

/** A measured trial: its defense point and its two objectives (x = mean KL, y = test NLL). */
export interface SearchObservation {
  defense: TrialDefense;
  kl: number;
  nll: number;
}

export interface ProposeInput {
  search: SearchSpec;
  /** Every point the sweep holds already (grid, earlier proposals, failed ones too): never proposed again. */
  tried: readonly TrialDefense[];
  /** The completed trials' objectives. */
  observed: readonly SearchObservation[];
  /** The round being proposed (1 for the first), which seeds the random draws. */
  round: number;
  /** How many points to propose. */
  count: number;
  /** Grid method: the points the grid spreads over (the budget less the spec's own grid). */
  gridSize?: number;
}

const onScale = (scale: 'linear' | 'log', v: number): number =>
  scale === 'log' ? Math.log10(Math.max(v, 1e-300)) : v;

/**
 * An observation on the search's objective plane: x the KL, y the test NLL, each on its objective's
 * scale (a log KL by default). Gaps, fronts and hypervolumes are measured here.
 */
export function objectivePoint(
  search: Pick<SearchSpec, 'objectives'>,
  o: { kl: number; nll: number },
): Point2 {
  const scale = (m: string) => search.objectives.find((v) => v.metric === m)?.scale ?? 'linear';
  return { x: onScale(scale('kl'), o.kl), y: onScale(scale('testNll'), o.nll) };
}

/** Intervals narrower than this (in normalized coordinates) are not split further. */
export const RESOLUTION = 1e-3;
/**
 * Significant digits of a proposed value (0.1% apart, finer than RESOLUTION on any sane range):
 * values stay readable and equal points hash equal.
 */
const DIGITS = 4;

const PARAMS = ['beta', 'trainEps'] as const;
type Param = (typeof PARAMS)[number];

/** The ranged parameters of a choice, in a fixed order: its normalized coordinates. */
export function rangedParams(choice: SearchChoice): Param[] {
  return PARAMS.filter((p) => typeof choice[p] === 'object');
}

function fromUnit(r: SearchRange, u: number): number {
  const v =
    r.scale === 'log'
      ? Math.exp(Math.log(r.min) + u * (Math.log(r.max) - Math.log(r.min)))
      : r.min + u * (r.max - r.min);
  const rounded = Number(v.toPrecision(DIGITS));
  return Math.min(r.max, Math.max(r.min, rounded));
}

function toUnit(r: SearchRange, v: number): number {
  const u =
    r.scale === 'log'
      ? (Math.log(v) - Math.log(r.min)) / (Math.log(r.max) - Math.log(r.min))
      : (v - r.min) / (r.max - r.min);
  return u;
}

/** The defense point of `choice` at normalized coordinates `u` (one per ranged parameter). */
export function pointOf(choice: SearchChoice, u: readonly number[]): TrialDefense {
  const d: TrialDefense = { name: choice.defense };
  let k = 0;
  for (const p of PARAMS) {
    const v = choice[p];
    if (v === undefined) continue;
    d[p] = typeof v === 'number' ? v : fromUnit(v, u[k++]!);
  }
  if (choice.mcSamples !== undefined) d.mcSamples = choice.mcSamples;
  if (choice.probes !== undefined) d.probes = choice.probes;
  return d;
}

/**
 * The normalized coordinates of `d` under `choice`, or undefined when `d` is not one of its points
 * (another defense, another fixed value, a value outside a range).
 */
export function unitOf(choice: SearchChoice, d: TrialDefense): number[] | undefined {
  if (d.name !== choice.defense) return undefined;
  if (d.mcSamples !== choice.mcSamples || d.probes !== choice.probes) return undefined;
  const u: number[] = [];
  for (const p of PARAMS) {
    const v = choice[p];
    const got = d[p];
    if (v === undefined) {
      if (got !== undefined) return undefined;
    } else if (typeof v === 'number') {
      if (got !== v) return undefined;
    } else {
      if (got === undefined || got < v.min || got > v.max) return undefined;
      u.push(toUnit(v, got));
    }
  }
  return u;
}

/** A key equal for equal defense points. */
export function defenseKey(d: TrialDefense): string {
  return [d.name, d.beta, d.trainEps, d.mcSamples, d.probes].map((v) => v ?? '').join('|');
}

/** mulberry32 on a seed mixed from the search seed, the round and a stream number. */
function generator(seed: number, round: number, stream: number): () => number {
  let a =
    (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(round + 1, 0xc2b2ae35) ^ stream) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Collects proposals, refusing a point already tried or already proposed. */
class Batch {
  readonly out: TrialDefense[] = [];
  private readonly seen: Set<string>;
  constructor(
    tried: readonly TrialDefense[],
    readonly count: number,
  ) {
    this.seen = new Set(tried.map(defenseKey));
  }
  get full(): boolean {
    return this.out.length >= this.count;
  }
  has(d: TrialDefense): boolean {
    return this.seen.has(defenseKey(d));
  }
  add(d: TrialDefense): boolean {
    if (this.full || this.has(d)) return false;
    this.seen.add(defenseKey(d));
    this.out.push(d);
    return true;
  }
}

/** `k` points spread over a choice's unit cube: the ends first for one parameter, a lattice for two. */
function spread(dims: number, k: number): number[][] {
  if (dims === 0) return [[]];
  if (k <= 0) return [];
  if (dims === 1) {
    if (k === 1) return [[0.5]];
    const pts = Array.from({ length: k }, (_, i) => [i / (k - 1)]);
    // Ends first: a batch cut short still brackets the range.
    return [pts[0]!, pts[k - 1]!, ...pts.slice(1, k - 1)];
  }
  const side = Math.max(2, Math.ceil(Math.sqrt(k)));
  const out: number[][] = [];
  for (let i = 0; i < side && out.length < k; i++)
    for (let j = 0; j < side && out.length < k; j++) out.push([i / (side - 1), j / (side - 1)]);
  return out;
}

/** `total` points shared out over the choices: one for each fixed choice, the rest evenly. */
function allocate(space: readonly SearchChoice[], total: number): number[] {
  const ranged = space.map((c) => rangedParams(c).length > 0);
  const shares: number[] = space.map((_, i) => (ranged[i] ? 0 : 1));
  const nRanged = ranged.filter(Boolean).length;
  const rest = Math.max(0, total - shares.reduce((s, v) => s + v, 0));
  let k = 0;
  space.forEach((_, i) => {
    if (!ranged[i]) return;
    shares[i] = Math.floor(rest / nRanged) + (k < rest % nRanged ? 1 : 0);
    k++;
  });
  return shares;
}

function proposeRandom(input: ProposeInput, batch: Batch, stream: number): void {
  const rand = generator(input.search.seed, input.round, stream);
  const space = input.search.space;
  // Bounded: a space of fixed choices all tried has nothing left to draw.
  for (let tries = 0; !batch.full && tries < 100 * input.count + 100; tries++) {
    const choice = space[Math.min(space.length - 1, Math.floor(rand() * space.length))]!;
    const u = rangedParams(choice).map(() => rand());
    batch.add(pointOf(choice, u));
  }
}

/** The grid of `gridSize` points over the space (log-spaced on log scales), in a fixed order. */
export function gridPoints(space: readonly SearchChoice[], gridSize: number): TrialDefense[] {
  const shares = allocate(space, gridSize);
  const out: TrialDefense[] = [];
  space.forEach((c, i) => {
    const dims = rangedParams(c).length;
    const pts = dims === 0 ? [[]] : spread(dims, shares[i]!).sort((a, b) => a[0]! - b[0]!);
    for (const u of pts) out.push(pointOf(c, u));
  });
  return out;
}

interface Located {
  choice: number;
  u: number[];
  x: number;
  y: number;
}

interface Candidate {
  length: number;
  choice: number;
  /** One ranged parameter: split the widest stretch of [lo, hi] between tried points. */
  lo?: number;
  hi?: number;
  /** Two: the point itself. */
  u?: number[];
}

const dist = (a: Located, b: Located): number => Math.hypot(a.x - b.x, a.y - b.y);

/** The tried coordinates of each one-parameter choice, sorted. */
function triedCoordinates(space: readonly SearchChoice[], tried: readonly TrialDefense[]) {
  return space.map((c) =>
    rangedParams(c).length === 1
      ? tried
          .map((d) => unitOf(c, d))
          .filter((u): u is number[] => u !== undefined)
          .map((u) => u[0]!)
          .sort((a, b) => a - b)
      : [],
  );
}

/** For a gap between points of different choices: from `a` toward `b` along a's own parameter. */
function sideStep(a: Located, b: Located, mine: readonly Located[]): Candidate | undefined {
  const ua = a.u[0]!;
  const left = mine.filter((p) => p.u[0]! < ua).sort((p, q) => q.u[0]! - p.u[0]!)[0];
  const right = mine.filter((p) => p.u[0]! > ua).sort((p, q) => p.u[0]! - q.u[0]!)[0];
  const toward = (n: Located | undefined) => (n ? dist(n, b) < dist(a, b) : false);
  let other: number | undefined;
  if (toward(left)) other = left!.u[0];
  else if (toward(right)) other = right!.u[0];
  // Nothing measured on a side yet: that side's range end is the unexplored direction.
  else if (!left && ua > 0) other = 0;
  else if (!right && ua < 1) other = 1;
  if (other === undefined) return undefined;
  return {
    length: dist(a, b) / 2,
    choice: a.choice,
    lo: Math.min(ua, other),
    hi: Math.max(ua, other),
  };
}

function proposeGaps(input: ProposeInput, batch: Batch): void {
  const { space } = input.search;
  // Choices without any tried point start with their spread (ends first); fixed choices are one point.
  const untried = space
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => !input.tried.some((d) => unitOf(c, d) !== undefined));
  if (untried.length > 0) {
    const fresh = untried.map(({ c }) => c);
    const anyTried = untried.length < space.length;
    const shares = allocate(fresh, anyTried ? 2 * fresh.length : input.count);
    fresh.forEach((c, k) => {
      for (const u of spread(rangedParams(c).length, shares[k]!)) batch.add(pointOf(c, u));
    });
  }
  const coords = triedCoordinates(space, [...input.tried, ...batch.out]);
  // A one-parameter choice whose range ends were never tried gets them first.
  space.forEach((c, i) => {
    if (rangedParams(c).length !== 1 || coords[i]!.length === 0) return;
    if (coords[i]![0]! > 0) batch.add(pointOf(c, [0]));
    if (coords[i]![coords[i]!.length - 1]! < 1) batch.add(pointOf(c, [1]));
  });
  if (batch.full) return;

  // The observed points on the normalized objective plane, each located in its choice.
  const raw = input.observed
    .map((o) => ({ o, p: objectivePoint(input.search, o) }))
    .filter(({ p }) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .map(({ o, p }) => {
      const choice = space.findIndex((c) => unitOf(c, o.defense) !== undefined);
      return { choice, u: choice >= 0 ? unitOf(space[choice]!, o.defense)! : [], ...p };
    });
  const xs = raw.map((p) => p.x);
  const ys = raw.map((p) => p.y);
  const sx = Math.max(...xs) - Math.min(...xs) || 1;
  const sy = Math.max(...ys) - Math.min(...ys) || 1;
  const pts: Located[] = raw.map((p) => ({
    ...p,
    x: (p.x - Math.min(...xs)) / sx,
    y: (p.y - Math.min(...ys)) / sy,
  }));
  const front = frontIndices(pts).map((i) => pts[i]!);

  const candidates: Candidate[] = [];
  for (let k = 0; k + 1 < front.length; k++) {
    const a = front[k]!;
    const b = front[k + 1]!;
    const length = dist(a, b);
    if (a.choice >= 0 && a.choice === b.choice) {
      const dims = a.u.length;
      if (dims === 1)
        candidates.push({
          length,
          choice: a.choice,
          lo: Math.min(a.u[0]!, b.u[0]!),
          hi: Math.max(a.u[0]!, b.u[0]!),
        });
      else if (dims === 2)
        candidates.push({ length, choice: a.choice, u: a.u.map((v, j) => (v + b.u[j]!) / 2) });
      continue;
    }
    // Neighbours from different choices: walk each one-parameter side toward the other.
    for (const [p, q] of [
      [a, b],
      [b, a],
    ] as const) {
      if (p.choice < 0 || p.u.length !== 1) continue;
      const step = sideStep(
        p,
        q,
        pts.filter((o) => o.choice === p.choice),
      );
      if (step) candidates.push(step);
    }
  }

  // Greedy: the widest gap first; a split gap comes back as two halves of half its length.
  const queue = [...candidates];
  while (!batch.full && queue.length > 0) {
    let best = 0;
    for (let k = 1; k < queue.length; k++) if (queue[k]!.length > queue[best]!.length) best = k;
    const g = queue.splice(best, 1)[0]!;
    const choice = space[g.choice]!;
    if (g.u) {
      batch.add(pointOf(choice, g.u));
      continue;
    }
    // The widest stretch of [lo, hi] between tried points (dominated and failed ones included).
    const inside = coords[g.choice]!.filter((v) => v > g.lo! && v < g.hi!);
    const cuts = [g.lo!, ...inside, g.hi!];
    let w = 0;
    for (let k = 1; k + 1 < cuts.length; k++)
      if (cuts[k + 1]! - cuts[k]! > cuts[w + 1]! - cuts[w]!) w = k;
    const lo = cuts[w]!;
    const hi = cuts[w + 1]!;
    if (hi - lo < RESOLUTION) continue;
    const mid = (lo + hi) / 2;
    const point = pointOf(choice, [mid]);
    if (batch.add(point)) {
      coords[g.choice] = [...coords[g.choice]!, mid].sort((p, q) => p - q);
      queue.push({ length: g.length / 2, choice: g.choice, lo, hi: mid });
      queue.push({ length: g.length / 2, choice: g.choice, lo: mid, hi });
    } else if (!batch.full) {
      // The rounded midpoint is a tried value: mark it and let the halves compete again.
      coords[g.choice] = [...coords[g.choice]!, mid].sort((p, q) => p - q);
      queue.push({ ...g, length: g.length / 2 });
    }
  }
  if (!batch.full) proposeRandom(input, batch, 1);
}

/** The next points of the search, at most `count`, none of them tried before. */
export function proposeBatch(input: ProposeInput): TrialDefense[] {
  const batch = new Batch(input.tried, input.count);
  if (input.count <= 0) return [];
  switch (input.search.method) {
    case 'random':
      proposeRandom(input, batch, 0);
      break;
    case 'grid':
      for (const d of gridPoints(input.search.space, input.gridSize ?? input.search.budget))
        batch.add(d);
      break;
    default:
      proposeGaps(input, batch);
  }
  return batch.out;
}
