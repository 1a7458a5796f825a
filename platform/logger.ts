import { pino, type Logger } from 'pino';

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
  '*.card*',
  '*.JWT_SECRET',
  '*.DATABASE_URL',
];

export type { Logger };

const CARD_LIKE = /(?:\d[ -]?){12,18}\d/g;
const luhn = (digits: string) => {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let n = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1 && (n *= 2) > 9) n -= 9;
    sum += n;
  }
  return sum % 10 === 0;
};

/** Masks anything that looks like a card number (13-19 digits passing Luhn) in a string. */
export function maskCardNumbers(s: string): string {
  return s.replace(CARD_LIKE, (m) => {
    const digits = m.replace(/[ -]/g, '');
    return digits.length >= 13 && digits.length <= 19 && luhn(digits) ? '[card]' : m;
  });
}

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
