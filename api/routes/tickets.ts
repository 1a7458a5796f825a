import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { BookingId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { BookingIdParam, problemResponses, ReasonInput } from '../schemas.js';
import { validationHook } from '../validate.js';

const Params = z.object({ bookingId: BookingIdParam });
const GateResult = z
  .object({
    result: z.enum(['valid', 'already_used', 'invalid']),
    bookingId: z.string().optional(),
    ticket: z.number().int().optional(),
    seat: z.string().nullable().optional(),
    firstScannedAt: z.string().optional(),
    reason: z.string().optional(),
  })
  .openapi('GateResult');

const DecideInput = z
  .strictObject({
    decision: z.enum(['approve', 'deny']),
    reason: ReasonInput.optional(),
    overrideTicketUsed: z
      .boolean()
      .optional()
      .openapi({ description: 'Refund even though a ticket of the booking was scanned at the gate (approve only, with a reason)' }),
  })
  .superRefine((b, ctx) => {
    if (!b.overrideTicketUsed) return;
    if (b.decision !== 'approve') ctx.addIssue({ code: 'custom', path: ['overrideTicketUsed'], message: 'only an approval can override a used ticket' });
    if (!b.reason) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'required when overriding a used ticket' });
  });

export const tickets = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(
    createRoute({
      method: 'get',
      path: '/api/bookings/{bookingId}/tickets.pdf',
      summary: 'Your tickets as a PDF (one page per ticket, each with its signed QR code)',
      security: [{ bearer: [] }],
      request: { params: Params },
      responses: {
        200: { description: 'PDF', content: { 'application/pdf': { schema: z.string().openapi({ format: 'binary' }) } } },
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const user = c.var.user;
      const { booking, pdf } = await c.var.deps.engine.tickets.pdf(c.req.valid('param').bookingId as BookingId, { userId: user.id, admin: user.admin });
      return c.body(pdf as Uint8Array<ArrayBuffer>, 200, {
        'content-type': 'application/pdf',
        'content-disposition': `attachment; filename="tickets-${booking.bookingId}.pdf"`,
      }) as never;
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/tickets/verify',
      summary: 'Gate check of a ticket code: valid (once), already used, or invalid (gate or admin token)',
      security: [{ bearer: [] }],
      request: {
        body: {
          content: { 'application/json': { schema: z.strictObject({ code: z.string().min(1).max(200), gate: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).optional() }) } },
          required: true,
        },
      },
      responses: { 200: { description: 'Result', content: { 'application/json': { schema: GateResult } } }, ...problemResponses(400, 401, 403) },
    }),
    async (c) => {
      const { code, gate } = c.req.valid('json');
      return c.json(await c.var.deps.engine.tickets.verify(code, gate), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/bookings/{bookingId}/refund',
      summary: 'Ask for a refund: automatic until the cutoff before the event, an admin decides after it',
      security: [{ bearer: [] }],
      request: {
        params: Params,
        body: { content: { 'application/json': { schema: z.strictObject({ reason: ReasonInput.optional() }) } }, required: false },
      },
      responses: {
        202: {
          description: 'Requested',
          content: {
            'application/json': {
              schema: z.object({ bookingId: z.string(), status: z.literal('REFUND_REQUESTED'), decision: z.enum(['automatic', 'pending_review']) }),
            },
          },
        },
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const bookingId = c.req.valid('param').bookingId as BookingId;
      const r = await c.var.deps.engine.refunds.request(bookingId, c.var.user.id, c.req.valid('json')?.reason);
      return c.json({ bookingId, ...r }, 202);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/api/admin/bookings/{bookingId}/refund',
      summary: 'Approve or deny a refund request (admin); refunding a booking whose tickets were scanned needs overrideTicketUsed and a reason',
      security: [{ bearer: [] }],
      request: {
        params: Params,
        body: {
          content: { 'application/json': { schema: DecideInput } },
          required: true,
        },
      },
      responses: {
        200: {
          description: 'Decided',
          content: { 'application/json': { schema: z.object({ bookingId: z.string(), status: z.enum(['REFUND_REQUESTED', 'CONFIRMED', 'TICKETS_DELIVERED']) }) } },
        },
        ...problemResponses(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const bookingId = c.req.valid('param').bookingId as BookingId;
      const { decision, reason, overrideTicketUsed } = c.req.valid('json');
      const r = await c.var.deps.engine.refunds.decide(bookingId, decision === 'approve', c.var.user.id, { reason, overrideTicketUsed });
      if (decision === 'deny') c.var.deps.metrics.refunds.inc({ outcome: 'denied' });
      return c.json({ bookingId, ...r }, 200);
    },
  );
