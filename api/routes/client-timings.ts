import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../env.js';
import { problemResponses } from '../schemas.js';
import { validationHook } from '../validate.js';

/** The web app's pages (api/web `layout({ page })`): a closed set, so the metric's labels stay bounded. */
export const CLIENT_PAGES = ['events', 'event', 'seats', 'signin', 'checkout', 'tickets', 'bookings', 'other'] as const;
/** At most 10 minutes: anything longer is not a page load worth counting. */
const Ms = z.number().int().min(0).max(600_000);

const Timings = z
  .strictObject({
    page: z.enum(CLIENT_PAGES),
    device: z.enum(['mobile', 'desktop']),
    ttfbMs: Ms,
    domReadyMs: Ms,
    loadMs: Ms,
    lcpMs: Ms.optional(),
  })
  .openapi('ClientTimings');

/** The Mobile Performance KPI's source: each page of the web app reports its navigation timings once. */
export const clientTimings = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
  createRoute({
    method: 'post',
    path: '/api/client-timings',
    summary: "A page's navigation timings from the buyer's browser (TTFB, DOM ready, load, LCP where available), by device class",
    description: 'No sign-in needed; rate-limited per client IP (RATE_LIMIT_PER_IP). Recorded in the floodgate_client_page_seconds histogram.',
    request: { body: { content: { 'application/json': { schema: Timings } }, required: true } },
    responses: { 204: { description: 'Recorded' }, ...problemResponses(400) },
  }),
  (c) => {
    const t = c.req.valid('json');
    const h = c.var.deps.metrics.clientPage;
    const observe = (metric: string, ms: number | undefined) => {
      if (ms !== undefined) h.observe({ metric, device: t.device, page: t.page }, ms / 1000);
    };
    observe('ttfb', t.ttfbMs);
    observe('dom_ready', t.domReadyMs);
    observe('load', t.loadMs);
    observe('lcp', t.lcpMs);
    return c.body(null, 204);
  },
);
