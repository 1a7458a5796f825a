import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devToken } from '../scripts/dev-token.js';
import { TEST_DATABASE_URL } from '../test/env.js';
import { REPO_ROOT, parseYaml, requireTool, type YamlValue } from './queries.js';

/**
 * docker-compose.yml, run without Docker (none runs here): every service that can run on this machine is started
 * with its own command, environment and healthcheck from the normalized compose file (`docker-compose config`, with
 * .env.example filled in as `cp .env.example .env` would be), and must become healthy.
 *
 * Started for real:
 *   redis            redis-server with the service's command (AOF, noeviction), its volume a temporary folder
 *   migrate          `node dist/db/migrate-cli.js` on the image's build (`tsc -p tsconfig.build.json` + copy-assets,
 *                    as the Dockerfile's `npm run build`), in a folder of its own; must exit 0
 *   api-1, api-2     `node --max-semi-space-size=64 dist/api/main.js` (NODE_ENV=production: the config guards run)
 *   workers          `node dist/workers/main.js` with the service's WORKERS
 *   lb               nginx (Debian's, from scripts/ensure-tools.sh) with docker/nginx.conf
 * Mapped, as Docker's network and volumes would: compose hostnames and ports to spare 127.0.0.1 ports; HOST 0.0.0.0
 * to 127.0.0.1; /app/.outbox to a temporary folder; `postgres` to the machine's Postgres 15 (user postgres, a
 * database created and dropped here; the password and the `floodgate` role of the image are not used).
 * Not started here, said plainly:
 *   postgres         the postgres:15 image's own server (the local Postgres 15 stands in; its healthcheck
 *                    pg_isready runs against it)
 *   prometheus       only `promtool check config` on its config, and its scrape targets checked against the
 *                    services' METRICS_PORT, which are scraped here
 *   grafana          not installable from Debian; its provisioning is checked by grafana/grafana.test.ts
 *   mail             mailpit is not in Debian; the workers do not connect to SMTP until they send
 */

const SECRETS: Record<string, string> = {
  JWT_SECRET: 'run-test-jwt-secret-5d1f0c9e7b3a2846',
  ADMISSION_SECRET: 'run-test-admission-secret-8e4b2a7c1f93',
  TICKET_SECRET: 'run-test-ticket-secret-3c9a7e1b5d20f864',
  POSTGRES_PASSWORD: 'runtestpgpassword',
  GRAFANA_ADMIN_PASSWORD: 'run-test-grafana-password',
};

type Map = { [k: string]: YamlValue };
const asMap = (v: YamlValue | undefined, what: string): Map => {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: expected a map`);
  return v;
};
const strings = (v: YamlValue | undefined): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

const tmp = mkdtempSync(join(tmpdir(), 'floodgate-compose-run-'));
// the build lives inside the checkout so that dist/ finds node_modules, as in the image (/app/dist, /app/node_modules)
const buildRoot = join(REPO_ROOT, '.tools', `compose-run-${randomBytes(4).toString('hex')}`);
const database = `fg_compose_${randomBytes(4).toString('hex')}`;
const DATABASE_URL = TEST_DATABASE_URL.replace(/\/[^/]*$/, `/${database}`);

/**
 * A free port in 23000-29999: below the ephemeral range (so no client connection takes it before the service binds it),
 * and apart from test/cluster.test.ts's nodes (20000-22700) and their bus ports (30000-32700).
 */
async function sparePort(): Promise<number> {
  for (;;) {
    const port = 23000 + Math.floor(Math.random() * 7000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

type Proc = { name: string; child: ChildProcess; output: () => string; exited: Promise<number | null> };
const procs: Proc[] = [];
function start(name: string, command: string[], env: Record<string, string>, cwd: string): Proc {
  const child = spawn(command[0]!, command.slice(1), { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const p = { name, child, output: () => out, exited };
  procs.push(p);
  return p;
}

/** Runs a healthcheck `test` of the compose file (CMD or CMD-SHELL), with hostnames and ports rewritten; true on exit 0. */
function healthy(test: string[], rewrite: (s: string) => string): boolean {
  const [kind, ...rest] = test;
  const argv = kind === 'CMD-SHELL' ? ['sh', '-c', rewrite(rest.join(' '))] : rest.map(rewrite);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 5000, env: { PATH: `${join(REPO_ROOT, '.tools', 'bin')}:${process.env.PATH}` } });
  return r.status === 0;
}

/** Polls a healthcheck until it passes (the compose file's retries x interval, at most `ms`), failing with the log. */
async function becomesHealthy(name: string, test: string[], rewrite: (s: string) => string, proc?: Proc, ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (healthy(test, rewrite)) return;
    if (proc && proc.child.exitCode !== null) throw new Error(`${name} exited with ${proc.child.exitCode} before it was healthy:\n${proc.output()}`);
    if (Date.now() > until) throw new Error(`${name} not healthy after ${ms} ms:\n${proc?.output() ?? ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let services: Record<string, Map> = {};
const port: Record<string, number> = {};

/** The compose environment of a service with Docker's network and volumes mapped to this machine. */
function envOf(service: string, ports: { public?: number; metrics?: number }): Record<string, string> {
  const env = Object.fromEntries(Object.entries(asMap(services[service]!.environment, `${service}.environment`)).map(([k, v]) => [k, String(v ?? '')]));
  const mapped: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    let value = v
      .replace(/^redis:\/\/redis:6379/, `redis://127.0.0.1:${port.redis}`)
      .replace(/^postgres:\/\/[^@]+@postgres:5432\/floodgate$/, DATABASE_URL)
      .replace(/^smtp:\/\/mail:1025/, `smtp://127.0.0.1:${port.mail}`);
    if (k === 'HOST' && value === '0.0.0.0') value = '127.0.0.1';
    if (k === 'PORT' && ports.public) value = String(ports.public);
    if (k === 'METRICS_PORT' && ports.metrics) value = String(ports.metrics);
    if (k === 'OUTBOX_DIR' && value === '/app/.outbox') value = join(tmp, `outbox-${service}`);
    mapped[k] = value;
  }
  // nothing may still point at a compose hostname
  const left = Object.entries(mapped).filter(([, v]) => /(^|[/@])(redis|postgres|mail|api-\d|workers)(:\d+)?([/]|$)/.test(v));
  if (left.length) throw new Error(`${service}: unmapped compose hostnames in ${JSON.stringify(left)}`);
  return mapped;
}

const healthcheck = (service: string) => strings(asMap(services[service]!.healthcheck, `${service}.healthcheck`).test);

describe('docker-compose.yml, every service run on this machine', () => {
  beforeAll(async () => {
    // 1. the normalized compose file, with .env.example filled in (cp .env.example .env, then the secrets)
    const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    const envFile = join(tmp, '.env');
    writeFileSync(envFile, example.replace(/^(\w+)=$/gm, (line, name: string) => (SECRETS[name] ? `${name}=${SECRETS[name]}` : line)));
    const env: Record<string, string | undefined> = { ...process.env };
    for (const k of Object.keys(SECRETS)) delete env[k];
    const cfg = spawnSync(requireTool('docker-compose', process.env.PATH), ['--env-file', envFile, '-f', join(REPO_ROOT, 'docker-compose.yml'), 'config'], { cwd: REPO_ROOT, env, encoding: 'utf8' });
    if (cfg.status !== 0) throw new Error(`docker-compose config failed:\n${cfg.stderr}`);
    services = Object.fromEntries(Object.entries(asMap(asMap(parseYaml(cfg.stdout), 'config').services, 'services')).map(([k, v]) => [k, asMap(v, k)]));

    // 2. the image's build: tsc + copy-assets (the Dockerfile's `npm run build`)
    const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(buildRoot, 'dist')], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (tsc.status !== 0) throw new Error(`build failed:\n${tsc.stdout}${tsc.stderr}`);
    const assets = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'copy-assets.mjs'), join(buildRoot, 'dist')], { encoding: 'utf8' });
    if (assets.status !== 0) throw new Error(`copy-assets failed:\n${assets.stderr}`);

    for (const name of ['redis', 'mail', 'api-1', 'api-1-metrics', 'api-2', 'api-2-metrics', 'workers-metrics', 'lb']) port[name] = await sparePort();

    // 3. redis, with the service's own command; its volume (/data) is a temporary folder
    const redisCmd = strings(services.redis!.command);
    mkdirSync(join(tmp, 'redis-data'));
    start('redis', [...redisCmd, '--port', String(port.redis), '--bind', '127.0.0.1', '--dir', join(tmp, 'redis-data')], {}, tmp);
    await becomesHealthy('redis', healthcheck('redis'), (s) => s.replace(/redis-cli/, `redis-cli -p ${port.redis}`), procs[0]);

    // 4. postgres: the machine's Postgres 15, a database of our own
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
  }, 240_000);

  afterAll(async () => {
    for (const p of procs.filter((x) => x.child.exitCode === null && x.child.signalCode === null)) p.child.kill('SIGTERM');
    await Promise.all(
      procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000)).then(() => p.child.kill('SIGKILL'))])),
    );
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    rmSync(buildRoot, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('postgres: the compose healthcheck (pg_isready) passes against the stand-in', () => {
    const test = healthcheck('postgres');
    expect(test).toEqual(['CMD', 'pg_isready', '-U', 'floodgate', '-d', 'floodgate']);
    // the same check, pointed at the stand-in: host and port added, user and database mapped
    const mapped = ['CMD', 'pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', database];
    expect(healthy(mapped, (s) => s)).toBe(true);
  });

  it('migrate: its command exits 0 (service_completed_successfully) and creates the schema', async () => {
    const m = start('migrate', strings(services.migrate!.command), envOf('migrate', {}), buildRoot);
    const code = await Promise.race([m.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000))]);
    expect(code, m.output()).toBe(0);
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    const { rows } = await c.query<{ n: string }>("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('events', 'bookings')");
    await c.end();
    expect(Number(rows[0]!.n)).toBe(2);
  }, 120_000);

  it('api-1, api-2 and workers start with their compose environment (NODE_ENV=production) and pass their healthchecks', async () => {
    expect(services['api-1']!.environment).toEqual(services['api-2']!.environment);
    const apis = (['api-1', 'api-2'] as const).map((name) =>
      start(name, strings(services[name]!.command), envOf(name, { public: port[name]!, metrics: port[`${name}-metrics`]! }), buildRoot),
    );
    const workers = start('workers', strings(services.workers!.command), envOf('workers', { metrics: port['workers-metrics']! }), buildRoot);
    await Promise.all([
      ...apis.map((p, i) => {
        const name = `api-${i + 1}`;
        return becomesHealthy(name, healthcheck(name), (s) => s.replace('127.0.0.1:3000', `127.0.0.1:${port[name]}`), p);
      }),
      becomesHealthy('workers', healthcheck('workers'), (s) => s.replace('127.0.0.1:9100', `127.0.0.1:${port['workers-metrics']}`), workers),
    ]);
    for (const name of ['api-1', 'api-2']) {
      const base = `http://127.0.0.1:${port[name]}`;
      expect((await fetch(`${base}/ready`)).status, `${name} /ready`).toBe(200);
      expect((await fetch(`${base}/metrics`)).status, `${name}: no /metrics on the public port`).toBe(404);
      const metrics = await (await fetch(`http://127.0.0.1:${port[`${name}-metrics`]}/metrics`)).text();
      // any label order: with API_PROCESSES above 1 (the default on a machine with several cores) the primary's sum
      // puts the default label last
      expect(metrics).toMatch(/^floodgate_http_request_duration_seconds_count\{[^}]*service="api"/m);
    }
    // every worker runs, refund included
    const running = workers.output().split('\n').map((l) => { try { return JSON.parse(l) as { msg?: string; workers?: string[] }; } catch { return {}; } })
      .find((l) => l.msg === 'workers running');
    expect(running?.workers, workers.output()).toEqual(expect.arrayContaining(['persist', 'sweeper', 'admission', 'payment', 'notify', 'refund', 'reconcile']));
  }, 120_000);

  it('lb: nginx runs docker/nginx.conf in front of both APIs, passes its healthcheck, and refuses /metrics', async () => {
    const mount = strings(services.lb!.volumes).find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
    const prefix = join(tmp, 'nginx');
    mkdirSync(prefix);
    // the image's temp folders (Debian's build points at /var/lib/nginx) go under our own prefix
    const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(prefix, t)};`).join(' ');
    const conf = readFileSync(mount.split(':')[0]!, 'utf8')
      .replace(/^http \{$/m, `http {\n  ${temps}`)
      .replace(/server api-1:3000/, `server 127.0.0.1:${port['api-1']}`)
      .replace(/server api-2:3000/, `server 127.0.0.1:${port['api-2']}`)
      .replace(/listen 3000;/, `listen 127.0.0.1:${port.lb};`);
    expect(conf).not.toMatch(/api-\d:3000|listen 3000;/);
    expect(conf).toContain('proxy_temp_path');
    writeFileSync(join(prefix, 'nginx.conf'), conf);
    const nginx = requireTool('nginx', process.env.PATH);
    const check = spawnSync(nginx, ['-t', '-e', 'stderr', '-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', `pid ${join(prefix, 'nginx.pid')}; error_log stderr;`], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    const lb = start('lb', [nginx, '-e', 'stderr', '-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', `daemon off; pid ${join(prefix, 'nginx.pid')}; error_log stderr;`], {}, prefix);
    await becomesHealthy('lb', healthcheck('lb'), (s) => s.replace('127.0.0.1:3000', `127.0.0.1:${port.lb}`), lb);
    const base = `http://127.0.0.1:${port.lb}`;
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  }, 60_000);

  it('lb and the APIs agree on X-Forwarded-For: forged entries do not change the address the per-IP limit counts', async () => {
    const base = `http://127.0.0.1:${port.lb}`;
    const requests = 24;
    const statuses = await Promise.all(
      Array.from({ length: requests }, async (_, i) => {
        const res = await fetch(`${base}/api/payments`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${await devToken(SECRETS.JWT_SECRET!, `xff-${i}`)}`,
            'content-type': 'application/json',
            'x-forwarded-for': `203.0.113.${i}, 198.51.100.${i}`, // the client's own words
          },
          body: JSON.stringify({ bookingId: 'bk_abcdefghijkl_abcdefghijklmnop', paymentMethodId: 'pm_card_visa' }),
        });
        return res.status;
      }),
    );
    expect(statuses.every((s) => s === 404), JSON.stringify(statuses)).toBe(true);
    // the per-IP counters in the stack's Redis: one address, the one nginx saw, counted once per request
    const redis = new Redis(`redis://127.0.0.1:${port.redis}`);
    try {
      const ns = String(asMap(services['api-1']!.environment, 'env').KEY_NAMESPACE);
      const keys = await redis.keys(`${ns}:rl:pay:ip:*`);
      expect(keys).toEqual([`${ns}:rl:pay:ip:127.0.0.1`]);
      expect(Number(await redis.get(keys[0]!))).toBe(requests);
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  it('prometheus: promtool accepts its config, and it scrapes each service on the METRICS_PORT the service serves', () => {
    const mount = strings(services.prometheus!.volumes).find((v) => v.endsWith(':/etc/prometheus/prometheus.yml:ro'))!;
    const file = mount.split(':')[0]!;
    const r = spawnSync(requireTool('promtool', process.env.PATH), ['check', 'config', file], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const targets = [...readFileSync(file, 'utf8').matchAll(/'([a-z0-9-]+):(\d+)'/g)].map((m) => [m[1]!, m[2]!] as const);
    const apps = targets.filter(([host]) => host !== 'localhost');
    expect(apps.map(([h]) => h).sort()).toEqual(['api-1', 'api-2', 'workers']);
    for (const [host, p] of apps) expect(String(asMap(services[host]!.environment, host).METRICS_PORT), host).toBe(p);
  });

  it('every app process stops cleanly on SIGTERM (docker stop)', async () => {
    for (const name of ['api-1', 'api-2', 'workers']) {
      const p = procs.find((x) => x.name === name)!;
      p.child.kill('SIGTERM');
      const code = await Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
      expect(code, `${name}:\n${p.output()}`).toBe(0);
    }
  }, 100_000);
});
