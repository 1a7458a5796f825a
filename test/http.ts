import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Queue } from 'bullmq';
import { pino, type Logger } from 'pino';
import { createApp } from '../api/app.js';
import type { RateLimitConfig, StreamCapConfig } from '../api/env.js';
import type { Engine } from '../engine/index.js';
import type { Mailer } from '../integrations/mail/mailer.js';
import { createMetrics, type Metrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { devToken } from '../scripts/dev-token.js';
import { createLogger } from '../platform/logger.js';
import { createPersistWorker } from '../workers/persist/persist.js';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef';

export const token = (userId: string, opts: { admin?: boolean; ttlSeconds?: number } = {}) =>
  devToken(TEST_JWT_SECRET, userId, opts);

export type TestApiOptions = {
  bodyLimitBytes?: number; requestTimeoutMs?: number; log?: Logger; stripeWebhookSecrets?: string[]; queues?: Queue[]; rateLimit?: RateLimitConfig; streams?: StreamCapConfig;
  /** Twilio's status callbacks (api/routes/webhooks-twilio.ts): the token that signs them and the URL they are sent to. */
  twilio?: { authToken: string; statusCallbackUrl: string };
  /** The web app's sign-in mail: its transport and the base URL its links point to. */
  web?: { mailer: Mailer; publicBaseUrl?: string };
  /** Run a real persist worker beside the API, as in production (payments wait for holds to be recorded). */
  persist?: boolean;
};

/** The real app (createApp) wired to a test engine, with its metrics registry. */
function testApp(engine: Engine, over: TestApiOptions) {
  const metrics: Metrics = createMetrics('api');
  const app = createApp({
    engine,
    log: over.log ?? pino({ level: 'silent' }),
    metrics,
    config: {
      jwtSecret: TEST_JWT_SECRET,
      bodyLimitBytes: over.bodyLimitBytes ?? 16 * 1024,
      requestTimeoutMs: over.requestTimeoutMs ?? 5000,
      stripeWebhookSecrets: over.stripeWebhookSecrets ?? [],
      ...(over.rateLimit ? { rateLimit: over.rateLimit } : {}),
      ...(over.twilio ? { twilio: over.twilio } : {}),
      ...(over.streams ? { streams: over.streams } : {}),
      ...(over.web ? { web: { publicBaseUrl: over.web.publicBaseUrl ?? 'http://floodgate.test', mailFrom: 'tickets@floodgate.test' } } : {}),
    },
    ...(over.web ? { mailer: over.web.mailer } : {}),
    checks: engine.probes,
    ...(over.queues ? { queues: over.queues } : {}),
  });
  return { app, metrics };
}

/** `call(method, path, o)`: a request with JSON helpers, sent through `send` (fetch over a socket, or app.request). */
function caller(send: (path: string, init: RequestInit) => Response | Promise<Response>) {
  return async function call(method: string, path: string, o: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
    const res = await send(path, {
      method,
      headers,
      body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, json: json as Record<string, any>, text }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
}

const startPersist = (engine: Engine, over: TestApiOptions) => {
  const persist = over.persist ? createPersistWorker({ engine, log: pino({ level: 'silent' }), maxIdleMs: 20 }) : undefined;
  persist?.start();
  return persist;
};

/** The real app on a real HTTP port (127.0.0.1, random port), wired to a test engine. */
export async function startApi(engine: Engine, over: TestApiOptions = {}) {
  const { app, metrics } = testApp(engine, over);
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // as api/main.ts with METRICS_PORT: /metrics on its own port, not on the API's
  const metricsServer = await serveMetrics(metrics, '127.0.0.1', 0);
  const metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;
  const persist = startPersist(engine, over);
  return {
    app,
    url,
    metrics,
    /** The API's /metrics, on its metrics port. */
    metricsUrl,
    /** fetch against the server with JSON helpers. */
    call: caller((path, init) => fetch(url + path, init)),
    async close() {
      await persist?.stop();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
export type TestApi = Awaited<ReturnType<typeof startApi>>;

/**
 * The real app without a socket: `call` goes through Hono's `app.request` (in-process, as Hono's own tests do). For
 * tests that need no network: not for the client's IP (rate limits, waiting-room streams read it from the socket),
 * streams, timeouts, raw HTTP, or the /metrics port.
 */
export function inProcessApi(engine: Engine, over: Omit<TestApiOptions, 'rateLimit' | 'streams'> = {}) {
  const { app, metrics } = testApp(engine, over);
  const persist = startPersist(engine, over);
  return {
    app,
    metrics,
    /** app.request with JSON helpers. */
    call: caller((path, init) => app.request(path, init)),
    async close() {
      await persist?.stop();
    },
  };
}
export type InProcessApi = ReturnType<typeof inProcessApi>;

/** A logger writing JSON lines into memory (to check what reaches the logs), with Floodgate's redaction. */
export function memoryLogger(level = 'debug') {
  const lines: string[] = [];
  const log = createLogger('test', level, { write: (s: string) => void lines.push(s) });
  return { log, lines };
}
