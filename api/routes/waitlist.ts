import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { EventId, TierId } from '../../engine/ids.js';
import { DomainError } from '../../engine/errors.js';
import type { AppEnv } from '../env.js';
import { EventIdParam, TierIdSchema, problemResponses } from '../schemas.js';
import { validationHook } from '../validate.js';

const EventParams = z.object({ eventId: EventIdParam });

export const JoinWaitlist = z
  .strictObject({
    tierId: TierIdSchema,
    ticketCount: z.number().int().min(1).max(1000).openapi({ description: 'Tickets wanted, up to the per-buyer limit (less any already held or bought)' }),
    email: z.email().max(254).optional().openapi({
      description: "Where the offer is e-mailed. Required unless the token carries an e-mail (the web app's session does).",
    }),
  })
  .openapi('JoinWaitlist');

export const WaitlistPlace = z
  .object({
    eventId: z.string(),
    tierId: z.string(),
    position: z.number().int().min(1).openapi({ description: '1 = the next returned tickets are offered to you' }),
    ticketCount: z.number().int().min(1),
    offerMinutes: z.number().openapi({ description: 'How long an offer (a hold in your name) lasts once made' }),
  })
  .openapi('WaitlistPlace');

export const waitlist = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/events/{eventId}/waitlist',
      summary: "Join a sold-out general-admission tier's waitlist (one place per buyer and tier: joining again returns the same place)",
      description:
        'Tickets that come back (a hold that expires or is cancelled, a refund) are offered to the line in order: each offer is a hold ' +
        "in the buyer's name (as POST /api/bookings makes) lasting WAITLIST_OFFER_TTL_MS, e-mailed with a link to its checkout. While " +
        'anyone waits, none of the tier\'s returned tickets are on general sale; an offer not paid expires like any hold and goes to the ' +
        'next in line, and once the line is empty the tier is on general sale again. 409 `not-sold-out` while the tier has tickets on ' +
        'sale; 409 `waitlist-not-available` for a seated tier; 422 `ticket-limit` past the per-buyer limit.',
      security: [{ bearer: [] }],
      request: { params: EventParams, body: { content: { 'application/json': { schema: JoinWaitlist } }, required: true } },
      responses: {
        201: { description: 'Joined', content: { 'application/json': { schema: WaitlistPlace } } },
        200: { description: 'Already on this waitlist: the same place and count', content: { 'application/json': { schema: WaitlistPlace } } },
        ...problemResponses(400, 401, 404, 409, 422),
      },
    }),
    async (c) => {
      const { engine, metrics } = c.var.deps;
      const eventId = c.req.valid('param').eventId as EventId;
      const body = c.req.valid('json');
      const email = body.email ?? c.var.user.email;
      if (!email) throw new DomainError('EMAIL_REQUIRED', 'an e-mail address is needed to send the offer to', { field: 'email' });
      await engine.catalog.require(eventId);
      const place = await engine.waitlist.join(eventId, body.tierId as TierId, c.var.user.id, email, body.ticketCount);
      if (place.joined) metrics.waitlistJoins.inc();
      const out = { eventId, tierId: place.tierId, position: place.position, ticketCount: place.ticketCount, offerMinutes: engine.waitlist.offerTtlMs / 60_000 };
      return place.joined ? c.json(out, 201) : c.json(out, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/events/{eventId}/waitlist',
      summary: "Your places on this event's waitlists (an empty list when you are on none; an offer made takes you off the line)",
      security: [{ bearer: [] }],
      request: { params: EventParams },
      responses: {
        200: { description: 'Places', content: { 'application/json': { schema: z.object({ places: z.array(WaitlistPlace) }) } } },
        ...problemResponses(400, 401, 404),
      },
    }),
    async (c) => {
      const { engine } = c.var.deps;
      const eventId = c.req.valid('param').eventId as EventId;
      const ev = await engine.catalog.get(eventId);
      const places = [];
      for (const t of ev.tiers) {
        const p = await engine.waitlist.place(eventId, t.id as TierId, c.var.user.id);
        if (p) places.push({ eventId, tierId: p.tierId, position: p.position, ticketCount: p.ticketCount, offerMinutes: engine.waitlist.offerTtlMs / 60_000 });
      }
      return c.json({ places }, 200);
    },
  );
