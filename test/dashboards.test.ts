import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointMetrics } from '@vigil/collector';
import { Metrics } from '@vigil/app';

// The Grafana dashboard and the alert rules in dashboards/ query Vigil's Prometheus metrics by
// name. These tests hold every name, suffix and label they use against the metrics a Vigil
// process actually registers, so that renaming a metric or a label breaks here, not on a
// dashboard that silently shows nothing.

const read = (file: string): string => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

interface MetricInfo {
  readonly type: string;
  readonly labels: readonly string[];
}
type Catalogue = ReadonlyMap<string, MetricInfo>;

interface Target {
  readonly expr: string;
  readonly legendFormat?: string;
  readonly refId: string;
}
interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly description?: string;
  readonly gridPos: GridPos;
  readonly collapsed?: boolean;
  readonly panels?: readonly Panel[];
  readonly datasource?: { readonly type: string; readonly uid: string };
  readonly targets?: readonly Target[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: unknown;
  readonly definition?: string;
  readonly multi?: boolean;
  readonly includeAll?: boolean;
}
interface Dashboard {
  readonly uid: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

/** Labels Prometheus attaches to every scraped series (the scrape target's). */
const TARGET_LABELS = ['instance', 'job'];
const METRIC = /\bvigil_[a-z0-9_]+/g;

/** The metrics of one process, registered as runRole registers them: one registry for both. */
async function registeredMetrics(): Promise<Catalogue> {
  const metrics = new Metrics();
  // Roles that run a sink put the checkpoint metrics on the same registry (checkpoint/setup.ts).
  new CheckpointMetrics(metrics.registry);
  // Roles that run a detector, and those that serve alerts, register these too.
  metrics.detectorObserver();
  metrics.watchOpenAlerts({ openBySeverity: () => Promise.resolve(new Map()) });
  const catalogue = new Map<string, MetricInfo>();
  for (const json of await metrics.registry.getMetricsAsJSON()) {
    const type = json.type as unknown;
    const metric = metrics.registry.getSingleMetric(json.name) as unknown as
      { labelNames?: unknown } | undefined;
    const labels = metric?.labelNames;
    // prom-client keeps the label names on the metric object; fail loudly if it stops doing so
    // rather than check labels against nothing.
    if (typeof type !== 'string' || !Array.isArray(labels))
      throw new Error(`prom-client no longer exposes the type and label names of ${json.name}`);
    catalogue.set(json.name, { type, labels: labels.map(String) });
  }
  return catalogue;
}

type Resolved =
  | { readonly ok: true; readonly metric: string; readonly info: MetricInfo; readonly le: boolean }
  | { readonly ok: false; readonly problem: string };

/** Maps a series name to its registered metric: histograms only through their suffixed series. */
function resolveSeries(series: string, catalogue: Catalogue): Resolved {
  const exact = catalogue.get(series);
  if (exact) {
    if (exact.type === 'histogram')
      return {
        ok: false,
        problem: `${series} is a histogram: query ${series}_bucket, _sum or _count`,
      };
    return { ok: true, metric: series, info: exact, le: false };
  }
  const suffixed = /^(.+)_(bucket|sum|count)$/.exec(series);
  if (suffixed) {
    const [, base, suffix] = suffixed as unknown as [string, string, string];
    const info = catalogue.get(base);
    if (info?.type === 'histogram')
      return { ok: true, metric: base, info, le: suffix === 'bucket' };
    if (info) return { ok: false, problem: `${series}: _${suffix} on ${base}, a ${info.type}` };
  }
  return { ok: false, problem: `${series} is not a metric Vigil registers` };
}

/** The text between the parenthesis at `open` and its match. */
function balanced(text: string, open: number): string | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  return undefined;
}

interface ExpressionRules {
  /** Range selectors allowed, e.g. only Grafana's $__rate_interval and $__range. */
  readonly window: RegExp;
  /** Every selector must filter on the dashboard's instance variable. */
  readonly instanceFilter: boolean;
}

/**
 * Problems of one PromQL expression: unknown series, histogram suffixes on other types, labels
 * in selectors and in `by (…)` that the metrics do not have, odd range windows, and legend
 * placeholders naming labels the result cannot have. Constructs this check cannot follow
 * (`without`, `on`, `ignoring`, `group_left`, `group_right`) are reported instead of skipped.
 */
function checkExpression(
  expr: string,
  catalogue: Catalogue,
  rules: ExpressionRules,
  legend = '',
): string[] {
  const problems: string[] = [];
  const where = `in ${expr}`;
  const labelsOf = (series: string): string[] | undefined => {
    const resolved = resolveSeries(series, catalogue);
    if (!resolved.ok) return undefined;
    return [...resolved.info.labels, ...TARGET_LABELS, ...(resolved.le ? ['le'] : [])];
  };

  const names = [...expr.matchAll(METRIC)].map((m) => m[0]);
  if (names.length === 0) problems.push(`no Vigil metric ${where}`);
  for (const name of names) {
    const resolved = resolveSeries(name, catalogue);
    if (!resolved.ok) problems.push(`${resolved.problem} ${where}`);
  }

  const unchecked = /\b(without|on|ignoring|group_left|group_right)\s*\(/.exec(expr);
  if (unchecked) problems.push(`"${unchecked[1]}" is not checked by this test ${where}`);

  // Selectors: vigil_x{label="…", …}
  let selectors = 0;
  for (const selector of expr.matchAll(/(vigil_[a-z0-9_]+)\s*\{([^}]*)\}/g)) {
    selectors++;
    const [, series, body] = selector as unknown as [string, string, string];
    const allowed = labelsOf(series);
    const matchers = [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"/g)];
    for (const [, label] of matchers as unknown as [string, string][]) {
      if (allowed && !allowed.includes(label))
        problems.push(`${series} has no label "${label}" ${where}`);
    }
    if (rules.instanceFilter && !/(^|,)\s*instance\s*=~\s*"\$instance"/.test(body))
      problems.push(`${series} is not filtered by instance=~"$instance" ${where}`);
  }
  if (rules.instanceFilter && selectors !== names.length)
    problems.push(`a metric without a selector (no instance filter) ${where}`);

  // Aggregations: agg by (labels) (argument); every metric of the argument must have the labels.
  const grouped = new Set<string>();
  for (const by of expr.matchAll(/\bby\s*\(([^)]*)\)\s*/g)) {
    const labels = (by[1] as string)
      .split(',')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    const open = (by.index ?? 0) + by[0].length;
    const argument = expr[open] === '(' ? balanced(expr, open) : undefined;
    if (argument === undefined) {
      problems.push(`write "agg by (…) (…)" with the by clause first ${where}`);
      continue;
    }
    for (const label of labels) {
      grouped.add(label);
      for (const series of [...argument.matchAll(METRIC)].map((m) => m[0])) {
        const allowed = labelsOf(series);
        if (allowed && !allowed.includes(label))
          problems.push(`by (${label}) over ${series}, which has no such label ${where}`);
      }
    }
    const buckets = [...argument.matchAll(METRIC)].some((m) => m[0].endsWith('_bucket'));
    if (buckets && !labels.includes('le'))
      problems.push(`by (…) over _bucket series without "le" ${where}`);
  }

  for (const window of expr.matchAll(/\[([^\]]*)\]/g)) {
    if (!rules.window.test(window[1] as string))
      problems.push(`range [${window[1]}] is not allowed ${where}`);
  }

  // Legend placeholders: labels the result keeps (the by labels when it aggregates).
  const resultLabels = grouped.size > 0 ? [...grouped] : names.flatMap((n) => labelsOf(n) ?? []);
  for (const placeholder of legend.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
    const label = placeholder[1] as string;
    if (label !== 'le' && !resultLabels.includes(label))
      problems.push(`legend {{${label}}} is not a label of the result ${where}`);
  }
  return problems;
}

function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function overlaps(a: GridPos, b: GridPos): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function layoutProblems(panels: readonly Panel[]): string[] {
  const problems: string[] = [];
  for (const { id, gridPos: g } of panels) {
    const whole = [g.x, g.y, g.w, g.h].every((n) => Number.isInteger(n));
    if (!whole || g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24)
      problems.push(`panel ${id} lies outside the 24-column grid: ${JSON.stringify(g)}`);
  }
  for (let i = 0; i < panels.length; i++) {
    for (let j = i + 1; j < panels.length; j++) {
      const a = panels[i] as Panel;
      const b = panels[j] as Panel;
      if (overlaps(a.gridPos, b.gridPos)) problems.push(`panels ${a.id} and ${b.id} overlap`);
    }
  }
  return problems;
}

/** The `expr:` of every rule in the fenced YAML of a Markdown file (plain or block scalars). */
function alertExpressions(markdown: string): string[] {
  const exprs: string[] = [];
  for (const block of markdown.matchAll(/```ya?ml\n([\s\S]*?)```/g)) {
    const lines = (block[1] as string).split('\n');
    lines.forEach((line, index) => {
      const match = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(line);
      if (!match) return;
      const [, indent, rest] = match as unknown as [string, string, string];
      if (!/^[|>][-+]?$/.test(rest.trim())) {
        exprs.push(rest.trim());
        return;
      }
      const body: string[] = [];
      for (const next of lines.slice(index + 1)) {
        if (next.trim() !== '' && next.search(/\S/) <= indent.length) break;
        body.push(next.trim());
      }
      exprs.push(body.join(' ').trim());
    });
  }
  return exprs;
}

const DASHBOARD_RULES: ExpressionRules = {
  window: /^\$__(rate_interval|range)$/,
  instanceFilter: true,
};
const ALERT_RULES: ExpressionRules = {
  window: /^\d+[smh]$/,
  instanceFilter: false,
};

describe('dashboards/vigil-operations.json', () => {
  const dashboard = JSON.parse(read('dashboards/vigil-operations.json')) as Dashboard;
  const panels = allPanels(dashboard);
  const graphs = panels.filter((p) => p.type !== 'row');
  let catalogue: Catalogue;
  beforeAll(async () => {
    catalogue = await registeredMetrics();
  });

  it('is a schema 39 dashboard with a Prometheus data source and an instance variable', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.uid).toBe('vigil-operations');
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const instance = variables.get('instance');
    expect(instance).toMatchObject({ type: 'query', multi: true, includeAll: true });
    const query = 'label_values(vigil_events_accepted_total, instance)';
    expect(instance?.definition).toBe(query);
    expect(instance?.query).toMatchObject({ query });
    expect(catalogue.has('vigil_events_accepted_total')).toBe(true);
  });

  it('queries only metrics, suffixes and labels that Vigil registers', () => {
    const problems = graphs.flatMap((panel) =>
      (panel.targets ?? []).flatMap((t) =>
        checkExpression(t.expr, catalogue, DASHBOARD_RULES, t.legendFormat).map(
          (p) => `panel ${panel.id} "${panel.title}": ${p}`,
        ),
      ),
    );
    expect(problems).toEqual([]);
  });

  it('shows every metric Vigil defines (the default process metrics aside)', () => {
    const used = new Set(
      graphs
        .flatMap((p) => p.targets ?? [])
        .flatMap((t) => [...t.expr.matchAll(METRIC)].map((m) => m[0]))
        .map((series) => {
          const resolved = resolveSeries(series, catalogue);
          return resolved.ok ? resolved.metric : series;
        }),
    );
    const own = [...catalogue.keys()].filter((name) => !name.startsWith('vigil_process_'));
    expect(own.filter((name) => !used.has(name))).toEqual([]);
  });

  it('gives every panel a description, the data source variable and queries', () => {
    for (const panel of graphs) {
      expect(panel.description?.length ?? 0, `panel ${panel.id}`).toBeGreaterThan(40);
      expect(panel.datasource, `panel ${panel.id}`).toEqual({
        type: 'prometheus',
        uid: '${datasource}',
      });
      const targets = panel.targets ?? [];
      expect(targets.length, `panel ${panel.id}`).toBeGreaterThan(0);
      const refIds = targets.map((t) => t.refId);
      expect(new Set(refIds).size, `panel ${panel.id}`).toBe(refIds.length);
    }
  });

  it('has unique panel ids and a layout without overlaps', () => {
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(layoutProblems(dashboard.panels)).toEqual([]);
    for (const row of dashboard.panels.filter((p) => p.collapsed))
      expect(layoutProblems(row.panels ?? [])).toEqual([]);
  });
});

describe('dashboards/README.md', () => {
  const readme = read('dashboards/README.md');
  let catalogue: Catalogue;
  beforeAll(async () => {
    catalogue = await registeredMetrics();
  });

  it('suggests alert rules that query registered metrics and labels', () => {
    const exprs = alertExpressions(readme);
    expect(exprs.length).toBeGreaterThanOrEqual(6);
    const problems = exprs.flatMap((e) => checkExpression(e, catalogue, ALERT_RULES));
    expect(problems).toEqual([]);
    const all = exprs.join('\n');
    for (const metric of [
      'vigil_consumer_lag_records',
      'vigil_checkpoint_failures_total',
      'vigil_witness_dropped_total',
      'vigil_chain_issues_total',
      'vigil_events_rejected_total',
      'vigil_http_request_duration_seconds_count',
    ])
      expect(all).toContain(metric);
    expect(all).toMatch(/route="\/v1\/events"[^}]*status=~"5\.\."/);
  });

  it('names only metrics that exist', () => {
    const problems: string[] = [];
    for (const [name] of readme.matchAll(METRIC)) {
      if (name.endsWith('_')) {
        if (![...catalogue.keys()].some((k) => k.startsWith(name)))
          problems.push(`no metric starts with ${name}`);
        continue;
      }
      const resolved = resolveSeries(name, catalogue);
      if (!resolved.ok && catalogue.get(name)?.type !== 'histogram')
        problems.push(resolved.problem);
    }
    expect(problems).toEqual([]);
  });
});

describe('the checks themselves', () => {
  let catalogue: Catalogue;
  beforeAll(async () => {
    catalogue = await registeredMetrics();
  });
  const check = (expr: string, legend?: string): string[] =>
    checkExpression(expr, catalogue, DASHBOARD_RULES, legend);
  const I = 'instance=~"$instance"';

  it('pass a correct expression', () => {
    expect(
      check(
        `histogram_quantile(0.99, sum by (le, route) (rate(vigil_http_request_duration_seconds_bucket{${I}}[$__rate_interval])))`,
        '{{route}}',
      ),
    ).toEqual([]);
  });

  it.each([
    [
      'a renamed metric',
      `rate(vigil_events_acepted_total{${I}}[$__rate_interval])`,
      '',
      'not a metric',
    ],
    [
      'a suffix on a counter',
      `rate(vigil_events_accepted_total_count{${I}}[$__rate_interval])`,
      '',
      '_count on',
    ],
    [
      'a histogram without suffix',
      `rate(vigil_log_append_seconds{${I}}[$__rate_interval])`,
      '',
      'is a histogram',
    ],
    [
      'an unknown by label',
      `sum by (tenant) (rate(vigil_events_rejected_total{${I}}[$__rate_interval]))`,
      '',
      'by (tenant)',
    ],
    [
      'an unknown selector label',
      `rate(vigil_events_rejected_total{${I}, code="x"}[$__rate_interval])`,
      '',
      'no label "code"',
    ],
    [
      'buckets without le',
      `histogram_quantile(0.99, sum by (route) (rate(vigil_http_request_duration_seconds_bucket{${I}}[$__rate_interval])))`,
      '',
      'without "le"',
    ],
    [
      'a legend label the result lacks',
      `sum by (reason) (rate(vigil_events_rejected_total{${I}}[$__rate_interval]))`,
      '{{kind}}',
      'legend {{kind}}',
    ],
    [
      'a missing instance filter',
      `rate(vigil_events_accepted_total[$__rate_interval])`,
      '',
      'instance',
    ],
    ['a fixed range', `rate(vigil_events_accepted_total{${I}}[5m])`, '', 'range [5m]'],
    [
      'an unchecked construct',
      `sum without (reason) (rate(vigil_events_rejected_total{${I}}[$__rate_interval]))`,
      '',
      '"without"',
    ],
  ])('catch %s', (_what, expr, legend, problem) => {
    expect(check(expr, legend)).toContainEqual(expect.stringContaining(problem));
  });

  it('catch overlapping panels', () => {
    const panel = (id: number, x: number, y: number): Panel => ({
      id,
      type: 'timeseries',
      title: String(id),
      gridPos: { x, y, w: 12, h: 8 },
    });
    expect(layoutProblems([panel(1, 0, 0), panel(2, 12, 0)])).toEqual([]);
    expect(layoutProblems([panel(1, 0, 0), panel(2, 6, 4)])).not.toEqual([]);
    expect(layoutProblems([panel(1, 16, 0)])).not.toEqual([]);
  });
});
