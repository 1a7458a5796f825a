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

export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
