import { createHmac, timingSafeEqual } from 'node:crypto';
import { BOOKING_ID, EVENT_ID, SEAT_ID, eventOfBooking, type BookingId, type EventId } from '../ids.js';

/**
 * Signed ticket codes, printed as a QR code and checked at the gate.
 *
 * Format: `FG1.<payload>.<sig>`, e.g. `FG1.bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1~2~A-12-7.Xk…`: about 70 characters,
 * a version-5 QR code (37×37 modules) at error correction M.
 * - `payload` is `<bookingId>~<ticket>[~<seat>]` in plain text. Every character of it is already URL- and QR-safe
 *   (`[A-Za-z0-9_~-]`), so it is not base64-encoded: the code stays short (a smaller QR version with larger modules
 *   scans better off a phone screen) and gate staff can read it. The event id is not repeated: a booking id carries
 *   its event (`engine/ids.ts`), and signing refuses an event id that does not match the booking.
 * - `sig` is HMAC-SHA256(secret, `FG1.<payload>`) truncated to 18 bytes (144 bits), base64url: exactly 24 characters,
 *   with no padding bits, so every character of the signature matters.
 * The code is signed, not encrypted: anyone can read the booking id, ticket number and seat in it.
 */
export type TicketClaims = {
  eventId: EventId;
  bookingId: BookingId;
  /** 1-based index of the ticket within its booking. */
  ticket: number;
  /** Seat id such as `A-12-7`; absent for general admission. */
  seat?: string;
};

export type VerifyResult = { ok: true; claims: TicketClaims } | { ok: false; reason: 'malformed' | 'bad-signature' };

export const TICKET_CODE_VERSION = 'FG1';
/** Secrets shorter than this are refused (HMAC-SHA256 wants a key of at least its output size). */
export const MIN_SECRET_BYTES = 32;
/** Upper bound on a code's length; anything longer is rejected before it is hashed. */
export const MAX_TICKET_CODE_LENGTH = 128;
export const MAX_TICKETS_IN_CODE = 9999;

const SIG_BYTES = 18;
/**
 * The whole grammar, checked before anything is hashed. The ticket number has no leading zeros, so each set of
 * claims has exactly one encoding. Groups: 1 the signed part, 2 booking id, 3 ticket, 4 seat, 5 signature.
 */
const CODE = /^(FG1\.(bk_[a-z0-9]{12}_[a-z0-9]{16})~([1-9][0-9]{0,3})(?:~([A-Za-z0-9]{1,16}-[0-9]{1,4}-[0-9]{1,4}))?)\.([A-Za-z0-9_-]{24})$/;

function keyBytes(secret: string | Uint8Array): Buffer {
  const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (key.length < MIN_SECRET_BYTES) throw new Error(`ticket code secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return key;
}

function mac(key: Buffer, signed: string): Buffer {
  return createHmac('sha256', key).update(signed, 'utf8').digest().subarray(0, SIG_BYTES);
}

/**
 * Signs one ticket. Throws on invalid claims (a caller bug): ids that do not match `engine/ids.ts`, a booking of
 * another event, a ticket number outside 1..9999, or a malformed seat id.
 */
export function signTicketCode(secret: string | Uint8Array, claims: TicketClaims): string {
  const { eventId, bookingId, ticket, seat } = claims;
  if (!EVENT_ID.test(eventId)) throw new Error(`signTicketCode: bad event id ${JSON.stringify(eventId)}`);
  if (!BOOKING_ID.test(bookingId)) throw new Error(`signTicketCode: bad booking id ${JSON.stringify(bookingId)}`);
  if (eventOfBooking(bookingId) !== eventId) throw new Error(`signTicketCode: booking ${bookingId} is not of event ${eventId}`);
  if (!Number.isInteger(ticket) || ticket < 1 || ticket > MAX_TICKETS_IN_CODE) {
    throw new Error(`signTicketCode: ticket must be an integer in 1..${MAX_TICKETS_IN_CODE}, got ${ticket}`);
  }
  if (seat !== undefined && !SEAT_ID.test(seat)) throw new Error(`signTicketCode: bad seat id ${JSON.stringify(seat)}`);
  const signed = `${TICKET_CODE_VERSION}.${bookingId}~${ticket}${seat === undefined ? '' : `~${seat}`}`;
  return `${signed}.${mac(keyBytes(secret), signed).toString('base64url')}`;
}

/**
 * Checks a scanned code. Never throws for any `code` (only for a too-short secret, which is a configuration bug).
 * `malformed`: not shaped like a ticket code; `bad-signature`: shaped like one but not signed with `secret`
 * (forged, altered, or from another environment). The signature is compared in constant time.
 */
export function verifyTicketCode(secret: string | Uint8Array, code: string): VerifyResult {
  const key = keyBytes(secret);
  const m = typeof code === 'string' && code.length <= MAX_TICKET_CODE_LENGTH ? CODE.exec(code) : null;
  if (!m) return { ok: false, reason: 'malformed' };
  const [, signed, booking, ticket, seat, sig] = m as unknown as [string, string, string, string, string | undefined, string];
  // 24 base64url characters are exactly 18 bytes with no spare bits: each signature has one spelling.
  if (!timingSafeEqual(Buffer.from(sig, 'base64url'), mac(key, signed))) return { ok: false, reason: 'bad-signature' };
  const bookingId = booking as BookingId;
  const claims: TicketClaims = { eventId: eventOfBooking(bookingId), bookingId, ticket: Number(ticket) };
  if (seat !== undefined) claims.seat = seat;
  return { ok: true, claims };
}

/**
 * A stable key per ticket for "already scanned" bookkeeping: `<bookingId>#<ticket>`. The seat is not part of it:
 * a ticket is one admission whether or not its seat was changed and the code re-issued.
 */
export function ticketKey(claims: Pick<TicketClaims, 'bookingId' | 'ticket'>): string {
  return `${claims.bookingId}#${claims.ticket}`;
}
