import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { isDomainError } from '../../engine/errors.js';
import type { BookingId, EventId, TierId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { Booking, BookingHeaders, BookingIdParam, BookingList, Cancelled, CreateBooking, Reservation, problemResponses } from '../schemas.js';
import { validHeaders, validJson, validationHook } from '../validate.js';
import { child1 } from '../../platform/metric-children.js';

const Params = z.object({ bookingId: BookingIdParam });

/** The hold, the hot route: documented from this route, validated by validHeaders and validJson (api/validate.ts: the
 *  same answers as the validators openapi() would add, without their per-request cost). */
const holdRoute = createRoute({
  method: 'post',
  path: '/api/bookings',
  summary: 'Hold tickets (general admission, specific seats, or the best adjacent seats)',
  description:
    'One atomic Redis script call decides; the booking reaches Postgres through the outbox. Send an Idempotency-Key: ' +
    'a retry with the same key and body replays the first reply (header Idempotent-Replayed: true).',
  security: [{ bearer: [] }],
  request: {
    headers: BookingHeaders,
    body: { content: { 'application/json': { schema: CreateBooking } }, required: true },
  },
  responses: {
    201: { description: 'Reserved until expiresAt', content: { 'application/json': { schema: Reservation } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 503),
  },
});

export const bookings = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
bookings.openAPIRegistry.registerPath(holdRoute);
bookings.post('/api/bookings', validHeaders(BookingHeaders), validJson(CreateBooking), async (c) => {
  const body = c.req.valid('json');
  const { metrics, engine } = c.get('deps');
  try {
    const { reservation, replayed } = await engine.bookings.create({
      ...body,
      eventId: body.eventId as EventId,
      tierId: body.tierId as TierId | undefined,
      userId: c.get('user').id,
      idempotencyKey: c.req.valid('header')['idempotency-key'],
      admissionToken: c.req.valid('header')['x-admission-token'],
      rateLimit: c.get('holdRateLimit'),
    });
    child1(metrics.holdAttempts, replayed ? 'replayed' : 'held').inc();
    if (replayed) c.header('idempotent-replayed', 'true');
    else {
      metrics.bookingsCreated.inc();
      metrics.ticketsHeld.inc(reservation.ticketCount);
    }
    return c.json(reservation, 201);
  } catch (err) {
    // Expected rejections are counted, not logged one by one: in an on-sale they are the hot path.
    if (isDomainError(err)) child1(metrics.holdAttempts, err.code).inc();
    throw err;
  }
});
bookings
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/bookings',
      summary: 'Your bookings, newest first',
      security: [{ bearer: [] }],
      responses: { 200: { description: 'Bookings', content: { 'application/json': { schema: BookingList } } }, ...problemResponses(401) },
    }),
    async (c) => c.json({ bookings: await c.get('deps').engine.bookings.list(c.get('user').id) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/bookings/{bookingId}',
      summary: 'One of your bookings (404 for anyone else’s)',
      security: [{ bearer: [] }],
      request: { params: Params },
      responses: { 200: { description: 'Booking', content: { 'application/json': { schema: Booking } } }, ...problemResponses(400, 401, 404) },
    }),
    async (c) => {
      const user = c.get('user');
      const b = await c.get('deps').engine.bookings.get(c.req.valid('param').bookingId as BookingId, { userId: user.id, admin: user.admin });
      return c.json(b, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/api/bookings/{bookingId}',
      summary: 'Cancel your reservation; its seats are free again at once',
      security: [{ bearer: [] }],
      request: { params: Params },
      responses: {
        200: { description: 'Cancelled', content: { 'application/json': { schema: Cancelled } } },
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const out = await c.get('deps').engine.bookings.cancel(c.req.valid('param').bookingId as BookingId, c.get('user').id);
      return c.json(out, 200);
    },
  );
