import { Hono } from 'hono';
import { EVENT_ID } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { problem } from '../problem.js';
import { waitPage } from '../pages/wait-page.js';

export const pages = new Hono<AppEnv>().get('/wait/:eventId', (c) => {
  const eventId = c.req.param('eventId');
  if (!EVENT_ID.test(eventId)) return problem(c, 404, { type: '/problems/not-found', title: 'Not found', detail: 'no such event' });
  c.header('cache-control', 'no-store');
  return c.html(waitPage(eventId));
});
