import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALERT_RULES_FILE,
  ALERT_TESTS_FILE,
  EXPORTED_METRICS,
  REPO_ROOT,
  RUNBOOK_FILE,
  allPanels,
  alertRules,
  dashboardFiles,
  dashboardQueries,
  expandGrafanaVariables,
  metricNamesIn,
  parseYaml,
  readDashboard,
  requireTool,
} from './queries.js';
import type { YamlValue } from './queries.js';

const tmp = mkdtempSync(join(tmpdir(), 'floodgate-grafana-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs promtool (failing with the install instruction when it is missing). */
function promtool(...args: string[]) {
  const bin = requireTool('promtool', process.env.PATH);
  const r = spawnSync(bin, args, { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const EXPECTED_DASHBOARDS: Record<string, string> = {
  'business.json': 'floodgate-business',
  'performance.json': 'floodgate-performance',
  'system-health.json': 'floodgate-system-health',
  'user-experience.json': 'floodgate-user-experience',
  'waiting-room.json': 'floodgate-waiting-room',
};

/** The seed's Critical Alerts table: alert name -> severity. */
const EXPECTED_ALERTS: Record<string, 'critical' | 'warning'> = {
  HighErrorRate: 'critical',
  HighP95Latency: 'warning',
  HighLockContention: 'warning',
  InventoryMismatch: 'critical',
  HighPaymentFailureRate: 'warning',
  // beyond the seed: a poison outbox entry was set aside (docs/runbook.md)
  OutboxEntryQuarantined: 'critical',
  // the seed's Mobile Performance KPI: phone page loads reported by the web app (issue 14)
  MobilePageLoadSlow: 'warning',
  // issue 15: the automatic recovery after a failover did not bring the mismatch back to 0 (docs/runbook.md)
  FailoverRecoveryStalled: 'critical',
};

const exported = new Set<string>(EXPORTED_METRICS);

function map(v: YamlValue | undefined): { [k: string]: YamlValue } {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`expected a map, got ${JSON.stringify(v)}`);
  return v;
}
function list(v: YamlValue | undefined): YamlValue[] {
  if (!Array.isArray(v)) throw new Error(`expected a list, got ${JSON.stringify(v)}`);
  return v;
}

describe('grafana/queries helpers', () => {
  it('metricNamesIn finds metric families and nothing else', () => {
    expect(
      metricNamesIn('histogram_quantile(0.95, sum by (le, route) (rate(floodgate_http_request_duration_seconds_bucket{route!~"/api/queue/[^/]+/events"}[5m])))'),
    ).toEqual(['floodgate_http_request_duration_seconds']);
    expect(
      metricNamesIn(
        'sum by (reason) (rate(a_total{x="sum(b)"}[$__rate_interval])) / on() group_left() sum(rate(b_total[30m])) > 0.5 and sum without (instance) (c) > 0',
      ),
    ).toEqual(['a_total', 'b_total', 'c']);
    expect(metricNamesIn('max(x offset 1h30m) * 60 unless count_values("v", y) or vector(1)')).toEqual(['x', 'y']);
    expect(metricNamesIn('rate(z_sum[1h:5m]) / rate(z_count[1h:5m]) + {__name__="up"} + 1e3 + inf')).toEqual(['up', 'z']);
    expect(metricNamesIn('label_replace(q, "dst", "$1", "src", "(.*)") > bool 2')).toEqual(['q']);
  });

  it('parseYaml reads the block-style YAML of rules files and docker-compose output', () => {
    const doc = parseYaml(
      [
        '# comment',
        'groups:',
        '  - name: g',
        '    rules:',
        '      - alert: A # trailing comment',
        '        expr: |',
        '          sum(x)',
        '            > 1',
        '',
        '        for: 5m',
        "        annotations: {}",
        'services:',
        '  api:',
        '    command:',
        '    - node',
        "    - 'fetch(''http://x'').then((r) => r.ok ? 0",
        "      : 1)'",
        '    environment:',
        '      A: "yes"',
        "      B: ''",
        '      C: [a, "b"]',
        '    folded: >-',
        '      one',
        '      two',
      ].join('\n'),
    );
    expect(doc).toEqual({
      groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'sum(x)\n  > 1\n', for: '5m', annotations: {} }] }],
      services: { api: { command: ['node', "fetch('http://x').then((r) => r.ok ? 0 : 1)"], environment: { A: 'yes', B: '', C: ['a', 'b'] }, folded: 'one two' } },
    });
    expect(() => parseYaml('a: &anchor x')).toThrow(/unsupported/);
    expect(() => parseYaml('a: 1\n    b: 2')).toThrow(/indentation/);
  });

  it('expandGrafanaVariables knows the built-in variables and refuses others', () => {
    expect(expandGrafanaVariables('rate(x[$__rate_interval]) + increase(y[${__range}])')).toBe('rate(x[1m]) + increase(y[1h])');
    expect(() => expandGrafanaVariables('x{instance="$instance"}')).toThrow(/unknown Grafana variable/);
  });
});

describe('dashboards', () => {
  const files = dashboardFiles();

  it('are the five seed KPI dashboards, with fixed and unique uids', () => {
    expect(files.map((f) => basename(f))).toEqual(Object.keys(EXPECTED_DASHBOARDS).sort());
    const uids = files.map((f) => readDashboard(f).uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const f of files) expect(readDashboard(f).uid, basename(f)).toBe(EXPECTED_DASHBOARDS[basename(f)]);
  });

  it.each(Object.keys(EXPECTED_DASHBOARDS))('%s parses and has titled panels with unique ids on the 24-column grid', (file) => {
    const d = readDashboard(join(REPO_ROOT, 'grafana', 'dashboards', file));
    expect(d.title).toMatch(/^Floodgate \/ /);
    const panels = allPanels(d);
    expect(panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(0);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, 'panel ids').toBe(ids.length);
    for (const p of panels) {
      expect(p.title, `panel ${p.id}`).toBeTruthy();
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.gridPos!.x + p.gridPos!.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('every panel and every query target uses the Prometheus datasource by uid', () => {
    for (const f of files) {
      for (const p of allPanels(readDashboard(f))) {
        if (!p.targets?.length) continue;
        expect(p.datasource?.uid, `${basename(f)} "${p.title}"`).toBe('prometheus');
        for (const t of p.targets) {
          expect(t.datasource?.uid, `${basename(f)} "${p.title}" ${t.refId}`).toBe('prometheus');
          expect(typeof t.expr === 'string' && t.expr.trim() !== '', `${basename(f)} "${p.title}" ${t.refId} has an expression`).toBe(true);
        }
      }
    }
  });

  it('every panel expression is valid PromQL (promtool check rules)', () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(40);
    // One group per query, so a parse error names its dashboard, panel and target.
    const rules = {
      groups: queries.map((q, n) => ({
        name: `${q.dashboard} / ${q.panel} / ${q.refId} #${n}`,
        rules: [{ record: 'floodgate_panel:check', expr: expandGrafanaVariables(q.expr) }],
      })),
    };
    const file = join(tmp, 'panels.rules.yml');
    writeFileSync(file, JSON.stringify(rules, null, 2)); // JSON is YAML
    const r = promtool('check', 'rules', '--lint=none', file);
    expect(r.output).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(r.status, r.output).toBe(0);
  });

  it('use only metrics the application exports, and every query reads one', () => {
    const unknown: string[] = [];
    for (const q of dashboardQueries()) {
      const names = metricNamesIn(q.expr);
      expect(names.length, `${q.dashboard} "${q.panel}" ${q.refId}: ${q.expr}`).toBeGreaterThan(0);
      for (const n of names) if (!exported.has(n)) unknown.push(`${q.dashboard} "${q.panel}": ${n}`);
    }
    expect(unknown).toEqual([]);
  });

  it('cover every exported application metric somewhere', () => {
    const used = new Set(dashboardQueries().flatMap((q) => metricNamesIn(q.expr)));
    const missing = EXPORTED_METRICS.filter((m) => !m.startsWith('floodgate_process_') && !used.has(m));
    expect(missing).toEqual([]);
  });

  it('are provisioned: the datasource has the fixed uid, the provider loads the mounted folder', () => {
    const ds = map(parseYaml(readFileSync(join(REPO_ROOT, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')));
    expect(ds.apiVersion).toBe('1');
    const [source] = list(ds.datasources).map(map);
    expect(source).toMatchObject({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' });

    const prov = map(parseYaml(readFileSync(join(REPO_ROOT, 'grafana/provisioning/dashboards/floodgate.yaml'), 'utf8')));
    expect(prov.apiVersion).toBe('1');
    const [provider] = list(prov.providers).map(map);
    expect(provider).toMatchObject({ type: 'file', folder: 'Floodgate' });
    expect(map(provider!.options).path).toBe('/var/lib/grafana/dashboards');
  });
});

describe('alert rules', () => {
  const rules = alertRules();

  it('implement the seed Critical Alerts table, with for, severity, summary, description and a runbook anchor', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(Object.keys(EXPECTED_ALERTS).sort());
    const runbook = readFileSync(RUNBOOK_FILE, 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => githubAnchor(m[1]!)));
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(r.labels.severity, r.alert).toBe(EXPECTED_ALERTS[r.alert]);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
      const url = r.annotations.runbook_url ?? '';
      expect(url, r.alert).toMatch(/^docs\/runbook\.md#[a-z0-9-]+$/);
      expect(anchors.has(url.split('#')[1]!), `${url} is a heading of docs/runbook.md`).toBe(true);
    }
  });

  it('use the seed thresholds and guard every ratio against an idle system', () => {
    const thresholds: Record<string, RegExp> = {
      HighErrorRate: /\) > 0\.05\s/,
      HighP95Latency: /histogram_quantile\(0\.95,[\s\S]*\) > 2\s/,
      HighLockContention: /\) > 0\.5\s/,
      InventoryMismatch: /floodgate_inventory_mismatch\) > 0$/,
      HighPaymentFailureRate: /\) > 0\.1\s/,
      OutboxEntryQuarantined: /^sum\(increase\(floodgate_outbox_quarantined_total\[15m\]\)\) > 0$/,
      MobilePageLoadSlow: /histogram_quantile\(0\.95,[\s\S]*device="mobile"[\s\S]*\) > 3\s/,
      FailoverRecoveryStalled: /^max\(floodgate_inventory_mismatch\) > 0\nand on\(\) sum\(increase\(floodgate_failovers_total\[15m\]\)\) > 0$/,
    };
    for (const r of rules) {
      expect(r.expr, r.alert).toMatch(thresholds[r.alert]!);
      if (r.expr.includes(' / ') || r.expr.includes('histogram_quantile')) expect(r.expr, r.alert).toMatch(/\n\s*and (?:sum(?: by \(\w+\) )?\(rate\([^)]+\)\)|max\(\w+\)) > 0$/);
    }
  });

  it('use only metrics the application exports', () => {
    for (const r of rules) {
      const names = metricNamesIn(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      expect(names.filter((n) => !exported.has(n)), r.alert).toEqual([]);
    }
  });

  it('pass promtool check rules (and the parser here reads the same rules promtool does)', () => {
    const r = promtool('check', 'rules', ALERT_RULES_FILE);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    // The expressions as parsed here are valid PromQL too (a parser slip would break them).
    const file = join(tmp, 'parsed.rules.yml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'parsed', rules: rules.map((x) => ({ alert: x.alert, expr: x.expr, for: x.for })) }] }));
    const again = promtool('check', 'rules', file);
    expect(again.status, again.output).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    const r = promtool('test', 'rules', ALERT_TESTS_FILE);
    expect(r.output).toContain('SUCCESS');
    expect(r.status, r.output).toBe(0);
  });

  it('each have unit tests that fire them and tests that keep them quiet', () => {
    const tests = list(map(parseYaml(readFileSync(ALERT_TESTS_FILE, 'utf8'))).tests).map(map);
    for (const alert of Object.keys(EXPECTED_ALERTS)) {
      const cases = tests.flatMap((t) => list(t.alert_rule_test ?? []).map(map)).filter((c) => c.alertname === alert);
      const fires = cases.filter((c) => Array.isArray(c.exp_alerts) && c.exp_alerts.length > 0);
      const quiet = cases.filter((c) => Array.isArray(c.exp_alerts) && c.exp_alerts.length === 0);
      expect(fires.length, `${alert}: a test where it fires`).toBeGreaterThan(0);
      expect(quiet.length, `${alert}: a test where it stays quiet`).toBeGreaterThan(0);
    }
  });

  it('are loaded by the Prometheus config of the compose stack (promtool check config)', () => {
    const r = promtool('check', 'config', join(REPO_ROOT, 'grafana', 'prometheus.yml'));
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS: 1 rule files found');
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    const text = readFileSync(join(REPO_ROOT, 'grafana', 'prometheus.yml'), 'utf8');
    for (const target of ['api-1:9100', 'api-2:9100', 'workers:9100']) expect(text).toContain(`'${target}'`);
  });
});

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
