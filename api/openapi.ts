import { problemResponses } from './schemas.js';

/** The operations the per-user and per-IP rate limits apply to (api/app.ts mounts them on these POSTs only). */
const RATE_LIMITED = new Set(['post /api/bookings', 'post /api/payments', 'post /api/events/{eventId}/queue', 'get /api/queue/{queueId}']);

type Operation = { requestBody?: { content?: Record<string, unknown> }; responses?: Record<string, unknown> };
type Document = { paths?: Record<string, Record<string, Operation>> };

/**
 * Adds to every /api operation of the generated document the answers that middleware gives before any route runs, so
 * a client generated from /openapi.json knows every status it can get:
 *   400  a card number anywhere in the request (`raw-card-data`), or a malformed request;
 *   413  a request body over the limit (every method but GET, checked before routing);
 *   415  a JSON body sent as another media type (operations that take JSON);
 *   429  the rate limits (joining a queue, holding, paying);
 *   503  Redis or Postgres unavailable or past their deadline (`service-unavailable`, with Retry-After).
 * Answers a route documents itself are kept as they are.
 */
export function withMiddlewareAnswers<D extends object>(doc: D): D {
  for (const [path, ops] of Object.entries((doc as Document).paths ?? {})) {
    if (!path.startsWith('/api/')) continue;
    for (const [method, op] of Object.entries(ops)) {
      const codes = [400, 503];
      if (method !== 'get') codes.push(413);
      if (op.requestBody?.content?.['application/json']) codes.push(415);
      if (RATE_LIMITED.has(`${method} ${path}`)) codes.push(429);
      const added = problemResponses(...codes);
      const merged = { ...added, ...op.responses };
      op.responses = Object.fromEntries(Object.entries(merged).sort(([a], [b]) => Number(a) - Number(b)));
    }
  }
  return doc;
}
