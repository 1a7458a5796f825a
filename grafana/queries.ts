/**
 * Reading Floodgate's monitoring files from tests: the dashboards' PromQL, the alert rules, the metric names an
 * expression uses, and where the operations tools (promtool, docker-compose) are.
 *
 * No YAML package is a dependency, so `parseYaml` is a small parser for the block-style YAML these files use
 * (maps, sequences, plain and quoted scalars, `|`/`>` block scalars, `[]`/`{}`). It throws on what it does not
 * understand (anchors, complex flow collections) instead of guessing.
 */
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in grafana/). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DASHBOARDS_DIR = join(REPO_ROOT, 'grafana', 'dashboards');
export const ALERT_RULES_FILE = join(REPO_ROOT, 'grafana', 'alerts', 'floodgate.rules.yml');
export const ALERT_TESTS_FILE = join(REPO_ROOT, 'grafana', 'alerts', 'floodgate.rules.test.yml');
export const RUNBOOK_FILE = join(REPO_ROOT, 'docs', 'runbook.md');
/** Where `scripts/ensure-tools.sh` puts binaries. */
export const TOOLS_BIN = join(REPO_ROOT, '.tools', 'bin');

/**
 * Every metric family the application exports (histograms by family name, without `_bucket`/`_sum`/`_count`).
 * Dashboards and alerts may use only these. To be replaced by a live /metrics scrape once the app exports them all.
 */
export const EXPORTED_METRICS = [
  'floodgate_http_request_duration_seconds',
  'floodgate_client_page_seconds',
  'floodgate_hold_attempts_total',
  'floodgate_bookings_created_total',
  'floodgate_tickets_held_total',
  'floodgate_bookings_confirmed_total',
  'floodgate_tickets_sold_total',
  'floodgate_revenue_minor_units_total',
  'floodgate_bookings_cancelled_total',
  'floodgate_holds_expired_total',
  'floodgate_refunds_total',
  'floodgate_payments_total',
  'floodgate_payment_duration_seconds',
  'floodgate_time_to_book_seconds',
  'floodgate_notification_delay_seconds',
  'floodgate_notifications_total',
  'floodgate_sms_total',
  'floodgate_outbox_entries_applied_total',
  'floodgate_outbox_duplicates_total',
  'floodgate_outbox_backlog_entries',
  'floodgate_outbox_oldest_entry_age_seconds',
  'floodgate_persist_batch_duration_seconds',
  'floodgate_durable_refusals_total',
  'floodgate_outbox_quarantined_total',
  'floodgate_inventory_mismatch',
  'floodgate_reconcile_runs_total',
  'floodgate_failovers_total',
  'floodgate_failover_repairs_total',
  'floodgate_failover_recovery_seconds',
  'floodgate_queue_jobs',
  'floodgate_jobs_stalled_total',
  'floodgate_worker_errors_total',
  'floodgate_pg_lock_waits',
  'floodgate_pg_active_sessions',
  'floodgate_pg_deadlocks_total',
  'floodgate_waiting_room_joins_total',
  'floodgate_waitlist_joins_total',
  'floodgate_waitlist_offers_total',
  'floodgate_waitlist_offers_taken_total',
  'floodgate_waitlist_offers_expired_total',
  'floodgate_waiting_room_admitted_total',
  'floodgate_waiting_room_waiting',
  'floodgate_waiting_room_passes_outstanding',
  'floodgate_waiting_room_wait_seconds',
  'floodgate_waiting_room_passes_unused_total',
  'floodgate_waiting_room_held_share',
  'floodgate_waiting_room_active_cap_tickets',
  // prom-client's collectDefaultMetrics({ prefix: 'floodgate_process_' }) (prom-client 15)
  'floodgate_process_process_cpu_user_seconds_total',
  'floodgate_process_process_cpu_system_seconds_total',
  'floodgate_process_process_cpu_seconds_total',
  'floodgate_process_process_start_time_seconds',
  'floodgate_process_process_resident_memory_bytes',
  'floodgate_process_process_virtual_memory_bytes',
  'floodgate_process_process_heap_bytes',
  'floodgate_process_process_open_fds',
  'floodgate_process_process_max_fds',
  'floodgate_process_nodejs_eventloop_lag_seconds',
  'floodgate_process_nodejs_eventloop_lag_min_seconds',
  'floodgate_process_nodejs_eventloop_lag_max_seconds',
  'floodgate_process_nodejs_eventloop_lag_mean_seconds',
  'floodgate_process_nodejs_eventloop_lag_stddev_seconds',
  'floodgate_process_nodejs_eventloop_lag_p50_seconds',
  'floodgate_process_nodejs_eventloop_lag_p90_seconds',
  'floodgate_process_nodejs_eventloop_lag_p99_seconds',
  'floodgate_process_nodejs_active_resources',
  'floodgate_process_nodejs_active_resources_total',
  'floodgate_process_nodejs_active_handles',
  'floodgate_process_nodejs_active_handles_total',
  'floodgate_process_nodejs_active_requests',
  'floodgate_process_nodejs_active_requests_total',
  'floodgate_process_nodejs_heap_size_total_bytes',
  'floodgate_process_nodejs_heap_size_used_bytes',
  'floodgate_process_nodejs_external_memory_bytes',
  'floodgate_process_nodejs_heap_space_size_total_bytes',
  'floodgate_process_nodejs_heap_space_size_used_bytes',
  'floodgate_process_nodejs_heap_space_size_available_bytes',
  'floodgate_process_nodejs_version_info',
  'floodgate_process_nodejs_gc_duration_seconds',
] as const;

// ---------------------------------------------------------------------------------------------------- dashboards

export type GrafanaTarget = { refId?: string; expr?: string; datasource?: { type?: string; uid?: string }; [k: string]: unknown };
export type GrafanaPanel = {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string } | null;
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
  gridPos?: { h: number; w: number; x: number; y: number };
  [k: string]: unknown;
};
export type GrafanaDashboard = { uid: string; title: string; panels: GrafanaPanel[]; [k: string]: unknown };
export type PanelQuery = { dashboard: string; file: string; panel: string; refId: string; expr: string };

/** Absolute paths of the provisioned dashboard JSON files, sorted. */
export function dashboardFiles(dir = DASHBOARDS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

export function readDashboard(file: string): GrafanaDashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as GrafanaDashboard;
}

/** Every panel of a dashboard, including those nested in (collapsed) rows. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (panels: GrafanaPanel[] | undefined) => {
    for (const p of panels ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** Every PromQL expression of every panel target, with the dashboard uid and panel title it belongs to. */
export function dashboardQueries(files = dashboardFiles()): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const file of files) {
    const d = readDashboard(file);
    for (const p of allPanels(d)) {
      for (const t of p.targets ?? []) {
        if (typeof t.expr === 'string') {
          out.push({ dashboard: d.uid, file, panel: p.title ?? `panel ${p.id ?? '?'}`, refId: t.refId ?? '?', expr: t.expr });
        }
      }
    }
  }
  return out;
}

/** Grafana's built-in variables, replaced by plain durations so that an expression is valid PromQL. */
const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '30s',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
  __interval_ms: '30000',
};

/** Replaces Grafana variables (`$__rate_interval`, `${__range}`) by values; throws on an unknown variable. */
export function expandGrafanaVariables(expr: string): string {
  return expr.replace(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g, (whole, braced: string | undefined, plain: string | undefined) => {
    const name = (braced ?? plain)!;
    const value = GRAFANA_VARIABLES[name];
    if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in: ${expr}`);
    return value;
  });
}

// ---------------------------------------------------------------------------------------------------- alert rules

export type AlertRule = {
  group: string;
  alert: string;
  expr: string;
  for: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
};

function stringMap(v: YamlValue | undefined, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected a map`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new Error(`${where}.${k}: expected a string`);
    out[k] = x;
  }
  return out;
}

/** The alerting rules of a Prometheus rules file (recording rules are left out). */
export function alertRules(file = ALERT_RULES_FILE): AlertRule[] {
  const doc = parseYaml(readFileSync(file, 'utf8'));
  const groups = asMap(doc, file).groups;
  if (!Array.isArray(groups)) throw new Error(`${file}: expected groups: [...]`);
  const out: AlertRule[] = [];
  for (const g of groups) {
    const group = asMap(g, `${file} group`);
    const name = String(group.name);
    const rules = group.rules;
    if (!Array.isArray(rules)) throw new Error(`${file} group ${name}: expected rules: [...]`);
    for (const r of rules) {
      const rule = asMap(r, `${file} group ${name} rule`);
      if (typeof rule.alert !== 'string') continue;
      if (typeof rule.expr !== 'string') throw new Error(`${file} alert ${rule.alert}: expected expr`);
      out.push({
        group: name,
        alert: rule.alert,
        expr: rule.expr.trim(),
        for: typeof rule.for === 'string' ? rule.for : undefined,
        labels: stringMap(rule.labels, `${rule.alert}.labels`),
        annotations: stringMap(rule.annotations, `${rule.alert}.annotations`),
      });
    }
  }
  return out;
}

function asMap(v: YamlValue | undefined, where: string): { [k: string]: YamlValue } {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected a map`);
  return v;
}

// ---------------------------------------------------------------------------------------------------- PromQL names

const AGGREGATORS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio',
]);
/** Keywords followed by a parenthesised list of label names. */
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set([...LABEL_LIST_KEYWORDS, 'and', 'or', 'unless', 'atan2', 'bool', 'offset', 'inf', 'nan', 'le']);

type Token = { kind: 'ident' | 'punct' | 'other'; text: string };

function skipString(s: string, i: number): number {
  const quote = s[i]!;
  let j = i + 1;
  while (j < s.length && s[j] !== quote) j += quote !== '`' && s[j] === '\\' ? 2 : 1;
  if (j >= s.length) throw new Error(`unterminated string in: ${s}`);
  return j + 1;
}

/** Index after the bracket that closes the one at `i`, skipping strings. */
function skipBracket(s: string, i: number, open: string, close: string): number {
  let depth = 0;
  for (let j = i; j < s.length; ) {
    const c = s[j]!;
    if (c === '"' || c === "'" || c === '`') { j = skipString(s, j); continue; }
    if (c === open) depth++;
    else if (c === close && --depth === 0) return j + 1;
    j++;
  }
  throw new Error(`unbalanced ${open}${close} in: ${s}`);
}

function tokenize(expr: string, names: Set<string>): Token[] {
  const tokens: Token[] = [];
  const s = expr;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    const rest = s.slice(i);
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#') { const nl = s.indexOf('\n', i); i = nl < 0 ? s.length : nl; continue; }
    if (c === '"' || c === "'" || c === '`') { i = skipString(s, i); tokens.push({ kind: 'other', text: 'string' }); continue; }
    if (c === '{') {
      const end = skipBracket(s, i, '{', '}');
      // A selector may name its metric as a matcher: {__name__="x"}.
      const m = /__name__\s*=\s*"([^"]+)"/.exec(s.slice(i, end));
      if (m) names.add(m[1]!);
      i = end;
      continue;
    }
    if (c === '[') { i = skipBracket(s, i, '[', ']'); continue; }
    const variable = /^\$(?:\{[^}]*\}|\w+)/.exec(rest);
    if (variable) { i += variable[0].length; continue; }
    const number = /^(?:0x[0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(rest);
    if (number) { i += number[0].length; tokens.push({ kind: 'other', text: number[0] }); continue; }
    const ident = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(rest);
    if (ident) { i += ident[0].length; tokens.push({ kind: 'ident', text: ident[0] }); continue; }
    tokens.push({ kind: 'punct', text: c });
    i++;
  }
  return tokens;
}

/** The metric family a series name belongs to (histogram series lose `_bucket`, `_sum`, `_count`). */
export function metricFamily(name: string): string {
  return name.replace(/_(?:bucket|sum|count)$/, '');
}

/**
 * The metric families a PromQL expression reads, sorted: function and aggregation names, keywords, label names
 * (in matchers and in `by`/`without`/`on`/`ignoring`/`group_left` lists), strings, numbers, durations and Grafana
 * variables are not metrics.
 */
export function metricNamesIn(expr: string): string[] {
  const names = new Set<string>();
  const tokens = tokenize(expr, names);
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'ident') continue;
    const next = tokens[k + 1];
    const lower = t.text.toLowerCase();
    if (LABEL_LIST_KEYWORDS.has(lower) && next?.text === '(') {
      // skip the label list
      let depth = 0;
      for (k = k + 1; k < tokens.length; k++) {
        if (tokens[k]!.text === '(') depth++;
        else if (tokens[k]!.text === ')' && --depth === 0) break;
      }
      continue;
    }
    if (next?.text === '(') continue; // a function or an aggregation
    if (AGGREGATORS.has(t.text) && next?.kind === 'ident' && (next.text === 'by' || next.text === 'without')) continue;
    if (KEYWORDS.has(lower)) continue;
    names.add(t.text);
  }
  return [...new Set([...names].map(metricFamily))].sort();
}

// ---------------------------------------------------------------------------------------------------- tools

/** The executable `name`: `.tools/bin/<name>` (from scripts/ensure-tools.sh) first, then the PATH given. */
export function findTool(name: string, pathEnv: string | undefined): string | undefined {
  const dirs = [TOOLS_BIN, ...(pathEnv ?? '').split(delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Like findTool, but throws the instruction to install the tools when it is missing (tests fail, never skip). */
export function requireTool(name: string, pathEnv: string | undefined): string {
  const found = findTool(name, pathEnv);
  if (!found) throw new Error(`${name} not found in .tools/bin or on PATH: run \`bash scripts/ensure-tools.sh\` first`);
  return found;
}

// ---------------------------------------------------------------------------------------------------- YAML subset

export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };

type Line = { n: number; indent: number; text: string };

const MAP_KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#\-?:,[\]{}&*!|>%@`][^#]*?|-[^\s#][^#]*?)\s*:(?=\s|$)/;
const BLOCK_HEADER = /^([|>])([+-]?)\s*(#.*)?$/;

/** Parses the block-style YAML subset described at the top of this file. Every scalar is a string (or null). */
export function parseYaml(source: string): YamlValue {
  const raw = source.replace(/\r\n?/g, '\n').split('\n');
  const lines: (Line | undefined)[] = raw.map((text, n) => {
    const body = text.trimStart();
    if (body === '' || body.startsWith('#') || body === '---' || body === '...') return undefined;
    if (text.slice(0, text.length - body.length).includes('\t')) throw new Error(`line ${n + 1}: tab in indentation`);
    return { n, indent: text.length - body.length, text: body.trimEnd() };
  });
  let i = 0;
  const peek = (): Line | undefined => {
    while (i < lines.length && !lines[i]) i++;
    return lines[i];
  };
  const fail = (line: Line | undefined, msg: string): never => {
    throw new Error(`YAML line ${line ? line.n + 1 : 'EOF'}: ${msg}${line ? `: ${line.text}` : ''}`);
  };
  const isSeqItem = (text: string) => text === '-' || text.startsWith('- ');

  /** Lines after the current one that continue a scalar (more indented than `parentIndent`). */
  const continuation = (parentIndent: number): string[] => {
    const out: string[] = [];
    let j = i + 1;
    for (; j < raw.length; j++) {
      const text = raw[j]!;
      const body = text.trim();
      if (body === '') { out.push(''); continue; }
      if (text.length - text.trimStart().length <= parentIndent) break;
      out.push(body);
    }
    while (out.length && out[out.length - 1] === '') out.pop();
    return out;
  };

  /** A scalar starting on the current line (text `first`), possibly continued on more-indented lines. */
  const scalar = (first: string, parentIndent: number, line: Line): YamlValue => {
    let text = first;
    const more = continuation(parentIndent);
    const quote = text[0];
    if (more.length && quote !== '"' && quote !== "'") {
      // A more-indented `key:` or `- item` under a plain value is a structure error, not text.
      const bad = more.find((m) => isSeqItem(m) || MAP_KEY.test(m));
      if (bad !== undefined) fail(line, 'unexpected indentation');
    }
    if (more.length && (quote === '"' || quote === "'" || !/^[[{]/.test(text))) {
      // Multi-line flow scalar: lines fold into one, a blank line is a newline; `\` at a line end joins without a space.
      let joined = text;
      for (const m of more) {
        if (m === '') joined += '\n';
        else if (quote === '"' && joined.endsWith('\\') && !joined.endsWith('\\\\')) joined = joined.slice(0, -1) + m;
        else joined += (joined.endsWith('\n') ? '' : ' ') + m;
      }
      text = joined;
      i += more.length; // one entry of `more` per raw line
    }
    i++;
    return parseScalar(text, line);
  };

  const parseScalar = (text: string, line: Line): YamlValue => {
    if (text.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$/s.exec(text);
      if (!m) return fail(line, 'bad double-quoted string');
      return JSON.parse(`"${m[1]!.replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`) as string;
    }
    if (text.startsWith("'")) {
      const m = /^'((?:[^']|'')*)'\s*(?:#.*)?$/s.exec(text);
      if (!m) return fail(line, 'bad single-quoted string');
      return m[1]!.replace(/''/g, "'");
    }
    const plain = text.replace(/\s+#.*$/, '').trim();
    if (plain === '' || plain === '~' || plain === 'null') return null;
    if (plain === '[]') return [];
    if (plain === '{}') return {};
    if (plain.startsWith('[') && plain.endsWith(']') && !/[[\]{}]/.test(plain.slice(1, -1))) {
      return plain.slice(1, -1).split(',').map((x) => x.trim()).filter(Boolean).map((x) => parseScalar(x, line));
    }
    if (/^[[{&*!|>%@`]/.test(plain)) return fail(line, 'unsupported YAML (flow collection, anchor, alias or tag)');
    return plain;
  };

  const blockScalar = (parentIndent: number, style: string, chomp: string): string => {
    const body: string[] = [];
    let blockIndent = -1;
    let j = i + 1;
    for (; j < raw.length; j++) {
      const text = raw[j]!;
      if (text.trim() === '') { body.push(''); continue; }
      const indent = text.length - text.trimStart().length;
      if (indent <= parentIndent) break;
      if (blockIndent < 0) blockIndent = indent;
      if (indent < blockIndent) break;
      body.push(text.slice(blockIndent));
    }
    // Trailing blank lines are not content (unless kept with `+`).
    let trailing = 0;
    while (body.length && body[body.length - 1] === '') { body.pop(); trailing++; }
    i = j - trailing;
    let value: string;
    if (style === '|') value = body.join('\n');
    else {
      value = '';
      body.forEach((l, k) => {
        if (k === 0) value = l;
        else if (l === '' || body[k - 1] === '' || /^\s/.test(l)) value += '\n' + l;
        else value += ' ' + l;
      });
    }
    if (chomp === '-') return value;
    if (chomp === '+') return value + '\n'.repeat(trailing + 1);
    return body.length ? value + '\n' : '';
  };

  const parseBlock = (indent: number): YamlValue => {
    const line = peek();
    if (!line) return null;
    return isSeqItem(line.text) ? parseSeq(indent) : parseMap(indent);
  };

  const parseSeq = (indent: number): YamlValue[] => {
    const out: YamlValue[] = [];
    for (let line = peek(); line && line.indent === indent && isSeqItem(line.text); line = peek()) {
      const rest = line.text === '-' ? '' : line.text.slice(2).trimStart();
      if (rest === '' || rest.startsWith('#')) {
        i++;
        const next = peek();
        out.push(next && next.indent > indent ? parseBlock(next.indent) : null);
        continue;
      }
      const childIndent = indent + (line.text.length - rest.length);
      if (isSeqItem(rest) || MAP_KEY.test(rest)) {
        // The item's first line becomes a line of its own at the item's indentation.
        lines[i] = { n: line.n, indent: childIndent, text: rest };
        out.push(parseBlock(childIndent));
      } else {
        out.push(scalar(rest, indent, line));
      }
    }
    const after = peek();
    if (after && after.indent > indent) fail(after, 'unexpected indentation');
    return out;
  };

  const parseMap = (indent: number): { [key: string]: YamlValue } => {
    const out: { [key: string]: YamlValue } = {};
    for (let line = peek(); line && line.indent === indent && !isSeqItem(line.text); line = peek()) {
      const m = MAP_KEY.exec(line.text);
      if (!m) return fail(line, 'expected `key: value`');
      const key = String(parseScalar(m[1]!, line));
      if (Object.hasOwn(out, key)) fail(line, `duplicate key ${key}`);
      const rest = line.text.slice(m[0].length).trim();
      const header = BLOCK_HEADER.exec(rest);
      if (rest === '' || rest.startsWith('#')) {
        i++;
        const next = peek();
        if (next && (next.indent > indent || (next.indent === indent && isSeqItem(next.text)))) out[key] = parseBlock(next.indent);
        else out[key] = null;
      } else if (header) {
        out[key] = blockScalar(indent, header[1]!, header[2]!);
      } else {
        out[key] = scalar(rest, indent, line);
      }
    }
    const after = peek();
    if (after && after.indent > indent) fail(after, 'unexpected indentation');
    return out;
  };

  const first = peek();
  if (!first) return null;
  const doc = parseBlock(first.indent);
  const left = peek();
  if (left) fail(left, 'unexpected content');
  return doc;
}
