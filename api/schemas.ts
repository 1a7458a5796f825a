import { z } from '@hono/zod-openapi';
import { checkEventInput } from '../engine/catalog/catalog.js';
import { BOOKING_STATES } from '../engine/booking/states.js';
import { BOOKING_ID, EVENT_ID, IDEMPOTENCY_KEY, SEAT_ID, SECTION_ID, TIER_ID } from '../engine/ids.js';

/** Text a person typed: no control characters (NUL, CR, LF, escapes...). */
const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

/** Why someone asks for (or decides on) a refund: free text, kept with the booking. */
export const ReasonInput = text(500).openapi({ example: 'I cannot make it that day' });

export const EventIdParam = z.string().regex(EVENT_ID, 'not an event id').openapi({ example: 'ev_3k9x0a2mq7zb' });
export const TierIdSchema = z.string().regex(TIER_ID, 'not a tier id').openapi({ example: 'tr_9f8a7s6d5f' });
export const BookingIdParam = z
  .string()
  .regex(BOOKING_ID, 'not a booking id')
  .openapi({ example: 'bk_3k9x0a2mq7zb_9f8a7s6d5f4g3h2j' });
/**
 * A date and time with an offset, between 2000 and 2199: Postgres and the Lua scripts (which count milliseconds since
 * 1970) can hold every such instant, and nothing a box office schedules falls outside it.
 */
const when = () =>
  z.iso
    .datetime({ offset: true })
    .refine((s) => {
      const ms = Date.parse(s);
      return ms >= Date.UTC(2000, 0, 1) && ms < Date.UTC(2200, 0, 1);
    }, 'must be between 2000-01-01 and 2199-12-31')
    .openapi({ format: 'date-time', example: '2027-06-01T18:00:00Z' });

const SeatId = z
  .string()
  .regex(SEAT_ID, 'a seat id is <section>-<row>-<number>, row and number without leading zeros (A-12-7)')
  .openapi({ example: 'A-12-7' });
const SectionId = z.string().regex(SECTION_ID, '1-16 letters or digits').openapi({ example: 'A' });

export const Problem = z
  .object({
    type: z.string().openapi({ example: '/problems/insufficient-inventory' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), detail: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem');

// ---- catalog ----
const SectionInput = z.strictObject({
  id: SectionId,
  rows: z.number().int().min(1).max(1000),
  seatsPerRow: z.number().int().min(1).max(1000),
});
const TierInput = z.strictObject({
  name: text(100),
  price: z.number().int().min(0).max(100_000_000).openapi({ description: 'minor units (cents)', example: 4500 }),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as EUR').openapi({ example: 'EUR' }),
  capacity: z.number().int().min(1).max(1_000_000),
  seating: z
    .strictObject({
      sections: z
        .array(SectionInput.refine((s) => s.rows * s.seatsPerRow <= 20_000, 'a section has at most 20,000 seats'))
        .min(1)
        .max(500),
    })
    .optional(),
});
export const QueueSettingsInput = z
  .strictObject({
    enabled: z.boolean(),
    opensAt: when().openapi({ description: 'when people may start joining' }),
    admissionRatePerSecond: z.number().int().min(1).max(100_000).openapi({ description: 'admission ceiling, people per second' }),
    passTtlSeconds: z.number().int().min(10).max(86_400).openapi({ description: 'how long an admission pass lasts' }),
    passGraceSeconds: z.number().int().min(5).max(3_600).optional().openapi({
      description: 'a pass with no hold made with it this long after its buyer was told (stream push or status read) gives its slot to the next person (default 20)',
    }),
    passUnseenGraceSeconds: z.number().int().min(5).max(3_600).optional().openapi({
      description: 'the same for a pass its buyer has not looked at, counted from the admission (default 90: beyond the wait page\'s 60 s poll)',
    }),
  })
  .openapi('QueueSettings');

export const UpdateQueue = QueueSettingsInput.extend({
  salesOpenAt: when().optional().openapi({ description: 'when sales (and admissions) start' }),
  maxTicketsPerUser: z.number().int().min(1).max(100).optional(),
})
  .superRefine((q, ctx) => {
    if (q.salesOpenAt && Date.parse(q.salesOpenAt) < Date.parse(q.opensAt)) {
      ctx.addIssue({ code: 'custom', path: ['salesOpenAt'], message: 'sales cannot open before the waiting room' });
    }
  })
  .openapi('UpdateQueue');

export const CreateEvent = z
  .strictObject({
    name: text(200),
    category: z.string().regex(/^[a-z0-9-]{1,50}$/, 'lower-case letters, digits and dashes').openapi({ example: 'music' }),
    venue: text(200),
    startsAt: when(),
    salesOpenAt: when().optional(),
    maxTicketsPerUser: z.number().int().min(1).max(100).optional(),
    timeZone: z
      .string()
      .max(64)
      .optional()
      .openapi({ description: 'IANA time zone of the venue; messages state the start time in it (default UTC)', example: 'Europe/Paris' }),
    tiers: z.array(TierInput).min(1).max(50),
    queue: QueueSettingsInput.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.queue && e.salesOpenAt && Date.parse(e.salesOpenAt) < Date.parse(e.queue.opensAt)) {
      ctx.addIssue({ code: 'custom', path: ['queue', 'opensAt'], message: 'the waiting room must open before sales do' });
    }
    const p = checkEventInput(e);
    if (p) {
      const [path, message] = p.split(': ') as [string, string];
      ctx.addIssue({ code: 'custom', path: path.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)), message });
    }
    const seated = e.tiers.reduce((n, t) => n + (t.seating ? t.capacity : 0), 0);
    if (seated > 200_000) ctx.addIssue({ code: 'custom', path: ['tiers'], message: 'at most 200,000 assigned seats per event' });
  })
  .openapi('CreateEvent');

const TierOut = z.object({
  id: z.string(),
  name: z.string(),
  price: z.number().int(),
  currency: z.string(),
  capacity: z.number().int(),
  seated: z.boolean(),
  sections: z.array(z.object({ id: z.string(), rows: z.number().int(), seatsPerRow: z.number().int() })),
  available: z.number().int(),
  held: z.number().int(),
  sold: z.number().int(),
});
export const Event = z
  .object({
    id: z.string(),
    name: z.string(),
    category: z.string(),
    venue: z.string(),
    startsAt: z.string(),
    salesOpenAt: z.string(),
    maxTicketsPerUser: z.number().int(),
    timeZone: z.string(),
    status: z.enum(['on_sale', 'closed']),
    queue: z
      .object({ enabled: z.boolean(), opensAt: z.string(), admissionRatePerSecond: z.number(), passTtlSeconds: z.number(), seedHash: z.string() })
      .nullable(),
    tiers: z.array(TierOut),
  })
  .openapi('Event');
export const EventList = z.object({ events: z.array(Event) }).openapi('EventList');
export const EventQuery = z.strictObject({
  category: z.string().regex(/^[a-z0-9-]{1,50}$/).optional(),
  status: z.enum(['on_sale', 'closed']).optional(),
});
export const SeatMaps = z
  .object({
    eventId: z.string(),
    sections: z.array(
      z.object({
        id: z.string(),
        tierId: z.string(),
        rows: z.number().int(),
        seatsPerRow: z.number().int(),
        available: z.number().int(),
        seatMap: z.string().openapi({ description: 'one character per seat, row by row: "." free, "x" taken' }),
      }),
    ),
  })
  .openapi('SeatMaps');

// ---- bookings ----
export const CreateBooking = z
  .strictObject({
    eventId: EventIdParam,
    tierId: TierIdSchema.optional(),
    ticketCount: z.number().int().min(1).max(100),
    seatPreferences: z
      .strictObject({
        seatIds: z
          .array(SeatId)
          .min(1)
          .max(100)
          .refine((ids) => new Set(ids).size === ids.length, 'seat ids must be distinct')
          .optional(),
        section: SectionId.optional(),
        adjacent: z.boolean().optional(),
      })
      .optional(),
  })
  .superRefine((b, ctx) => {
    const p = b.seatPreferences;
    if (p?.seatIds && p.seatIds.length !== b.ticketCount) {
      ctx.addIssue({ code: 'custom', path: ['seatPreferences', 'seatIds'], message: 'must list exactly ticketCount seats' });
    }
    if (p?.seatIds && p.section) {
      ctx.addIssue({ code: 'custom', path: ['seatPreferences', 'section'], message: 'give seatIds or section, not both' });
    }
  })
  .openapi('CreateBooking');

export const BookingHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY, '1-255 characters: letters, digits, _ . : -')
    .optional()
    .openapi({ description: 'Retry-safe key: the same key and body replay the first reply' }),
  'x-admission-token': z
    .string()
    .max(300)
    .optional()
    .openapi({ description: 'The admission pass from the waiting room (events with a waiting room only)' }),
});

// ---- waiting room ----
export const QueueIdParam = z.string().regex(/^q_[a-z0-9]{12}_[0-9a-f]{16}$/, 'not a queue id').openapi({ example: 'q_3k9x0a2mq7zb_0123456789abcdef' });
export const QueueStatus = z
  .object({
    queueId: z.string(),
    eventId: z.string(),
    status: z.enum(['waiting', 'admitted', 'sold_out', 'expired', 'closed']).openapi({
      description: 'sold_out: nothing is free and the held tickets expected back (at the share observed in this sale) cannot reach your place; not final: tickets that come back reopen admission for those who stay',
    }),
    position: z.number().int().nullable(),
    aheadOfYou: z.number().int().nullable(),
    estimatedWaitSeconds: z.number().int().nullable(),
    estimatedWaitRange: z.object({ low: z.number().int(), high: z.number().int().nullable() }).nullable(),
    drawAt: z.string(),
    admissionToken: z.string().optional(),
    admissionExpiresAt: z.string().optional(),
    admissionUseBy: z.string().optional().openapi({ description: 'admitted: make a hold with the pass by then, or its slot goes to the next person (absent once it has a hold)' }),
    passTickets: z.number().int().optional().openapi({ description: 'admitted: the most tickets the pass allows (fewer than the per-person limit when only that many were left); more is 409 /problems/pass-ticket-limit' }),
    singleSeatsOnly: z.boolean().optional().openapi({ description: 'admitted: only scattered single seats are left (hold them one by one, or best available with adjacent: false)' }),
    ticketsHeldAhead: z.number().int().optional().openapi({ description: 'waiting, when free stock does not reach your place: tickets held by people admitted before you, which may come back' }),
    chance: z.enum(['likely', 'unlikely']).optional().openapi({ description: 'waiting: likely = free stock reaches your place; unlikely = only tickets that come back could' }),
    bookingId: z.string().optional(),
  })
  .openapi('QueueStatus');
export const Fairness = z
  .object({
    eventId: z.string(),
    seedHash: z.string(),
    seed: z.string().nullable(),
    drawAt: z.string(),
    algorithm: z.string(),
    preOpening: z.object({
      count: z.number().int(),
      offset: z.number().int(),
      places: z.array(z.object({ queueId: z.string(), drawScore: z.number() })),
    }),
  })
  .openapi('Fairness');
export const QueueSettingsOut = z
  .object({
    enabled: z.boolean(), opensAt: z.string(), admissionRatePerSecond: z.number(), passTtlSeconds: z.number(), seedHash: z.string(),
    passGraceSeconds: z.number().optional(), passUnseenGraceSeconds: z.number().optional(),
  })
  .openapi('QueueSettingsOut');

export const Reservation = z
  .object({
    bookingId: z.string(),
    status: z.literal('RESERVED'),
    eventId: z.string(),
    tierId: z.string(),
    ticketCount: z.number().int(),
    seats: z.array(z.string()),
    amount: z.number().int(),
    currency: z.string(),
    expiresAt: z.string(),
    createdAt: z.string(),
  })
  .openapi('Reservation');

export const Booking = z
  .object({
    bookingId: z.string(),
    status: z.enum(BOOKING_STATES),
    eventId: z.string(),
    tierId: z.string(),
    userId: z.string(),
    ticketCount: z.number().int(),
    seats: z.array(z.string()),
    amount: z.number().int(),
    currency: z.string(),
    expiresAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    failureReason: z.string().nullable(),
  })
  .openapi('Booking');
export const BookingList = z.object({ bookings: z.array(Booking) }).openapi('BookingList');
export const Cancelled = z.object({ bookingId: z.string(), status: z.literal('CANCELLED') }).openapi('Cancelled');

export const problemResponses = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((s) => [s, { description: 'Problem', content: { 'application/problem+json': { schema: Problem } } }]),
  );
