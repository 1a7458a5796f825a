import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isDomainError } from '../engine/errors.js';
import { isUnavailable } from '../platform/unavailable.js';
import { child3 } from '../platform/metric-children.js';
import type { AppDeps, AppEnv } from './env.js';
import { createAuth } from './middleware/auth.js';
import { DOMAIN_HTTP, problem, problemType } from './problem.js';
import { bookings } from './routes/bookings.js';
import { events } from './routes/events.js';
import { health } from './routes/health.js';
import { mountQueueBoard } from './admin-queues.js';
import { noCardData } from './middleware/no-card-data.js';
import { requestId } from './middleware/request-id.js';
import { contentSecurityPolicy, csp } from './middleware/csp.js';
import { waitPage } from './pages/wait-page.js';
import { mountDocs } from './docs.js';
import { rateLimit } from './middleware/rate-limit.js';
import { documentPlainRoutes, withMiddlewareAnswers } from './openapi.js';
import { createPages } from './routes/pages.js';
import { payments } from './routes/payments.js';
import { tickets } from './routes/tickets.js';
import { webhooks } from './routes/webhooks.js';
import { documentTwilioWebhook, webhooksTwilio } from './routes/webhooks-twilio.js';
import { waitingRoom } from './routes/waiting-room.js';
import { waitlist } from './routes/waitlist.js';
import { createWeb } from './web/web.js';
import { clientTimings } from './routes/client-timings.js';
import { rateLimits as rateLimitsOf, type UserId } from '../engine/index.js';
import { clientIp } from './middleware/client-ip.js';

const HTTP_PROBLEMS: Record<number, [string, string]> = {
  400: ['/problems/malformed-request', 'Malformed request'],
  404: ['/problems/not-found', 'Not found'],
  405: ['/problems/method-not-allowed', 'Method not allowed'],
  413: ['/problems/payload-too-large', 'Payload too large'],
  415: ['/problems/unsupported-media-type', 'Unsupported media type: send application/json'],
  503: ['/problems/service-unavailable', 'Service unavailable'],
};

/** Security headers that matter for a JSON API (hono/secure-headers' values; the legacy browser ones are left out:
 *  every header costs validation on every response of the hot path). */
export const SECURITY_HEADERS: readonly [string, string][] = [
  ['cross-origin-resource-policy', 'same-origin'],
  ['referrer-policy', 'no-referrer'],
  ['strict-transport-security', 'max-age=15552000; includeSubDomains'],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'SAMEORIGIN'],
];

/** The Floodgate HTTP API. Thin: validate, authenticate, call the engine, map errors. */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>();

  // A request's log lines carry its id; the child logger is made only when a line is written (making one per
  // request is a visible cost on the hot path, and expected outcomes are counted, not logged).
  const requestLog = (c: Context<AppEnv>) => deps.log.child({ requestId: c.var.requestId, route: c.req.routePath });
  app.use('*', requestId());
  app.use('*', async (c, next) => {
    c.set('deps', deps);
    const started = performance.now();
    await next();
    const route = c.req.routePath === '/*' ? 'unmatched' : c.req.routePath;
    child3(deps.metrics.httpDuration, c.req.method, route, c.res.status).observe((performance.now() - started) / 1000);
  });
  // Security headers and no-store on the API, set *before* the handler so they are
  // part of the response as it is built: headers added afterwards force @hono/node-server to turn its lightweight
  // response into a full web Response (a sixth of the booking path's time).
  app.use('*', (c, next) => {
    for (const [name, value] of SECURITY_HEADERS) c.header(name, value);
    if (c.req.path.startsWith('/api/')) c.header('cache-control', 'no-store');
    return next();
  });
  const tooLarge = (c: Context) =>
    problem(c, 413, { type: '/problems/payload-too-large', title: 'Payload too large', detail: `at most ${deps.config.bodyLimitBytes} bytes` });
  const streamingLimit = bodyLimit({ maxSize: deps.config.bodyLimitBytes, onError: tooLarge });
  app.use('/api/*', (c, next) => {
    // A declared Content-Length is checked from the header alone, which keeps @hono/node-server's fast body path
    // (reading `c.req.raw.body` builds a full web Request, a fifth of the cost of a booking). Chunked bodies are
    // counted as they stream by hono's bodyLimit.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number(length) > deps.config.bodyLimitBytes ? Promise.resolve(tooLarge(c)) : next();
    }
    return streamingLimit(c, next);
  });
  // No per-request timer here (it costs a tenth of the hot path): Redis calls fail after REDIS_COMMAND_TIMEOUT_MS and
  // Postgres statements after REQUEST_TIMEOUT_MS, so a stalled dependency still answers 503 quickly.
  app.use('/api/*', noCardData());
  const auth = createAuth(deps.config.jwtSecret);
  app.use('/api/payments', auth());
  app.use('/api/tickets/*', auth({ gate: true }));
  app.use('/api/bookings', auth());
  app.use('/api/bookings/*', auth());
  app.use('/api/admin/*', auth({ admin: true }));
  app.use('/api/events/:eventId/queue', auth());
  app.use('/api/events/:eventId/waitlist', auth());
  // limits after auth (per user) and before any work; only the costly writes are limited
  const limited = (group: 'hold' | 'pay' | 'join') => {
    const limit = rateLimit(deps, group);
    return (c: Context<AppEnv>, next: () => Promise<void>) => (c.req.method === 'POST' ? limit(c, next) : next());
  };
  app.use('/api/bookings', limited('hold'));
  app.use('/api/payments', limited('pay'));
  app.use('/api/events/:eventId/queue', limited('join'));
  app.use('/api/events/:eventId/waitlist', limited('join'));
  // page timings: anyone may send them, so they are limited per client IP only
  const ipLimit = deps.config.rateLimit;
  if (ipLimit && ipLimit.perIp > 0) {
    const limits = rateLimitsOf(0, ipLimit.perIp, ipLimit.windowSeconds * 1000);
    app.use('/api/client-timings', async (c, next) => {
      await deps.engine.rateLimits.consume('beacon', 'anonymous' as UserId, { limits, ip: clientIp(c, ipLimit.trustProxyHops) });
      await next();
    });
  }
  app.use('/api/queue/*', auth({ query: true }));
  // status reads (polls and stream openings) are limited too: each one runs a Redis script
  const statusLimit = rateLimit(deps, 'status');
  app.use('/api/queue/*', (c, next) => (c.req.method === 'GET' ? statusLimit(c, next) : next()));
  // A Content-Security-Policy on every HTML page (/docs sets its own). The waiting room's inline script is the same
  // for every event (the id travels in a JSON block), so its hash is taken once from the template.
  app.use('/wait/*', csp(contentSecurityPolicy(waitPage('ev_000000000000'))));
  // the web app's pages: its one script is a file of this origin, so no inline script is allowed at all
  const webPolicy = csp(contentSecurityPolicy(''));
  for (const path of ['/', '/signin', '/signin/*', '/signout', '/events/*', '/bookings', '/bookings/*']) app.use(path, webPolicy);
  app.use('/admin/queues', csp(contentSecurityPolicy('')));
  app.use('/admin/queues/*', csp(contentSecurityPolicy('')));

  app.route('/', health);
  app.route('/', events);
  app.route('/', bookings);
  app.route('/', waitingRoom);
  app.route('/', waitlist);
  app.route('/', payments);
  app.route('/', tickets);
  app.route('/', webhooks);
  app.route('/', webhooksTwilio);
  app.route('/', clientTimings);
  if (deps.queues?.length) mountQueueBoard(app, deps.queues, deps.config.jwtSecret);
  app.route('/', createPages(auth));
  app.route('/', createWeb(auth));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'session', {
    type: 'apiKey',
    in: 'cookie',
    name: 'fg_session',
    description: "The web app's session (set by an e-mailed sign-in link), accepted wherever a bearer token is; writes made with it also need the X-CSRF-Token its pages carry",
  });
  documentPlainRoutes(app);
  documentTwilioWebhook(app);
  // built once, on the first request, when every route is registered
  let spec: object | undefined;
  app.get('/openapi.json', (c) =>
    c.json(
      (spec ??= withMiddlewareAnswers(
        app.getOpenAPI31Document({
          openapi: '3.1.0',
          info: {
            title: 'Floodgate API',
            version: '1.0.0',
            description: 'Queue-first ticket inventory: atomic holds, durable bookings. Errors are application/problem+json.',
          },
        }),
      )),
    ),
  );
  mountDocs(app);

  app.notFound((c) => problem(c, 404, { type: '/problems/not-found', title: 'Not found', detail: `no route for ${c.req.method} ${c.req.path}` }));

  app.onError((err, c) => {
    if (isDomainError(err)) {
      const [status, title] = DOMAIN_HTTP[err.code];
      const { field, ...extra } = err.extra;
      return problem(c, status, {
        type: problemType(err.code),
        title,
        detail: err.detail,
        code: err.code,
        ...extra,
        ...(field ? { errors: [{ field, detail: err.detail }] } : {}),
      }, status === 503 || status === 429 ? { 'retry-after': String(extra.retryAfterSeconds ?? 1) } : {});
    }
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      const [type, title] = HTTP_PROBLEMS[status] ?? ['/problems/http', 'Request error'];
      return problem(c, status, { type, title, detail: err.message }, status === 503 ? { 'retry-after': '1' } : {});
    }
    if (isUnavailable(err)) {
      requestLog(c).warn({ err: { message: err.message, name: err.name } }, 'dependency unavailable');
      return problem(
        c,
        503,
        { type: '/problems/service-unavailable', title: 'Service unavailable', detail: 'please retry shortly (same Idempotency-Key)' },
        { 'retry-after': '1' },
      );
    }
    requestLog(c).error({ err }, 'unhandled error');
    return problem(c, 500, { type: '/problems/internal', title: 'Internal error' });
  });

  return app;
}
export type App = ReturnType<typeof createApp>;
