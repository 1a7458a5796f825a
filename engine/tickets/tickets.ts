import { withTx } from '../../platform/pg.js';
import { getBooking, getHolder, transition, whyCte, type Booking } from '../booking/bookings-repo.js';
import type { Bookings } from '../booking/bookings.js';
import type { Catalog } from '../catalog/catalog.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { BookingId, UserId } from '../ids.js';
import { signTicketCode, ticketKey, verifyTicketCode } from './ticket-code.js';
import { renderTicketsPdf, type TicketPdfInput } from './ticket-pdf.js';

/** What a delivery claim is for: the tickets by e-mail or SMS, or the refund confirmation. */
export type DeliveryChannel = 'email' | 'sms' | 'refund-email';

const HAS_TICKETS = new Set(['CONFIRMED', 'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUND_DENIED']);

export type GateResult =
  | { result: 'valid'; bookingId: string; ticket: number; seat: string | null }
  | { result: 'already_used'; bookingId: string; ticket: number; firstScannedAt: string }
  | { result: 'invalid'; reason: 'bad-signature' | 'malformed' | 'void' };

/** Tickets of confirmed bookings: signed codes, the PDF, delivery bookkeeping, and the gate check. */
export function createTickets(d: EngineDeps, catalog: Catalog, bookings: Pick<Bookings, 'get'>) {
  const codes = (b: Booking) =>
    Array.from({ length: b.ticketCount }, (_, i) =>
      signTicketCode(d.config.ticketSecret, { eventId: b.eventId, bookingId: b.bookingId, ticket: i + 1, ...(b.seats[i] ? { seat: b.seats[i] } : {}) }),
    );

  /**
   * The PDF of a booking the caller has read already (the notify worker: the recorded booking, its holder's name),
   * without reading either again. The caller has checked that it is paid.
   */
  async function renderFor(b: Booking, holderName: string | null, render: (input: TicketPdfInput) => Promise<Uint8Array> = renderTicketsPdf): Promise<Uint8Array> {
    const event = (await catalog.cached(b.eventId))!;
    const tier = event.tiers.find((t) => t.id === b.tierId);
    return render({
      event: { name: event.name, venue: event.venue, startsAt: event.startsAt },
      booking: { bookingId: b.bookingId, tierName: tier?.name ?? 'Ticket', holderName: holderName ?? b.userId },
      tickets: codes(b).map((code, i) => ({ seat: b.seats[i] ?? null, code })),
    });
  }

  return {
    codes,

    /**
     * The booking's tickets as a PDF (one page each). Someone else's booking: not found; not paid yet: 409.
     * `render` is where the PDF is drawn: in this thread by default, or a `createTicketPdfPool` (the notify worker).
     */
    async pdf(
      bookingId: BookingId,
      viewer?: { userId: UserId; admin?: boolean },
      render: (input: TicketPdfInput) => Promise<Uint8Array> = renderTicketsPdf,
    ): Promise<{ booking: Booking; pdf: Uint8Array }> {
      // the owner (or an admin) sees their booking even before the persist worker recorded it
      const b = viewer ? await bookings.get(bookingId, viewer) : await getBooking(d.pg, bookingId);
      if (!b) throw new DomainError('BOOKING_NOT_FOUND', 'no such booking');
      if (!HAS_TICKETS.has(b.status)) throw new DomainError('TICKETS_NOT_READY', `the booking is ${b.status}: tickets exist once it is paid`, { bookingStatus: b.status });
      return { booking: b, pdf: await renderFor(b, (await getHolder(d.pg, bookingId))?.name ?? null, render) };
    },

    render: renderFor,

    /**
     * The gate: valid once, then "already used"; a forged code, a refunded booking's, or one whose refund was approved
     * is invalid. The scan holds the booking's row lock (FOR SHARE) while it records itself, as a refund approval holds
     * it (FOR UPDATE) while it looks for scans: one of the two always sees the other.
     */
    async verify(code: string, gate?: string): Promise<GateResult> {
      const v = verifyTicketCode(d.config.ticketSecret, code);
      if (!v.ok) return { result: 'invalid', reason: v.reason };
      const b = await getBooking(d.pg, v.claims.bookingId);
      if (!b || v.claims.ticket > b.ticketCount) return { result: 'invalid', reason: 'void' };
      const key = ticketKey(v.claims);
      const row = await withTx(d.pg, async (tx) => {
        const { rows: now } = await tx.query<{ state: string }>(
          `SELECT state FROM bookings WHERE id = $1 FOR SHARE`,
          [b.bookingId],
        );
        if (!now[0] || !HAS_TICKETS.has(now[0].state)) return null;
        const { rows: refund } = await tx.query(`SELECT 1 FROM refunds WHERE booking_id = $1 AND status IN ('approved', 'refunded')`, [b.bookingId]);
        if (refund.length > 0) return null;
        const { rows } = await tx.query<{ scanned_at: Date; first: boolean }>(
          `WITH ins AS (INSERT INTO ticket_scans (ticket_key, booking_id, gate) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING scanned_at)
           SELECT scanned_at, true AS first FROM ins
           UNION ALL SELECT scanned_at, false FROM ticket_scans WHERE ticket_key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
          [key, b.bookingId, gate ?? null],
        );
        return rows[0]!;
      });
      if (!row) return { result: 'invalid', reason: 'void' };
      return row.first
        ? { result: 'valid', bookingId: b.bookingId, ticket: v.claims.ticket, seat: v.claims.seat ?? null }
        : { result: 'already_used', bookingId: b.bookingId, ticket: v.claims.ticket, firstScannedAt: row.scanned_at.toISOString() };
    },

    /**
     * Claims the right to send one channel's message for a booking: "claimed" once (the first run, or a run after a
     * claim was left unfinished for 10 minutes by a process that died); "sent" when it was sent; "in-flight" while
     * another run holds a fresh claim (the caller retries later: the message may or may not have gone out yet).
     */
    async claimDelivery(bookingId: BookingId, channel: DeliveryChannel): Promise<'claimed' | 'sent' | 'in-flight'> {
      const { rowCount } = await d.pg.query(
        `INSERT INTO deliveries (booking_id, channel, status) VALUES ($1, $2, 'sending')
         ON CONFLICT (booking_id, channel) DO UPDATE SET claimed_at = now()
           WHERE deliveries.status = 'sending' AND deliveries.claimed_at < now() - interval '10 minutes'`,
        [bookingId, channel],
      );
      if (rowCount === 1) return 'claimed';
      const { rows } = await d.pg.query<{ status: string }>('SELECT status FROM deliveries WHERE booking_id = $1 AND channel = $2', [bookingId, channel]);
      return rows[0]?.status === 'sent' ? 'sent' : 'in-flight';
    },

    /**
     * Records that a channel's message went out. `ticketsDelivered`: this channel is the only one the booking waits
     * for (the e-mail), so the same statement also moves it CONFIRMED -> TICKETS_DELIVERED, as
     * `markTicketsDelivered(bookingId, [channel])` would after it (one round trip instead of three). Returns whether
     * the booking moved.
     */
    async markDelivered(bookingId: BookingId, channel: DeliveryChannel, messageId: string, o: { ticketsDelivered?: boolean } = {}): Promise<boolean> {
      if (!o.ticketsDelivered) {
        await d.pg.query(`UPDATE deliveries SET status = 'sent', message_id = $3, sent_at = now() WHERE booking_id = $1 AND channel = $2`, [
          bookingId, channel, messageId,
        ]);
        return false;
      }
      // The UPDATE of deliveries runs whether or not the booking moves (a data-modifying WITH always runs to the end).
      // The booking moves only if that row was this claim's (`sent` returns it), as markTicketsDelivered's count
      // would require; the audit trigger records the cause set in `why`, as for bookings-repo's `transition`.
      const { rows } = await d.pg.query(
        `WITH sent AS (UPDATE deliveries SET status = 'sent', message_id = $3, sent_at = now() WHERE booking_id = $1 AND channel = $2 RETURNING booking_id),
              ${whyCte('$4')},
              cur AS (SELECT b.id FROM why, sent, bookings b WHERE b.id = sent.booking_id AND b.state = 'CONFIRMED' FOR UPDATE OF b)
         UPDATE bookings b SET state = 'TICKETS_DELIVERED', updated_at = now() FROM cur WHERE b.id = cur.id RETURNING b.id`,
        [bookingId, channel, messageId, `delivered: ${channel}`],
      );
      return rows.length === 1;
    },

    /** Releases an unfinished claim so the retry can send (the transport failed before accepting the message). */
    async releaseClaim(bookingId: BookingId, channel: DeliveryChannel): Promise<void> {
      await d.pg.query(`DELETE FROM deliveries WHERE booking_id = $1 AND channel = $2 AND status = 'sending'`, [bookingId, channel]);
    },

    /** CONFIRMED -> TICKETS_DELIVERED once every required channel has sent. */
    async markTicketsDelivered(bookingId: BookingId, channels: ('email' | 'sms')[]): Promise<boolean> {
      const { rows } = await d.pg.query<{ n: string }>(
        `SELECT count(*) AS n FROM deliveries WHERE booking_id = $1 AND status = 'sent' AND channel = ANY($2::text[])`,
        [bookingId, channels],
      );
      if (Number(rows[0]!.n) < channels.length) return false;
      return (await transition(d.pg, bookingId, ['CONFIRMED'], 'TICKETS_DELIVERED', `delivered: ${channels.join(', ')}`)) !== null;
    },
  };
}
export type Tickets = ReturnType<typeof createTickets>;
