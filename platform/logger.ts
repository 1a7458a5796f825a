import { pino, type Logger } from 'pino';
import { maskCardNumbers } from './card-numbers.js';

/** Paths never written to logs. Card-like numbers are refused at the edge and never reach a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-admission-token"]',
  'headers.authorization',
  '*.token',
  '*.admissionToken',
  '*.password',
  '*.secret',
  '*.secretKey',
  '*.apiKey',
  '*.authToken',
  '*.TWILIO_AUTH_TOKEN',
  '*.card*',
  '*.JWT_SECRET',
  '*.DATABASE_URL',
];

export type { Logger };

export { maskCardNumbers };

/** Deep copy of a log argument with card-like numbers masked in every string (errors become plain objects). */
function scrub(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return maskCardNumbers(v);
  if (depth > 6 || v === null || typeof v !== 'object') return v;
  if (v instanceof Error) return { type: v.name, message: maskCardNumbers(v.message), stack: v.stack && maskCardNumbers(v.stack) };
  if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrub(x, depth + 1)]));
}

/**
 * The root logger: JSON lines with the service name; secrets, tokens and authorization headers redacted by path, and
 * card-like numbers masked wherever they appear (the API refuses them, but a log line must never carry one).
 */
export function createLogger(service: string, level = 'info', destination?: { write(s: string): void }): Logger {
  const options = {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => scrub(a)));
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
