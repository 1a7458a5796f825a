import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { createVerifier } from 'fast-jwt';
import type { AppEnv } from './env.js';
import { problem } from './problem.js';

const BASE = '/admin/queues';
const COOKIE = 'fg_admin';

/**
 * bull-board at /admin/queues, for admins only. A browser cannot send a bearer header, so the page is opened once as
 * /admin/queues?access_token=<admin JWT>: the token moves into an HttpOnly, SameSite=Strict cookie scoped to this path
 * (and out of the address bar), and the page's own API calls carry it from there.
 */
export function mountQueueBoard(app: Hono<AppEnv>, queues: Queue[], jwtSecret: string) {
  const verify = createVerifier({ key: jwtSecret, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], clockTolerance: 30_000 });
  const isAdmin = (token: string | undefined) => {
    if (!token) return false;
    try {
      return (verify(token) as { role?: string }).role === 'admin';
    } catch {
      return false;
    }
  };
  const guard = async (c: Parameters<Parameters<Hono<AppEnv>['use']>[1]>[0], next: () => Promise<void>) => {
    const query = c.req.query('access_token');
    if (query !== undefined) {
      if (!isAdmin(query)) return problem(c, 401, { type: '/problems/unauthorized', title: 'Unauthorized', detail: 'an admin token is required' });
      setCookie(c, COOKIE, query, { path: BASE, httpOnly: true, sameSite: 'Strict', secure: c.req.url.startsWith('https:'), maxAge: 3600 });
      return c.redirect(BASE);
    }
    const header = c.req.header('authorization');
    const token = header?.startsWith('Bearer ') ? header.slice(7) : getCookie(c, COOKIE);
    if (!isAdmin(token)) {
      if (token) deleteCookie(c, COOKIE, { path: BASE });
      return problem(c, 401, { type: '/problems/unauthorized', title: 'Unauthorized', detail: `open ${BASE}?access_token=<admin token>` }, { 'www-authenticate': 'Bearer' });
    }
    await next();
  };
  app.use(BASE, guard);
  app.use(`${BASE}/*`, guard);
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(BASE);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  app.route(BASE, serverAdapter.registerPlugin());
}
