import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { EventId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { CreateEvent, Event, EventIdParam, EventList, EventQuery, SeatMaps, problemResponses } from '../schemas.js';
import { validationHook } from '../validate.js';

const Params = z.object({ eventId: EventIdParam });

export const events = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/events',
      summary: 'Events, with live availability per tier',
      request: { query: EventQuery },
      responses: { 200: { description: 'Events', content: { 'application/json': { schema: EventList } } }, ...problemResponses(400) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json({ events: await c.var.deps.engine.catalog.list(q) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/events/{eventId}',
      summary: 'Event details with pricing tiers and live availability',
      request: { params: Params },
      responses: { 200: { description: 'Event', content: { 'application/json': { schema: Event } } }, ...problemResponses(400, 404) },
    }),
    async (c) => c.json(await c.var.deps.engine.catalog.get(c.req.valid('param').eventId as EventId), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/events/{eventId}/seats',
      summary: 'Seat maps of the assigned-seating sections',
      request: { params: Params },
      responses: { 200: { description: 'Seat maps', content: { 'application/json': { schema: SeatMaps } } }, ...problemResponses(400, 404) },
    }),
    async (c) => {
      const eventId = c.req.valid('param').eventId as EventId;
      return c.json({ eventId, sections: await c.var.deps.engine.catalog.seatMaps(eventId) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/admin/events',
      summary: 'Create an event (admin); its inventory is armed in Redis at once',
      security: [{ bearer: [] }],
      request: { body: { content: { 'application/json': { schema: CreateEvent } }, required: true } },
      responses: {
        201: { description: 'Created', content: { 'application/json': { schema: Event } } },
        ...problemResponses(400, 401, 403, 413, 415),
      },
    }),
    async (c) => c.json(await c.var.deps.engine.createEvent(c.req.valid('json')), 201),
  );
