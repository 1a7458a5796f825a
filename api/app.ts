import { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { timeout } from 'hono/timeout';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isDomainError } from '../engine/errors.js';
import { isUnavailable } from '../platform/unavailable.js';
import type { AppDeps, AppEnv } from './env.js';
import { auth } from './middleware/auth.js';
import { DOMAIN_HTTP, problem, problemType } from './problem.js';
import { bookings } from './routes/bookings.js';
import { events } from './routes/events.js';
import { health } from './routes/health.js';

const HTTP_PROBLEMS: Record<number, [string, string]> = {
  400: ['/problems/malformed-request', 'Malformed request'],
  404: ['/problems/not-found', 'Not found'],
  405: ['/problems/method-not-allowed', 'Method not allowed'],
  413: ['/problems/payload-too-large', 'Payload too large'],
  415: ['/problems/unsupported-media-type', 'Unsupported media type: send application/json'],
  503: ['/problems/service-unavailable', 'Service unavailable'],
};

/** The Floodgate HTTP API. Thin: validate, authenticate, call the engine, map errors. */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>();

  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.use('*', async (c, next) => {
    c.set('deps', deps);
    c.set('log', deps.log.child({ requestId: c.var.requestId }));
    const started = performance.now();
    await next();
    const route = c.req.routePath === '/*' ? 'unmatched' : c.req.routePath;
    deps.metrics.httpDuration.observe(
      { method: c.req.method, route, status: String(c.res.status) },
      (performance.now() - started) / 1000,
    );
  });
  app.use('*', secureHeaders());
  app.use('/api/*', async (c, next) => {
    await next();
    c.header('cache-control', 'no-store');
  });
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: deps.config.bodyLimitBytes,
      onError: (c) =>
        problem(c, 413, { type: '/problems/payload-too-large', title: 'Payload too large', detail: `at most ${deps.config.bodyLimitBytes} bytes` }),
    }),
  );
  app.use(
    '/api/*',
    timeout(deps.config.requestTimeoutMs, () => new HTTPException(503, { message: 'the request took too long; please retry' })),
  );
  app.use('/api/bookings', auth());
  app.use('/api/bookings/*', auth());
  app.use('/api/admin/*', auth({ admin: true }));

  app.route('/', health);
  app.route('/', events);
  app.route('/', bookings);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Floodgate API',
      version: '1.0.0',
      description: 'Queue-first ticket inventory: atomic holds, durable bookings. Errors are application/problem+json.',
    },
  });
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'Floodgate API' }));

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
      });
    }
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      const [type, title] = HTTP_PROBLEMS[status] ?? ['/problems/http', 'Request error'];
      return problem(c, status, { type, title, detail: err.message }, status === 503 ? { 'retry-after': '1' } : {});
    }
    if (isUnavailable(err)) {
      c.var.log?.warn({ err: { message: err.message, name: err.name } }, 'dependency unavailable');
      return problem(
        c,
        503,
        { type: '/problems/service-unavailable', title: 'Service unavailable', detail: 'please retry shortly (same Idempotency-Key)' },
        { 'retry-after': '1' },
      );
    }
    (c.var.log ?? deps.log).error({ err }, 'unhandled error');
    return problem(c, 500, { type: '/problems/internal', title: 'Internal error' });
  });

  return app;
}
export type App = ReturnType<typeof createApp>;
