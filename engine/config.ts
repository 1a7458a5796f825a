/** The settings the engine needs, handed in through deps (the engine never reads the environment). */
export type EngineConfig = {
  holdTtlMs: number;
  idempotencyTtlMs: number;
  defaultMaxTicketsPerUser: number;
  /** How long a process keeps an event's catalog record before reading Postgres again. */
  catalogCacheMs: number;
  /** HMAC key of admission passes (waiting room). */
  admissionSecret: string;
  /** HMAC key of ticket codes (the QR codes checked at the gate). At least 32 bytes. */
  ticketSecret: string;
  /** Payment attempts per booking before it is cancelled. */
  paymentMaxAttempts: number;
  /** A hold being paid lives at least this long after the payment started. */
  paymentWindowMs: number;
  /** Refunds are automatic until this many hours before the event; later an admin decides. */
  refundCutoffHours: number;
  /** How long a waitlist offer (a hold made for the next buyer in line) lasts; unset: 5 minutes. */
  waitlistOfferTtlMs?: number;
};

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  holdTtlMs: 15 * 60_000,
  idempotencyTtlMs: 24 * 3600_000,
  defaultMaxTicketsPerUser: 8,
  catalogCacheMs: 5_000,
  admissionSecret: 'floodgate-dev-admission-secret',
  ticketSecret: 'floodgate-dev-ticket-secret-change-me-please-32b',
  paymentMaxAttempts: 3,
  paymentWindowMs: 120_000,
  refundCutoffHours: 24,
};
