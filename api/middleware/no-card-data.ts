import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env.js';
import { problem } from '../problem.js';
import { containsCardNumber } from '../../platform/card-numbers.js';

/**
 * Floodgate never accepts raw card numbers (payment methods arrive tokenized): a request carrying one anywhere in its
 * body, query string or Idempotency-Key is refused with 400 raw-card-data before anything reads it further, so the
 * number reaches no log line, job or table. The body is read once here (the validators reuse the read).
 */
export const noCardData = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const refuse = () =>
      problem(c, 400, {
        type: '/problems/raw-card-data',
        title: 'Card numbers are not accepted',
        detail: 'send a payment method token (pm_...) from Stripe Elements or Checkout; card numbers must never be sent to this API',
      });
    const url = c.req.url;
    const q = url.indexOf('?');
    if (q >= 0 && containsCardNumber(decodeURIComponentSafe(url.slice(q + 1)))) return refuse();
    const key = c.req.header('idempotency-key');
    if (key && containsCardNumber(key)) return refuse();
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && c.req.header('content-length') !== '0') {
      const body = await c.req.text().catch(() => '');
      if (containsCardNumber(body)) return refuse();
    }
    await next();
  });

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
