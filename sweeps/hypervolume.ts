// The 2-D front and its hypervolume, both objectives minimized. Pure (the search's proposer, its stop
// rule, the report and the bench share it); results/curves.ts paretoFront marks the same points.

export interface Point2 {
  x: number;
  y: number;
}

/** Min and max of each objective: what normalizes them to the unit square. */
export interface Bounds {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const finite = (p: Point2): boolean => Number.isFinite(p.x) && Number.isFinite(p.y);

/**
 * Indices of the non-dominated points by increasing x (then y). Exact duplicates of a front point
 * are left out but the first: they add nothing to the front. Non-finite points are never on it.
 */
export function frontIndices(points: readonly Point2[]): number[] {
  const idx = points
    .map((_, i) => i)
    .filter((i) => finite(points[i]!))
    .sort((a, b) => points[a]!.x - points[b]!.x || points[a]!.y - points[b]!.y || a - b);
  const out: number[] = [];
  let bestY = Infinity;
  for (const i of idx) {
    if (points[i]!.y < bestY) {
      out.push(i);
      bestY = points[i]!.y;
    }
  }
  return out;
}

/**
 * The exact area dominated by `points` and bounded by `ref` (a sweep over x: each front point adds
 * the slab between its y and the best y so far, from its x to ref.x). Points not below ref in both
 * objectives add nothing.
 */
export function hypervolume2d(points: readonly Point2[], ref: Point2): number {
  const inside = points.filter((p) => finite(p) && p.x < ref.x && p.y < ref.y);
  let area = 0;
  let bestY = ref.y;
  for (const i of frontIndices(inside)) {
    const p = inside[i]!;
    area += (ref.x - p.x) * (bestY - p.y);
    bestY = p.y;
  }
  return area;
}

/** The bounds of the finite points (a zero span is widened to 1, so normalizing never divides by 0). */
export function boundsOf(points: readonly Point2[]): Bounds | undefined {
  const f = points.filter(finite);
  if (f.length === 0) return undefined;
  const xs = f.map((p) => p.x);
  const ys = f.map((p) => p.y);
  const b = { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  if (!(b.x1 > b.x0)) b.x1 = b.x0 + 1;
  if (!(b.y1 > b.y0)) b.y1 = b.y0 + 1;
  return b;
}

export function normalize(p: Point2, b: Bounds): Point2 {
  return { x: (p.x - b.x0) / (b.x1 - b.x0), y: (p.y - b.y0) / (b.y1 - b.y0) };
}

/** The reference point of normalized hypervolumes: a margin past the worst value, as is usual. */
export const NORMALIZED_REF: Point2 = { x: 1.1, y: 1.1 };

/** Hypervolume of `points` normalized by `bounds`, against NORMALIZED_REF (at most 1.21). */
export function normalizedHypervolume(points: readonly Point2[], bounds: Bounds): number {
  return hypervolume2d(
    points.map((p) => normalize(p, bounds)),
    NORMALIZED_REF,
  );
}

/**
 * The normalized hypervolume after each round 0..last of a search, its points tagged with the round
 * that proposed them. The bounds are fixed by the first round that has points (so later rounds are
 * measured on the same scale: a point beyond them adds area past the unit square, a point past the
 * reference none). Rounds before it have hypervolume 0.
 */
export function hypervolumeByRound(points: readonly (Point2 & { round: number })[]): number[] {
  const f = points.filter(finite);
  if (f.length === 0) return [];
  const last = Math.max(...f.map((p) => p.round));
  const first = Math.min(...f.map((p) => p.round));
  const bounds = boundsOf(f.filter((p) => p.round === first))!;
  const out: number[] = [];
  for (let r = 0; r <= last; r++)
    out.push(
      normalizedHypervolume(
        f.filter((p) => p.round <= r),
        bounds,
      ),
    );
  return out;
}

/**
 * The stop rule: the hypervolume of the last round grew by less than `tolerance` over the `rounds`
 * rounds before it (false until that many rounds exist).
 */
export function hypervolumeStalled(
  hv: readonly number[],
  stop: { rounds: number; tolerance: number },
): boolean {
  const r = hv.length - 1;
  if (r - stop.rounds < 0) return false;
  return hv[r]! - hv[r - stop.rounds]! < stop.tolerance;
}
