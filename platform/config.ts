import { z } from 'zod';

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const int = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);
const DEV_JWT_SECRET = 'floodgate-dev-secret-change-me-in-production';
const DEV_ADMISSION_SECRET = 'floodgate-dev-admission-secret-change-me';
const DEV_TICKET_SECRET = 'floodgate-dev-ticket-secret-change-me-please-32b';
/** Production secrets: at least this long, and not guessable (see weakSecret). */
const PRODUCTION_SECRET_MIN = 32;

/**
 * Why `secret` is too weak for production, or undefined when it is not: shorter than `minLength`, few distinct
 * characters, one character or a short pattern repeated (`aaaaaaaaaaaaaaaa`, `abcabcabc...`), a run of 8 consecutive
 * characters (`abcdefgh`, `12345678`), or one character making up more than a quarter of it. Heuristics, not a proof:
 * generate secrets with e.g. `openssl rand -hex 32`.
 */
export function weakSecret(secret: string, minLength = PRODUCTION_SECRET_MIN): string | undefined {
  if (secret.length < minLength) return `too short: at least ${minLength} characters (e.g. openssl rand -hex 32)`;
  const counts = new Map<string, number>();
  for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  if (counts.size < 10) return `too few distinct characters (${counts.size}): use a random value (e.g. openssl rand -hex 32)`;
  if (/^(.{1,8})\1+$/s.test(secret)) return 'a repeated pattern: use a random value (e.g. openssl rand -hex 32)';
  if (Math.max(...counts.values()) > secret.length / 4) return 'one character repeats too often: use a random value (e.g. openssl rand -hex 32)';
  for (let i = 1, run = 1; i < secret.length; i++) {
    const step = secret.charCodeAt(i) - secret.charCodeAt(i - 1);
    const before = i > 1 ? secret.charCodeAt(i - 1) - secret.charCodeAt(i - 2) : 0;
    run = Math.abs(step) === 1 ? (step === before ? run + 1 : 2) : 1;
    if (run >= 8) return 'a run of consecutive characters (abcdefgh, 12345678): use a random value (e.g. openssl rand -hex 32)';
  }
  return undefined;
}

/** An optional setting: empty means unset (docker-compose passes unset variables as ""). */
const optional = <T extends z.ZodType>(t: T) => z.preprocess((v) => (v === '' ? undefined : v), t.optional());

/** Every setting, from the environment. Defaults make `npm start` work on a developer machine. */
const Env = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: z.string().default('127.0.0.1'),
    PORT: int(3000, 0),
    /** API processes sharing PORT (node:cluster, one primary forking them); unset: one per core
     *  (os.availableParallelism()); 1: a single process, no primary. */
    API_PROCESSES: optional(z.coerce.number().int().min(1).max(256)),
    REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
    /** Comma-separated host:port seeds; when set, Floodgate talks to a Redis Cluster instead of REDIS_URL. */
    REDIS_CLUSTER_NODES: z.string().default(''),
    /** Comma-separated host:port of Redis Sentinels; when set, the primary named REDIS_SENTINEL_NAME is found through
     *  them (and followed across a failover) instead of REDIS_URL. */
    REDIS_SENTINELS: z.string().regex(/^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'host:port,host:port').default(''),
    REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]+$/).default('floodgate'),
    /** After every state-changing script, WAIT until this many replicas have it (0 = off: no replica to wait for).
     *  No confirmation within REDIS_WAIT_TIMEOUT_MS: the request answers 503 and the buyer's retry replays it. */
    REDIS_WAIT_REPLICAS: int(0, 0),
    REDIS_WAIT_TIMEOUT_MS: int(200),
    DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/floodgate'),
    /** Comma-separated host:port of a primary and its standbys: the pool connects to the one that accepts writes
     *  (pg_is_in_recovery() false) and looks again after a connection error. Unset: DATABASE_URL's host. */
    PG_HOSTS: z.string().regex(/^$|^[^,:\s]+(:\d+)?(,[^,:\s]+(:\d+)?)*$/, 'host:port,host:port').default(''),
    PG_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a plain lower-case schema name').default('public'),
    PG_POOL_MAX: int(10),
    /** Longest a Postgres statement may run; past it the API answers 503 and workers retry. */
    PG_STATEMENT_TIMEOUT_MS: int(4_000),
    JWT_SECRET: z.string().min(16, 'at least 16 characters').default(DEV_JWT_SECRET),
    /** HMAC key of waiting-room admission passes. */
    ADMISSION_SECRET: z.string().min(16, 'at least 16 characters').default(DEV_ADMISSION_SECRET),
    /** How often the admission worker admits people (ms). */
    ADMISSION_TICK_MS: int(100),
    /**
     * The pace of admission (engine/waiting-room/pace.ts): tickets in play <= sold/s x budget x HOLD_TTL_MS; 0 = off,
     * the default: with buyers who poll, it starved the full-size demo (see the README).
     */
    ADMISSION_HOLD_BUDGET: z.coerce.number().min(0).max(1).default(0),
    KEY_NAMESPACE: z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits, _ (no braces or colons)').default('fg'),
    HOLD_TTL_MS: int(15 * 60_000),
    /** How long a waitlist offer lasts: the hold made for the next buyer in line of a sold-out tier (ms). */
    WAITLIST_OFFER_TTL_MS: int(5 * 60_000),
    /** How often the waitlist worker offers returned tickets to the lines and closes ended offers (ms). */
    WAITLIST_TICK_MS: int(1000),
    IDEMPOTENCY_TTL_MS: int(24 * 3600_000),
    MAX_TICKETS_PER_USER: int(8),
    MAX_TICKETS_PER_BOOKING: int(10),
    BODY_LIMIT_BYTES: int(16 * 1024),
    /** The API's deadline per Redis command. With auto-pipelining a command may first wait for the batch in flight,
     *  so a stalled Redis is answered (503) within about twice this. */
    REDIS_COMMAND_TIMEOUT_MS: int(500),
    REQUEST_TIMEOUT_MS: int(5000),
    WORKERS: z.string().default('persist,sweeper,admission,payment,notify,refund,reconcile,waitlist'),
    /** How often the reconcile worker compares Redis with Postgres (ms). */
    RECONCILE_INTERVAL_MS: int(5_000),
    /** After a Redis failover, the reconcile worker rebuilds a still-mismatched event from Postgres by itself (once). */
    RECOVERY_AUTO_REBUILD: bool.default(true),
    SWEEP_INTERVAL_MS: int(2000),
    PERSIST_BATCH_SIZE: int(500),
    /** Worker threads rendering ticket PDFs in the notify worker; unset: one per core less one (at least 1); 0: none. */
    PDF_RENDER_THREADS: optional(z.coerce.number().int().min(0)),
    /** notify jobs one workers process runs at once; unset: 32 per render thread, at least 8. */
    NOTIFY_CONCURRENCY: optional(z.coerce.number().int().min(1)),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DEMO_EVENT: bool.default(true),
    /** Requests per user and per route group (hold, pay, join) in RATE_LIMIT_WINDOW_SECONDS; 0 = no limit. */
    RATE_LIMIT_PER_USER: int(20, 0),
    /** Requests per client IP and per route group in the same window; 0 = no limit. */
    RATE_LIMIT_PER_IP: int(300, 0),
    RATE_LIMIT_WINDOW_SECONDS: int(10),
    /** Open waiting-room status streams (GET /api/queue/:queueId/events) one user may hold at once; 0 = no cap. */
    STREAM_MAX_PER_USER: int(3, 0),
    /** Open status streams one client IP may hold at once (people behind one NAT share it); 0 = no cap. */
    STREAM_MAX_PER_IP: int(100, 0),
    /** How many reverse proxies stand in front of the API. The client IP is the entry of X-Forwarded-For this many
     *  hops from the right (as Express's `trust proxy` counts): entries further left are the client's own words.
     *  0 = the socket's address. Default: 1 when the older TRUST_PROXY=true is set, 0 otherwise. */
    TRUST_PROXY_HOPS: optional(z.coerce.number().int().min(0).max(10)),
    /** Deprecated: TRUST_PROXY=true means TRUST_PROXY_HOPS=1 (one load balancer). */
    TRUST_PROXY: bool.default(false),
    /** HMAC key of ticket codes (QR codes checked at the gate); at least 32 characters. */
    TICKET_SECRET: z.string().min(32, 'at least 32 characters').default(DEV_TICKET_SECRET),
    PAYMENTS_PROVIDER: z.enum(['simulated', 'stripe']).default('simulated'),
    /** With NODE_ENV=production the simulated provider is refused unless this is true (staging, demos). */
    ALLOW_SIMULATED_PAYMENTS: bool.default(false),
    PAYMENT_MAX_ATTEMPTS: int(3),
    /** A hold being paid lives at least this long after the payment started. */
    PAYMENT_WINDOW_MS: int(120_000),
    /** Simulated provider: answer latency, "min" or "min-max" in ms. */
    SIMULATED_LATENCY_MS: z.string().regex(/^\d+(-\d+)?$/).default('0'),
    STRIPE_SECRET_KEY: optional(z.string().startsWith('sk_', 'a Stripe secret key (sk_...)')),
    /** Webhook signing secrets (whsec_...), comma-separated: two during a rotation. */
    STRIPE_WEBHOOK_SECRET: optional(z.string()),
    /** Where the Stripe API is (tests point it at a local double). Default: Stripe's. */
    STRIPE_API_URL: optional(z.string().url()),
    REFUND_CUTOFF_HOURS: int(24, 0),
    MAIL_PROVIDER: z.enum(['outbox', 'sendgrid', 'smtp']).default('outbox'),
    MAIL_FROM: z.string().email().default('tickets@floodgate.local'),
    OUTBOX_DIR: z.string().default('.outbox'),
    SENDGRID_API_KEY: optional(z.string()),
    SENDGRID_BASE_URL: optional(z.string().url()),
    SMTP_URL: optional(z.string().url()),
    /** SMS for bookings that give a phone number: a log line (default), Twilio, or none at all. */
    SMS_PROVIDER: z.enum(['none', 'log', 'twilio']).default('log'),
    /** Twilio (SMS_PROVIDER=twilio): the account (AC + 32 hex), its auth token, and the sender: a Twilio number
     *  (E.164) in TWILIO_FROM or a Messaging Service (MG + 32 hex) in TWILIO_MESSAGING_SERVICE_SID. */
    TWILIO_ACCOUNT_SID: optional(z.string().regex(/^AC[0-9a-f]{32}$/, 'a Twilio Account SID (AC + 32 hex digits)')),
    TWILIO_AUTH_TOKEN: optional(z.string().min(16, 'at least 16 characters')),
    TWILIO_FROM: optional(z.string().regex(/^\+[1-9]\d{6,14}$/, 'a phone number in E.164 (+15551234567)')),
    TWILIO_MESSAGING_SERVICE_SID: optional(z.string().regex(/^MG[0-9a-f]{32}$/, 'a Messaging Service SID (MG + 32 hex digits)')),
    /** The public URL of POST /api/webhooks/twilio: Twilio posts delivery receipts there, and their signatures are
     *  checked against it. Unset: no receipts are asked for (and the route answers 404). */
    TWILIO_STATUS_CALLBACK_URL: optional(z.string().url()),
    /** Where the Twilio API is (tests point it at a local double). Default: Twilio's. */
    TWILIO_API_URL: optional(z.string().url()),
    /** Where buyers reach Floodgate: the SMS links to the tickets under it. Default: http://HOST:PORT. */
    PUBLIC_BASE_URL: optional(z.string().url()),
    /** Where the process serves /metrics (and /health) for Prometheus, apart from the API's public port (0 = none). */
    METRICS_PORT: int(0, 0),
    /** Where `npm start` keeps the Redis and Postgres it starts itself (when none answers). */
    DATA_DIR: z.string().default('.data'),
  })
  .superRefine((e, ctx) => {
    if (e.NODE_ENV === 'production') {
      for (const [name, value, dev] of [
        ['JWT_SECRET', e.JWT_SECRET, DEV_JWT_SECRET],
        ['ADMISSION_SECRET', e.ADMISSION_SECRET, DEV_ADMISSION_SECRET],
        ['TICKET_SECRET', e.TICKET_SECRET, DEV_TICKET_SECRET],
      ] as const) {
        const weak = value === dev ? 'must be set in production' : weakSecret(value);
        if (weak) ctx.addIssue({ code: 'custom', path: [name], message: weak });
      }
      if (e.PAYMENTS_PROVIDER === 'stripe' && e.STRIPE_WEBHOOK_SECRET) {
        for (const secret of e.STRIPE_WEBHOOK_SECRET.split(',').map((s) => s.trim())) {
          // Stripe's are whsec_ and 32 random characters
          const weak = weakSecret(secret.replace(/^whsec_/, ''), 24);
          if (weak) ctx.addIssue({ code: 'custom', path: ['STRIPE_WEBHOOK_SECRET'], message: weak });
        }
      }
      if (e.SMS_PROVIDER === 'twilio') {
        // Twilio's auth tokens are 32 random hex digits
        const weak = e.TWILIO_AUTH_TOKEN ? weakSecret(e.TWILIO_AUTH_TOKEN, 32) : undefined;
        if (weak) ctx.addIssue({ code: 'custom', path: ['TWILIO_AUTH_TOKEN'], message: weak });
        if (e.TWILIO_API_URL) {
          ctx.addIssue({ code: 'custom', path: ['TWILIO_API_URL'], message: 'tests only: in production the SDK talks to Twilio itself' });
        }
        if (e.TWILIO_STATUS_CALLBACK_URL && !e.TWILIO_STATUS_CALLBACK_URL.startsWith('https://')) {
          ctx.addIssue({ code: 'custom', path: ['TWILIO_STATUS_CALLBACK_URL'], message: 'must be https in production (Twilio signs the URL, not the transport)' });
        }
        if (!e.PUBLIC_BASE_URL?.startsWith('https://')) {
          ctx.addIssue({ code: 'custom', path: ['PUBLIC_BASE_URL'], message: 'must be the public https URL in production: SMS link buyers to it' });
        }
      }
      if (e.PAYMENTS_PROVIDER === 'simulated' && !e.ALLOW_SIMULATED_PAYMENTS) {
        ctx.addIssue({
          code: 'custom',
          path: ['PAYMENTS_PROVIDER'],
          message: 'simulated payments take no money: refused in production unless ALLOW_SIMULATED_PAYMENTS=true (staging, demos)',
        });
      }
    }
    if (e.TRUST_PROXY_HOPS !== undefined && e.TRUST_PROXY && e.TRUST_PROXY_HOPS === 0) {
      ctx.addIssue({ code: 'custom', path: ['TRUST_PROXY_HOPS'], message: 'TRUST_PROXY=true contradicts TRUST_PROXY_HOPS=0: set only TRUST_PROXY_HOPS' });
    }
    if (e.PAYMENTS_PROVIDER === 'stripe' && !e.STRIPE_SECRET_KEY) {
      ctx.addIssue({ code: 'custom', path: ['STRIPE_SECRET_KEY'], message: 'required when PAYMENTS_PROVIDER=stripe' });
    }
    if (e.PAYMENTS_PROVIDER === 'stripe' && !e.STRIPE_WEBHOOK_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['STRIPE_WEBHOOK_SECRET'], message: 'required when PAYMENTS_PROVIDER=stripe' });
    }
    if (e.MAIL_PROVIDER === 'sendgrid' && !e.SENDGRID_API_KEY) {
      ctx.addIssue({ code: 'custom', path: ['SENDGRID_API_KEY'], message: 'required when MAIL_PROVIDER=sendgrid' });
    }
    if (e.SMS_PROVIDER === 'twilio') {
      for (const name of ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] as const) {
        if (!e[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'required when SMS_PROVIDER=twilio' });
      }
      if (!e.TWILIO_FROM && !e.TWILIO_MESSAGING_SERVICE_SID) {
        ctx.addIssue({ code: 'custom', path: ['TWILIO_FROM'], message: 'TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required when SMS_PROVIDER=twilio' });
      }
    }
    if (e.MAIL_PROVIDER === 'smtp' && !e.SMTP_URL) {
      ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'required when MAIL_PROVIDER=smtp' });
    }
  })
  .transform(({ TRUST_PROXY_HOPS, PUBLIC_BASE_URL, ...e }) => ({
    ...e,
    TRUST_PROXY_HOPS: TRUST_PROXY_HOPS ?? (e.TRUST_PROXY ? 1 : 0),
    PUBLIC_BASE_URL: PUBLIC_BASE_URL ?? `http://${e.HOST}:${e.PORT}`,
  }));

export type Config = Readonly<z.infer<typeof Env>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; lists every problem at once. The only reader of process.env. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const r = Env.safeParse(env);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return Object.freeze(r.data);
}
