import { randomUUID } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../env.js';

/** What a caller's X-Request-Id may be: short, and nothing that could split a header or a log line. */
export const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Every request gets an id, logged with its lines and sent back in X-Request-Id: the caller's own when it matches
 * REQUEST_ID (so a trace crosses the load balancer), a fresh UUID otherwise. A malformed one is replaced, never
 * echoed.
 */
export const requestId = () =>
  createMiddleware<AppEnv>(async (c, next) => {
    const given = c.req.header('x-request-id');
    const id = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.header('x-request-id', id);
    await next();
  });
