import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Auth } from '../middleware/auth.js';
import { SESSION_COOKIE } from '../middleware/session.js';
import { EVENT_ID } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { problem } from '../problem.js';
import { waitPage } from '../pages/wait-page.js';

/** The waiting-room page, signed in by the web app's session cookie when there is one (see api/web). */
export const createPages = (auth: Auth) => {
  const session = (c: Context<AppEnv>) => {
    const token = getCookie(c, SESSION_COOKIE);
    return token && typeof auth.authenticate(token) !== 'string' ? { csrf: auth.csrfFor(token) } : undefined;
  };
  return new Hono<AppEnv>().get('/wait/:eventId', (c) => {
  const eventId = c.req.param('eventId');
  if (!EVENT_ID.test(eventId)) return problem(c, 404, { type: '/problems/not-found', title: 'Not found', detail: 'no such event' });
  c.header('cache-control', 'no-store');
  return c.html(waitPage(eventId, session(c)));
});
};
