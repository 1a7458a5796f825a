import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import type { UserId } from '../engine/ids.js';
import type { RateLimitCheck } from '../engine/index.js';
import type { Metrics } from '../platform/metrics.js';
import type { Mailer } from '../integrations/mail/mailer.js';

/** `trustProxyHops`: how many reverse proxies stand in front of the API (see clientIp). Used by middleware/rate-limit.ts. */
export type RateLimitConfig = { perUser: number; perIp: number; windowSeconds: number; trustProxyHops: number };

/** Used by middleware/stream-slots.ts. */
export type StreamCapConfig = {
  /** Open status streams one user may hold at once, over all API processes; 0 = no cap. */
  perUser: number;
  /** Open status streams one client IP may hold at once; 0 = no cap. */
  perIp: number;
  /** A slot's lease: a stream renews it every leaseMs / 3; a process that dies frees its slots after this. */
  leaseMs?: number;
};

export type ApiConfig = {
  jwtSecret: string;
  /** Stripe webhook signing secrets (two during a rotation); none = the webhook route answers 404. */
  stripeWebhookSecrets?: string[];
  /** Twilio's status callbacks: the auth token that signs them and the URL they are sent to (none = the route answers 404). */
  twilio?: { authToken: string; statusCallbackUrl: string } | undefined;
  /** Per-user and per-IP limits on holds, payments and joins (none = no limits). */
  rateLimit?: RateLimitConfig;
  /** Caps on open status streams (Server-Sent Events) per user and per IP (none = no caps). */
  streams?: StreamCapConfig;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** The buyer's web app (api/web): where buyers reach it (sign-in links point there) and the sender of its e-mails. */
  web?: { publicBaseUrl: string; mailFrom: string };
};

/** Everything the API needs, handed to createApp (tests build it with their own namespace and schema). */
export type AppDeps = {
  engine: Engine;
  config: ApiConfig;
  log: Logger;
  metrics: Metrics;
  /** BullMQ queues shown at /admin/queues (none: no queue board). */
  queues?: Queue[];
  /** The web app's sign-in e-mails (none: the sign-in form says it is not configured). */
  mailer?: Mailer;
  /** Pings Redis and Postgres for /ready. */
  checks: { redis: () => Promise<unknown>; postgres: () => Promise<unknown> };
};

export type AuthUser = { id: UserId; admin: boolean; gate: boolean; email?: string };

export type AppEnv = {
  Variables: {
    deps: AppDeps;
    requestId: string;
    user: AuthUser;
    route: string;
    /** Set by the hold rate limit (middleware/rate-limit.ts) on POST /api/bookings when limits are on. */
    holdRateLimit: RateLimitCheck | undefined;
  };
};
