import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { EventId } from '../../engine/ids.js';
import { parseQueueId, type ChangeFeed, type QueueStatus as Status } from '../../engine/index.js';
import type { AppDeps, AppEnv } from '../env.js';
import { clientIp } from '../middleware/client-ip.js';
import { createStreamSlots, tooManyStreams, type StreamSlots } from '../middleware/stream-slots.js';
import { EventIdParam, Fairness, QueueIdParam, QueueSettingsOut, QueueStatus, UpdateQueue, problemResponses } from '../schemas.js';
import { validationHook } from '../validate.js';

const EventParams = z.object({ eventId: EventIdParam });
const QueueParams = z.object({ queueId: QueueIdParam });
const FINAL: Status['status'][] = ['admitted', 'expired', 'closed'];

export const waitingRoom = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/events/{eventId}/queue',
      summary: 'Join the waiting room (one place per person: joining again returns the same place)',
      security: [{ bearer: [] }],
      request: { params: EventParams },
      responses: {
        201: { description: 'Joined', content: { 'application/json': { schema: QueueStatus } } },
        200: { description: 'Already in line: the same place', content: { 'application/json': { schema: QueueStatus } } },
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const { engine, metrics } = c.var.deps;
      const eventId = c.req.valid('param').eventId as EventId;
      await engine.catalog.require(eventId);
      const { created, status } = await engine.waitingRoom.join(eventId, c.var.user.id);
      if (created) metrics.waitingRoomJoins.inc();
      return created ? c.json(status, 201) : c.json(status, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/queue/{queueId}',
      summary: 'Your place: position, people ahead, estimated wait, and the admission pass once admitted',
      description: 'The bearer token may also be given as ?access_token= (for EventSource).',
      security: [{ bearer: [] }],
      request: { params: QueueParams },
      responses: { 200: { description: 'Status', content: { 'application/json': { schema: QueueStatus } } }, ...problemResponses(400, 401, 404) },
    }),
    async (c) => c.json(await c.var.deps.engine.waitingRoom.status(c.req.valid('param').queueId, c.var.user.id), 200),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/api/queue/{queueId}',
      summary: 'Leave the waiting room (final: the place is given up)',
      security: [{ bearer: [] }],
      request: { params: QueueParams },
      responses: {
        200: { description: 'Left', content: { 'application/json': { schema: z.object({ queueId: z.string(), status: z.literal('left') }) } } },
        ...problemResponses(400, 401, 404),
      },
    }),
    async (c) => {
      const { queueId } = c.req.valid('param');
      const { unusedPass } = await c.var.deps.engine.waitingRoom.leave(queueId, c.var.user.id);
      if (unusedPass) c.var.deps.metrics.waitingRoomPassesUnused.inc({ reason: 'left' });
      return c.json({ queueId, status: 'left' as const }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/events/{eventId}/queue/fairness',
      summary: 'The draw, checkable by anyone: seed hash (published first), seed (after the opening), drawn order',
      request: {
        params: EventParams,
        query: z.strictObject({
          offset: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
        }),
      },
      responses: { 200: { description: 'Fairness record', content: { 'application/json': { schema: Fairness } } }, ...problemResponses(400, 404) },
    }),
    async (c) => {
      const eventId = c.req.valid('param').eventId as EventId;
      return c.json(await c.var.deps.engine.waitingRoom.fairness(eventId, c.req.valid('query')), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/api/admin/events/{eventId}/queue',
      summary: 'Set the waiting room of an event (admin)',
      security: [{ bearer: [] }],
      request: { params: EventParams, body: { content: { 'application/json': { schema: UpdateQueue } }, required: true } },
      responses: {
        200: { description: 'Settings in force', content: { 'application/json': { schema: QueueSettingsOut } } },
        ...problemResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { engine } = c.var.deps;
      const eventId = c.req.valid('param').eventId as EventId;
      const settings = await engine.waitingRoom.configure(eventId, c.req.valid('json'));
      engine.catalog.forget(eventId);
      return c.json(settings!, 200);
    },
  );

/** One stream-slot counter and one change feed per app (the caps are shared through Redis, not through these objects). */
const slotsOf = new WeakMap<AppDeps, StreamSlots>();
const feedOf = new WeakMap<AppDeps, ChangeFeed>();
/** A stream re-reads its status when the admission worker publishes a change, at most once a second, and at least this often. */
const FALLBACK_MS = 5_000;
const MIN_GAP_MS = 1_000;

/**
 * Server-Sent Events: the caller's status now, then again each time it changes. The admission worker publishes every
 * change of the event's waiting room (someone admitted, a pass taken back, stock moved: engine/waiting-room/changes.ts),
 * so an admission, a `sold_out` or a reopening reaches the page within about a second; without a message the stream
 * re-reads every 5 s. Each open stream takes a slot of its user's and its IP's caps (STREAM_MAX_PER_USER,
 * STREAM_MAX_PER_IP); past a cap: 429.
 */
waitingRoom.get('/api/queue/:queueId/events', async (c) => {
  const { deps } = c.var;
  const { engine } = deps;
  const queueId = c.req.param('queueId');
  const user = c.var.user.id;
  const first = await engine.waitingRoom.status(queueId, user); // 404 before the stream starts
  let slots = slotsOf.get(deps);
  if (!slots) slotsOf.set(deps, (slots = createStreamSlots(deps, deps.config.streams)));
  const slot = await slots.open(user, clientIp(c, deps.config.rateLimit?.trustProxyHops ?? 0));
  if (!slot.ok) return tooManyStreams(c, slot.cap, slots.leaseMs);
  let feed = feedOf.get(deps);
  if (!feed) feedOf.set(deps, (feed = engine.waitingRoom.changeFeed()));
  const changes = feed.open(parseQueueId(queueId)!.eventId);
  const renewEveryMs = slots.leaseMs / 3;
  return streamSSE(c, async (stream) => {
    let last = '';
    let status = first;
    let renewed = performance.now();
    let wrote = performance.now();
    let read = performance.now();
    const aborted = new Promise<void>((resolve) => stream.onAbort(resolve));
    try {
      for (;;) {
        const data = JSON.stringify(status);
        if (data !== last) {
          await stream.writeSSE({ event: 'status', data });
          last = data;
          wrote = performance.now();
        } else if (performance.now() - wrote >= 15_000) {
          await stream.write(': keep-alive\n\n');
          wrote = performance.now();
        }
        if (FINAL.includes(status.status) || stream.aborted) return;
        await changes.next(FALLBACK_MS, aborted);
        if (stream.aborted) return;
        const gap = MIN_GAP_MS - (performance.now() - read);
        if (gap > 0) await stream.sleep(gap);
        if (stream.aborted) return;
        read = performance.now();
        if (performance.now() - renewed >= renewEveryMs) {
          await slot.renew();
          renewed = performance.now();
        }
        status = await engine.waitingRoom.status(queueId, user);
      }
    } finally {
      changes.close();
      await slot.close();
    }
  });
});
