import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../platform/config.js';
import { REPO_ROOT, parseYaml, requireTool } from './queries.js';
import type { YamlValue } from './queries.js';

/**
 * docker-compose.yml, the Dockerfile and the build they use, checked offline: Debian's docker-compose 1.29
 * validates and normalizes the compose file without a Docker engine (`bash scripts/ensure-tools.sh` installs it).
 */

const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');
const composeText = readFileSync(COMPOSE_FILE, 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'floodgate-compose-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Variables docker-compose.yml requires (`${NAME:?message}`). */
const REQUIRED = [...new Set([...composeText.matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]!))].sort();
/** Secrets: never written into the compose file, the image or .env.example with a value. */
const SECRETS = ['JWT_SECRET', 'ADMISSION_SECRET', 'TICKET_SECRET', 'POSTGRES_PASSWORD', 'GRAFANA_ADMIN_PASSWORD', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'SENDGRID_API_KEY'];
const THROWAWAY: Record<string, string> = {
  JWT_SECRET: 'throwaway-jwt-secret-for-compose-test',
  ADMISSION_SECRET: 'throwaway-admission-secret-for-compose',
  TICKET_SECRET: 'throwaway-ticket-secret-for-the-compose-test',
  POSTGRES_PASSWORD: 'throwawaypgpassword',
  GRAFANA_ADMIN_PASSWORD: 'throwaway-grafana-password',
};

/** Runs docker-compose on the repository's compose file with only `vars` for interpolation (no .env, no shell secrets). */
function compose(vars: Record<string, string>, ...args: string[]) {
  const bin = requireTool('docker-compose', process.env.PATH);
  const envFile = join(tmp, `env-${Object.keys(vars).join('-') || 'empty'}`);
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''));
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of [...SECRETS, ...REQUIRED]) delete env[name];
  const r = spawnSync(bin, ['--env-file', envFile, '-f', COMPOSE_FILE, ...args], { cwd: REPO_ROOT, env, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Map = { [k: string]: YamlValue };
function map(v: YamlValue | undefined, what: string): Map {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: expected a map, got ${JSON.stringify(v)}`);
  return v;
}
function strings(v: YamlValue | undefined): string[] {
  return Array.isArray(v) ? v.map((x) => String(x)) : [];
}

/** The normalized configuration (`docker-compose config`), parsed once; fails with the install hint without the tool. */
let parsed: { config: Map; services: Record<string, Map> } | undefined;
function stack() {
  if (!parsed) {
    const r = compose(THROWAWAY, 'config');
    if (r.status !== 0) throw new Error(`docker-compose config failed:\n${r.stderr}`);
    const config = map(parseYaml(r.stdout), 'config');
    const services = Object.fromEntries(Object.entries(map(config.services, 'services')).map(([k, v]) => [k, map(v, k)]));
    parsed = { config, services };
  }
  return parsed;
}

describe('docker-compose.yml', () => {
  it('docker-compose.replicas.yml adds a Postgres standby, a Redis replica and a Sentinel (profile "replicas"), and is valid with the main file', () => {
    const r = compose(THROWAWAY, '-f', 'docker-compose.replicas.yml', '--profile', 'replicas', 'config', '--services');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').filter((s) => ['postgres-standby', 'redis-replica', 'redis-sentinel'].includes(s)).sort())
      .toEqual(['postgres-standby', 'redis-replica', 'redis-sentinel']);
    expect(compose(THROWAWAY, '-f', 'docker-compose.replicas.yml', '--profile', 'replicas', 'config', '-q').status).toBe(0);
  });

  it('is valid (docker-compose config -q) with the required secrets set, and needs no other variable', () => {
    expect(REQUIRED).toEqual(['ADMISSION_SECRET', 'GRAFANA_ADMIN_PASSWORD', 'JWT_SECRET', 'POSTGRES_PASSWORD', 'TICKET_SECRET']);
    const r = compose(THROWAWAY, 'config', '-q');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr, 'every optional variable has a default').not.toMatch(/WARNING/i);
  });

  it.each(REQUIRED)('refuses to start without %s, saying to set it in .env', (name) => {
    const vars = { ...THROWAWAY };
    delete vars[name];
    const r = compose(vars, 'config', '-q');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`set ${name} in .env`);
  });

  it('runs the whole stack', () => {
    const { services } = stack();
    expect(Object.keys(services).sort()).toEqual(['api-1', 'api-2', 'grafana', 'lb', 'mail', 'migrate', 'postgres', 'prometheus', 'redis', 'workers']);
  });

  it('runs Redis with AOF every second and noeviction, on a named volume', () => {
    const { services } = stack();
    const redis = services.redis!;
    expect(redis.image).toBe('redis:7');
    const cmd = strings(redis.command).join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--appendfsync everysec');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(strings(redis.volumes).some((v) => /^redis-data:\/data/.test(v))).toBe(true);
    expect(strings(map(redis.healthcheck, 'redis.healthcheck').test).join(' ')).toContain('redis-cli ping');
  });

  it('runs Postgres 15 with pg_isready as its healthcheck', () => {
    const { services } = stack();
    const pg = services.postgres!;
    expect(pg.image).toBe('postgres:15');
    expect(strings(map(pg.healthcheck, 'postgres.healthcheck').test)).toContain('pg_isready');
  });

  it('gives every stateful service (named volume) and every app process a healthcheck', () => {
    const { services, config } = stack();
    const volumes = Object.keys(map(config.volumes, 'volumes'));
    const stateful = Object.entries(services)
      .filter(([, s]) => strings(s.volumes).some((v) => volumes.includes(v.split(':')[0]!)))
      .map(([name]) => name)
      .sort();
    expect(stateful).toEqual(['grafana', 'postgres', 'prometheus', 'redis']);
    for (const name of [...stateful, 'api-1', 'api-2', 'workers']) {
      const hc = map(services[name]!.healthcheck, `${name}.healthcheck`);
      expect(strings(hc.test).length, name).toBeGreaterThan(0);
      for (const k of ['interval', 'timeout', 'retries']) expect(hc[k], `${name}.healthcheck.${k}`).toBeDefined();
    }
    expect(strings(map(services['api-1']!.healthcheck, 'api').test).join(' ')).toContain('http://127.0.0.1:3000/health');
    expect(strings(map(services.workers!.healthcheck, 'workers').test).join(' ')).toContain('http://127.0.0.1:9100/metrics');
  });

  it('migrates once after Redis and Postgres are healthy, and starts the app after the migration succeeded', () => {
    const { services } = stack();
    const dependsOn = (name: string) =>
      Object.fromEntries(Object.entries(map(services[name]!.depends_on, `${name}.depends_on`)).map(([k, v]) => [k, map(v, k).condition]));
    expect(strings(services.migrate!.command)).toEqual(['node', 'dist/db/migrate-cli.js']);
    expect(services.migrate!.restart).toBe('no');
    expect(dependsOn('migrate')).toEqual({ redis: 'service_healthy', postgres: 'service_healthy' });
    for (const app of ['api-1', 'api-2', 'workers']) expect(dependsOn(app).migrate, app).toBe('service_completed_successfully');
    expect(dependsOn('lb')).toEqual({ 'api-1': 'service_healthy', 'api-2': 'service_healthy' });
  });

  it('runs two identical API instances and the workers from one image, configured through the environment', () => {
    const { services } = stack();
    expect(services['api-1']).toEqual(services['api-2']);
    const api = services['api-1']!;
    const workers = services.workers!;
    expect(strings(api.command)).toEqual(['node', '--max-semi-space-size=64', 'dist/api/main.js']);
    expect(strings(workers.command)).toEqual(['node', 'dist/workers/main.js']);
    for (const s of [api, workers, services.migrate!]) {
      expect(s.image).toBe('floodgate:local');
      expect(map(s.build, 'build').target).toBe('runtime');
    }
    const apiEnv = map(api.environment, 'api.environment');
    const workersEnv = map(workers.environment, 'workers.environment');
    const common = ['HOST', 'REDIS_URL', 'DATABASE_URL', 'JWT_SECRET', 'ADMISSION_SECRET', 'TICKET_SECRET', 'ALLOW_SIMULATED_PAYMENTS', 'KEY_NAMESPACE', 'LOG_LEVEL', 'PAYMENTS_PROVIDER', 'STRIPE_SECRET_KEY',
      'STRIPE_WEBHOOK_SECRET', 'MAIL_PROVIDER', 'SENDGRID_API_KEY', 'SMTP_URL', 'MAIL_FROM', 'OUTBOX_DIR', 'NODE_ENV'];
    for (const k of [...common, 'PORT', 'METRICS_PORT', 'TRUST_PROXY_HOPS']) expect(apiEnv[k], `api ${k}`).toBeDefined();
    for (const k of [...common, 'WORKERS', 'METRICS_PORT']) expect(workersEnv[k], `workers ${k}`).toBeDefined();
    expect(apiEnv).toMatchObject({ HOST: '0.0.0.0', PORT: '3000', NODE_ENV: 'production', REDIS_URL: 'redis://redis:6379', PAYMENTS_PROVIDER: 'simulated' });
    expect(apiEnv.DATABASE_URL).toBe(`postgres://floodgate:${THROWAWAY.POSTGRES_PASSWORD}@postgres:5432/floodgate`);
    for (const k of ['JWT_SECRET', 'ADMISSION_SECRET', 'TICKET_SECRET']) {
      expect(apiEnv[k], `${k} comes from .env`).toBe(THROWAWAY[k]);
      expect(workersEnv[k], `${k} comes from .env`).toBe(THROWAWAY[k]);
    }
    // behind lb: one trusted hop; /metrics on its own port, which Prometheus scrapes (not the public 3000)
    expect(apiEnv).toMatchObject({ TRUST_PROXY_HOPS: '1', METRICS_PORT: '9100', ALLOW_SIMULATED_PAYMENTS: 'false' });
    const prometheus = readFileSync(join(REPO_ROOT, 'grafana', 'prometheus.yml'), 'utf8');
    expect(prometheus).toContain("targets: ['api-1:9100', 'api-2:9100']");
    expect(prometheus).not.toMatch(/api-\d:3000/);
    expect(workersEnv).toMatchObject({
      // every worker: refund jobs are queued by the API and must be consumed
      WORKERS: 'persist,sweeper,admission,payment,notify,refund,reconcile,waitlist',
      METRICS_PORT: '9100',
      MAIL_PROVIDER: 'smtp',
      SMTP_URL: 'smtp://mail:1025',
      NODE_ENV: 'production',
    });
    const every = (list: string) => list.split(',').sort();
    expect(every(String(workersEnv.WORKERS)), 'the compose workers run every worker there is').toEqual(every(loadConfig({}).WORKERS));
  });

  it('balances api-1 and api-2 behind nginx on port 3000', () => {
    const { services } = stack();
    const lb = services.lb!;
    expect(lb.image).toBe('nginx:alpine');
    expect(strings(lb.volumes).some((v) => v.endsWith('docker/nginx.conf:/etc/nginx/nginx.conf:ro'))).toBe(true);
    expect(strings(lb.ports).some((p) => /(^|:)3000:3000(\/tcp)?$/.test(p))).toBe(true);
    const nginx = readFileSync(join(REPO_ROOT, 'docker', 'nginx.conf'), 'utf8');
    expect(nginx).toMatch(/server api-1:3000\b/);
    expect(nginx).toMatch(/server api-2:3000\b/);
    expect(nginx).toMatch(/listen 3000;/);
  });

  it('mounts the Prometheus config and rules, and Grafana provisioning and dashboards where they expect them', () => {
    const { services } = stack();
    const prom = strings(services.prometheus!.volumes);
    expect(prom.some((v) => v.endsWith('grafana/prometheus.yml:/etc/prometheus/prometheus.yml:ro'))).toBe(true);
    // prometheus.yml loads `alerts/floodgate.rules.yml` relative to itself.
    expect(prom.some((v) => v.endsWith('grafana/alerts:/etc/prometheus/alerts:ro'))).toBe(true);
    expect(strings(services.prometheus!.ports).some((p) => /9090:9090/.test(p))).toBe(true);

    const grafana = services.grafana!;
    const gv = strings(grafana.volumes);
    expect(gv.some((v) => v.endsWith('grafana/provisioning:/etc/grafana/provisioning:ro'))).toBe(true);
    expect(gv.some((v) => v.endsWith('grafana/dashboards:/var/lib/grafana/dashboards:ro'))).toBe(true);
    expect(map(grafana.environment, 'grafana.environment')).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' });
    expect(strings(grafana.ports).some((p) => /3001:3000/.test(p))).toBe(true);

    const mail = services.mail!;
    expect(mail.image).toBe('axllent/mailpit');
    expect(strings(mail.ports).join(' ')).toMatch(/1025:1025.*8025:8025|8025:8025.*1025:1025/);
  });

  it('never holds a secret value: only ${...} interpolation, and .env.example ships empty placeholders', () => {
    for (const name of SECRETS) {
      for (const m of composeText.matchAll(new RegExp(`^\\s*${name}:\\s*(.*)$`, 'gm'))) {
        expect(m[1], `${name} in docker-compose.yml`).toMatch(/^\$\{/);
      }
    }
    const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    for (const name of REQUIRED) expect(example, `.env.example lists ${name}`).toMatch(new RegExp(`^${name}=$`, 'm'));
    for (const name of SECRETS) {
      const line = new RegExp(`^${name}=(.*)$`, 'm').exec(example);
      expect(line?.[1] ?? '', `.env.example ${name} is an empty placeholder`).toBe('');
    }
  });
});

describe('Dockerfile and build', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

  it('builds in one stage and runs production dependencies and dist/ only, as a non-root user', () => {
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim AS build$/m);
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim AS runtime$/m);
    const [build, runtime] = dockerfile.split(/^FROM node:20-bookworm-slim AS runtime$/m) as [string, string];
    expect(build).toMatch(/^RUN npm ci\b/m);
    expect(build).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^ENV NODE_ENV=production$/m);
    expect(runtime).toMatch(/^USER (?!root\b|0\b)\S+$/m);
    expect(runtime).toMatch(/^EXPOSE 3000$/m);
    expect(runtime).toMatch(/^CMD \["node", ?"--max-semi-space-size=64", ?"dist\/api\/main\.js"\]$/m);
    for (const name of SECRETS) expect(dockerfile, name).not.toMatch(new RegExp(`^(ENV|ARG)\\s+${name}\\b`, 'm'));
  });

  it('keeps local state, secrets and build output out of the build context', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', '.data', '.tools', 'dist', '.git', 'bench/results', '.env']) expect(ignored, entry).toContain(entry);
  });

  it('npm run build compiles and then copies the Lua scripts (with includes/), the SQL migrations and the API reference bundle', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json && node scripts/copy-assets.mjs');
    const out = join(tmp, 'dist');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'copy-assets.mjs'), out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const listAll = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listAll(join(dir, e.name)) : [join(dir, e.name)]));
    const rel = (root: string, files: string[]) => files.map((f) => relative(root, f)).sort();
    const luaSources = rel(REPO_ROOT, listAll(join(REPO_ROOT, 'lua')).filter((f) => f.endsWith('.lua')));
    const sqlSources = rel(REPO_ROOT, listAll(join(REPO_ROOT, 'db', 'migrations')).filter((f) => f.endsWith('.sql')));
    expect(luaSources.some((f) => f.startsWith('lua/includes/'))).toBe(true);
    expect(rel(out, listAll(join(out, 'lua')))).toEqual(luaSources);
    expect(rel(out, listAll(join(out, 'db', 'migrations')))).toEqual(sqlSources);
    // /docs serves Scalar's bundle from dist/api/assets/ in the image (no dev dependencies there, no CDN)
    const bundle = readFileSync(join(out, 'api', 'assets', 'scalar-api-reference.js'));
    expect(bundle.equals(readFileSync(join(REPO_ROOT, 'node_modules', '@scalar', 'api-reference', 'dist', 'browser', 'standalone.js')))).toBe(true);
  });
});
