import type { EngineDeps } from '../deps.js';
import type { BookingId } from '../ids.js';

/**
 * The SMS of each booking (table sms_messages, migration 0010), kept apart from the booking's state: TICKETS_DELIVERED
 * means the e-mail went out, and whether the SMS did is here. Statuses are the transport's (Twilio's message statuses)
 * plus `rejected` (refused outright, e.g. an invalid number) and `failed` (also Floodgate giving up retrying).
 */
export type SmsRecord = {
  bookingId: BookingId;
  provider: string;
  messageSid: string | null;
  status: string;
  errorCode: string | null;
  errorMessage: string | null;
  updatedAt: string;
};

/**
 * Twilio's statuses in the order a message goes through them. Status callbacks may arrive out of order (or twice): a
 * status replaces the recorded one only when it is further along, and a final one is never replaced.
 */
const RANK: Record<string, number> = {
  accepted: 0, scheduled: 0, queued: 1, sending: 2, sent: 3,
  delivered: 4, undelivered: 4, failed: 4, read: 4, canceled: 4, rejected: 4,
};
const rankSql = (col: string) => `CASE ${col} ${Object.entries(RANK).map(([s, r]) => `WHEN '${s}' THEN ${r}`).join(' ')} ELSE 0 END`;

type Row = { booking_id: string; provider: string; message_sid: string | null; status: string; error_code: string | null; error_message: string | null; updated_at: Date };
const toRecord = (r: Row): SmsRecord => ({
  bookingId: r.booking_id as BookingId, provider: r.provider, messageSid: r.message_sid, status: r.status,
  errorCode: r.error_code, errorMessage: r.error_message, updatedAt: r.updated_at.toISOString(),
});

export function createSmsMessages(d: Pick<EngineDeps, 'pg'>) {
  return {
    async get(bookingId: BookingId): Promise<SmsRecord | null> {
      const { rows } = await d.pg.query<Row>('SELECT * FROM sms_messages WHERE booking_id = $1', [bookingId]);
      return rows[0] ? toRecord(rows[0]) : null;
    },

    /**
     * The transport accepted the message (`status` as it answered, e.g. queued). A status callback that arrived first
     * (it can overtake the send's own answer) is kept when it is further along.
     */
    async accepted(bookingId: BookingId, provider: string, messageSid: string, status: string): Promise<void> {
      await d.pg.query(
        `INSERT INTO sms_messages (booking_id, provider, message_sid, status) VALUES ($1, $2, $3, $4)
         ON CONFLICT (booking_id) DO UPDATE SET provider = $2, message_sid = $3, error_code = NULL, error_message = NULL, updated_at = now(),
           status = CASE WHEN sms_messages.message_sid = $3 AND ${rankSql('sms_messages.status')} > ${rankSql('$4::text')} THEN sms_messages.status ELSE $4 END`,
        [bookingId, provider, messageSid, status],
      );
    },

    /** The message will not be sent: refused by the transport (`rejected`) or given up on (`failed`), with the reason. */
    async failed(bookingId: BookingId, provider: string, status: 'rejected' | 'failed', errorCode: string | null, errorMessage: string): Promise<void> {
      await d.pg.query(
        `INSERT INTO sms_messages (booking_id, provider, status, error_code, error_message) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (booking_id) DO UPDATE SET provider = $2, status = $3, error_code = $4, error_message = $5, updated_at = now()
           WHERE sms_messages.message_sid IS NULL`,
        [bookingId, provider, status, errorCode, errorMessage.slice(0, 500)],
      );
    },

    /**
     * A delivery receipt (status callback) for the booking's message. It is recorded even when the worker that sent
     * the message died before recording it (the callback then tells Floodgate the message was accepted). A receipt for
     * another message of the booking than the recorded one, or one behind the recorded status, changes nothing.
     * Answers whether it changed the record.
     */
    async receipt(bookingId: BookingId, provider: string, messageSid: string, status: string, errorCode: string | null): Promise<boolean> {
      const { rowCount } = await d.pg.query(
        `INSERT INTO sms_messages (booking_id, provider, message_sid, status, error_code) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (booking_id) DO UPDATE SET message_sid = $3, status = $4, error_code = COALESCE($5, sms_messages.error_code), updated_at = now()
           WHERE (sms_messages.message_sid = $3 OR sms_messages.message_sid IS NULL)
             AND (${rankSql('$4::text')} > ${rankSql('sms_messages.status')}
                  OR (${rankSql('$4::text')} = ${rankSql('sms_messages.status')} AND ${rankSql('sms_messages.status')} < 4))`,
        [bookingId, provider, messageSid, status, errorCode],
      );
      return rowCount === 1;
    },
  };
}
export type SmsMessages = ReturnType<typeof createSmsMessages>;
