import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { QueueIdParam, problemResponses } from './schemas.js';

/** Operations that read their body raw (the webhook checks a signature over the exact bytes): no 415 for them. */
const RAW_BODY = new Set(['post /api/webhooks/stripe']);

/**
 * The operations the per-user and per-IP rate limits apply to (api/app.ts mounts them on these), and the status stream,
 * which also answers 429 past its open-stream caps.
 */
const RATE_LIMITED = new Set([
  'post /api/bookings', 'post /api/payments', 'post /api/client-timings', 'post /api/events/{eventId}/queue', 'post /api/events/{eventId}/waitlist', 'get /api/queue/{queueId}', 'get /api/queue/{queueId}/events',
]);

type Operation = { requestBody?: { content?: Record<string, unknown> }; responses?: Record<string, unknown>; security?: unknown[] };
type Document = { paths?: Record<string, Record<string, Operation>> };

/**
 * Adds to every /api operation of the generated document the answers that middleware gives before any route runs, so
 * a client generated from /openapi.json knows every status it can get:
 *   400  a card number anywhere in the request (`raw-card-data`), or a malformed request;
 *   413  a request body over the limit (every method but GET, checked before routing);
 *   403  a write of a signed-in operation made with the web app's session cookie without its CSRF token (`csrf`);
 *   415  a JSON body sent as another media type (operations that take JSON);
 *   429  the rate limits (joining a queue, holding, paying, reading a place in line) and the status streams' caps;
 *   503  Redis or Postgres unavailable or past their deadline (`service-unavailable`, with Retry-After).
 * Answers a route documents itself are kept as they are.
 */
export function withMiddlewareAnswers<D extends object>(doc: D): D {
  for (const [path, ops] of Object.entries((doc as Document).paths ?? {})) {
    if (!path.startsWith('/api/')) continue;
    for (const [method, op] of Object.entries(ops)) {
      const codes = [400, 503];
      if (method !== 'get') codes.push(413);
      if (method !== 'get' && op.security?.length) codes.push(403);
      if (op.requestBody?.content?.['application/json'] && !RAW_BODY.has(`${method} ${path}`)) codes.push(415);
      if (RATE_LIMITED.has(`${method} ${path}`)) codes.push(429);
      const added = problemResponses(...codes);
      const merged = { ...added, ...op.responses };
      op.responses = Object.fromEntries(Object.entries(merged).sort(([a], [b]) => Number(a) - Number(b)));
    }
  }
  return doc;
}

/**
 * Documents the routes that are plain Hono handlers (a stream, a raw-body webhook, the probes; `/metrics` is not on this port but on METRICS_PORT), whose
 * answers a typed route could not express. Each lists what its handler and the middleware in front of it answer.
 */
export function documentPlainRoutes(app: Pick<OpenAPIHono, 'openAPIRegistry'>) {
  const r = app.openAPIRegistry;
  r.registerPath({
    method: 'get',
    path: '/api/queue/{queueId}/events',
    summary: 'Your place in line as Server-Sent Events: `event: status` with a QueueStatus now and on every change, until a final status',
    description:
      'For EventSource, which cannot set headers, the token may come as `?access_token=`. Changes are pushed: an admission, a pass ' +
      'taken back, `sold_out` or a reopening reaches the stream within about a second (the admission worker publishes every change of ' +
      'the waiting room); without a change the status is read again every 5 s. `sold_out` is not final: tickets that come back reopen ' +
      'admission for those who stay. A comment line keeps the connection open while nothing changes. Someone else\'s or an unknown ' +
      'queue id is 404 before the stream starts.',
    security: [{ bearer: [] }],
    request: { params: z.object({ queueId: QueueIdParam }) },
    responses: {
      200: {
        description: 'The stream; each `data:` line is a QueueStatus',
        content: { 'text/event-stream': { schema: z.string().openapi({ example: 'event: status\ndata: {"status":"waiting",...}\n\n' }) } },
      },
      ...problemResponses(401, 404),
    },
  });
  r.registerPath({
    method: 'post',
    path: '/api/webhooks/stripe',
    summary: 'Stripe webhook: signature checked on the raw body (Stripe-Signature), each event handled once, in any order',
    request: {
      headers: z.object({ 'stripe-signature': z.string().openapi({ description: 't=<unix time>,v1=<hex HMAC-SHA256>' }) }),
      body: { content: { 'application/json': { schema: z.looseObject({ id: z.string(), type: z.string(), data: z.looseObject({ object: z.looseObject({}) }) }) } }, required: true },
    },
    responses: {
      200: {
        description: 'Received (duplicate: already handled before)',
        content: { 'application/json': { schema: z.object({ received: z.literal(true), duplicate: z.boolean().optional() }) } },
      },
      // 400 webhook-signature / webhook-malformed; 404 when Stripe is not the payment provider
      ...problemResponses(404),
    },
  });
  r.registerPath({
    method: 'get',
    path: '/health',
    summary: 'Liveness: the process answers',
    responses: { 200: { description: 'Alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
  });
  const Ready = z.object({ status: z.enum(['ready', 'degraded']), redis: z.enum(['up', 'down']), postgres: z.enum(['up', 'down']) });
  r.registerPath({
    method: 'get',
    path: '/ready',
    summary: 'Readiness: Redis and Postgres both answer within a second (503 degraded otherwise, with Retry-After)',
    responses: {
      200: { description: 'Ready', content: { 'application/json': { schema: Ready } } },
      503: { description: 'Degraded', content: { 'application/json': { schema: Ready } } },
    },
  });
}
