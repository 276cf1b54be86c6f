// A small Prometheus registry: counters and histograms with labels, rendered in the text exposition
// format (version 0.0.4). Written here rather than taken from npm because robustsbi needs three
// metric kinds' worth of it and no dependency of the project brings one.

export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values escape backslash, double quote and newline; HELP text escapes backslash and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the format spells it: +Inf, -Inf, NaN, or the shortest decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

abstract class Metric {
  /** Label values joined by \u0000 -> the series' values. */
  protected readonly series = new Map<string, string[]>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`Metric name "${name}" is not a Prometheus name.`);
    for (const l of labelNames)
      if (!LABEL.test(l) || l.startsWith('__') || l === 'le')
        throw new Error(`Label name "${l}" of ${name} is not allowed.`);
    // A metric without labels has its one series from the start: a scrape shows it at zero.
    if (labelNames.length === 0) this.series.set('', []);
  }

  /** The series key of `labels`, which must name exactly the metric's labels. */
  protected key(labels: Labels): { key: string; values: string[] } {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || given.some((l) => !this.labelNames.includes(l)))
      throw new Error(
        `${this.name} takes the labels [${this.labelNames.join(', ')}], got [${given.join(', ')}].`,
      );
    const values = this.labelNames.map((l) => labels[l]!);
    const key = values.join('\u0000');
    if (!this.series.has(key)) this.series.set(key, values);
    return { key, values };
  }

  abstract readonly type: 'counter' | 'histogram';
  protected abstract samples(): string[];

  render(): string {
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...this.samples(),
    ].join('\n');
  }
}

export class Counter extends Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, number>();

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by))
      throw new Error(`${this.name} may only grow (by ${by}).`);
    const { key } = this.key(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(this.key(labels).key) ?? 0;
  }

  protected samples(): string[] {
    return [...this.series].map(
      ([k, vs]) =>
        `${this.name}${labelText(this.labelNames, vs)} ${formatValue(this.values.get(k) ?? 0)}`,
    );
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  private readonly states = new Map<string, HistogramState>();
  readonly buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    const b = [...buckets].filter(Number.isFinite);
    if (b.length === 0 || b.some((x, i) => i > 0 && x <= b[i - 1]!))
      throw new Error(`The buckets of ${name} must be finite and increasing.`);
    this.buckets = b;
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const { key } = this.key(labels);
    let s = this.states.get(key);
    if (!s) this.states.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    // Per-bucket (not cumulative) counts here; render() accumulates them.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  protected samples(): string[] {
    const out: string[] = [];
    for (const [k, vs] of this.series) {
      const s = this.states.get(k) ?? { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += s.counts[i]!;
        out.push(
          `${this.name}_bucket${labelText(this.labelNames, vs, `le="${formatValue(b)}"`)} ${cum}`,
        );
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, vs, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, vs)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, vs)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`Metric ${m.name} is registered twice.`);
    this.metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** The exposition text, each metric family once, ending with a newline. */
  render(): string {
    const parts = [...this.metrics.values()].map((m) => m.render());
    return parts.length ? parts.join('\n') + '\n' : '';
  }
}

/** The content type of the text format this module writes. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
