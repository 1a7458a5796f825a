import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from './env.js';
import { bookings } from './routes/bookings.js';
import { BookingHeaders, CreateBooking } from './schemas.js';
import { validHeaders, validJson, validationHook } from './validate.js';

/** Both ways answer with the validated values, or with what the app's onError makes of an HTTPException. */
const answer = (c: { json: (o: unknown, s: 200) => Response }, v: unknown) => c.json(v, 200);
const onError = (err: Error, c: { json: (o: unknown, s: 400) => Response }) =>
  err instanceof HTTPException ? c.json({ http: err.status, message: err.message }, 400) : Promise.reject(err);

/** The route as @hono/zod-openapi validates it (the reference) and with validHeaders/validJson. */
function apps() {
  const route = createRoute({
    method: 'post',
    path: '/b',
    request: { headers: BookingHeaders, body: { content: { 'application/json': { schema: CreateBooking } }, required: true } },
    responses: { 200: { description: 'ok' } },
  });
  const reference = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(route, (c) =>
    answer(c, { header: c.req.valid('header'), json: c.req.valid('json') }),
  );
  const fast = new OpenAPIHono<AppEnv>().post('/b', validHeaders(BookingHeaders), validJson(CreateBooking), (c) =>
    answer(c, { header: c.req.valid('header'), json: c.req.valid('json') }),
  );
  reference.onError(onError);
  fast.onError(onError);
  return { reference, fast };
}

const EV = 'ev_0123456789ab';

describe('validHeaders / validJson (the hold route)', () => {
  const { reference, fast } = apps();
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['valid, both headers', { 'content-type': 'application/json', 'Idempotency-Key': 'k-1', 'x-admission-token': 'tok' }, JSON.stringify({ eventId: EV, ticketCount: 2 })],
    ['valid, charset', { 'content-type': 'application/json; charset=utf-8' }, JSON.stringify({ eventId: EV, ticketCount: 1 })],
    ['bad Idempotency-Key', { 'content-type': 'application/json', 'idempotency-key': 'a b' }, JSON.stringify({ eventId: EV, ticketCount: 1 })],
    ['bad header and bad body', { 'content-type': 'application/json', 'x-admission-token': 'x'.repeat(301) }, JSON.stringify({ eventId: EV, ticketCount: 0 })],
    ['bad body fields', { 'content-type': 'application/json' }, JSON.stringify({ eventId: 'nope', ticketCount: 1.5, extra: true })],
    ['seat refinements', { 'content-type': 'application/json' }, JSON.stringify({ eventId: EV, ticketCount: 2, seatPreferences: { seatIds: ['A-1-1'], section: 'A' } })],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"eventId":'],
    ['JSON not an object', { 'content-type': 'application/json' }, '[1,2]'],
    ['text/plain', { 'content-type': 'text/plain' }, JSON.stringify({ eventId: EV, ticketCount: 1 })],
    ['vendor JSON type', { 'content-type': 'application/vnd.api+json' }, JSON.stringify({ eventId: EV, ticketCount: 1 })],
    ['no content type, a body', {}, JSON.stringify({ eventId: EV, ticketCount: 1 })],
    ['no content type, no body', {}, undefined],
    ['JSON type, empty body', { 'content-type': 'application/json' }, ''],
  ];
  it.each(cases)('%s: the same status and body as @hono/zod-openapi\'s validators', async (_name, headers, body) => {
    const send = async (app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }) => {
      const res = await app.request('/b', { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
      return { status: res.status, body: await res.text() };
    };
    const [want, got] = [await send(reference), await send(fast)];
    expect(got).toEqual(want);
  });

  it('the hold is still documented with its headers and body', () => {
    const doc = bookings.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } });
    const post = doc.paths?.['/api/bookings']?.post;
    expect(post?.parameters?.map((p) => ('name' in p ? [p.in, p.name] : []))).toEqual([
      ['header', 'idempotency-key'],
      ['header', 'x-admission-token'],
    ]);
    expect(post?.requestBody && 'content' in post.requestBody ? Object.keys(post.requestBody.content) : []).toEqual(['application/json']);
  });
});
