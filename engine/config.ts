/** The settings the engine needs, handed in through deps (the engine never reads the environment). */
export type EngineConfig = {
  holdTtlMs: number;
  idempotencyTtlMs: number;
  defaultMaxTicketsPerUser: number;
  /** How long a process keeps an event's catalog record before reading Postgres again. */
  catalogCacheMs: number;
  /** HMAC key of admission passes (waiting room). */
  admissionSecret: string;
};

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  holdTtlMs: 15 * 60_000,
  idempotencyTtlMs: 24 * 3600_000,
  defaultMaxTicketsPerUser: 8,
  catalogCacheMs: 5_000,
  admissionSecret: 'floodgate-dev-admission-secret',
};
