import { Hono } from 'hono';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import Stripe from 'stripe';
import { cancelIntent, captureIntent, confirmIntent, createIntent, getIntent } from './payment-intents.js';
import { createRefund } from './refunds.js';
import { pause, type StripeState } from './state.js';
import type { RecordedRequest } from './types.js';
import { ApiError, dropUndefined, ERROR_TYPE_BY_STATUS, parseStripeForm, rand, type Answer } from './wire.js';

/** The double's HTTP face: request recording and scripted faults, auth, Stripe's idempotency, and the routes. */

type Env = { Variables: { rec: RecordedRequest } };

const send = (c: Context<Env>, a: Answer, headers: Record<string, string> = {}) => {
  c.get('rec').status = a.status;
  return c.body(JSON.stringify(a.body, null, 2), a.status as 200, {
    'Content-Type': 'application/json',
    'Request-Id': `req_${rand(14)}`,
    'Stripe-Version': Stripe.API_VERSION,
    ...headers,
  });
};
const sendError = (c: Context<Env>, e: ApiError) => send(c, { status: e.status, body: { error: e.body } });

/** Records every request, applies the scripted delay or failure meant for it, then checks the API key. */
const recordScriptAuth = (state: StripeState) => createMiddleware<Env>(async (c, next) => {
  const rawBody = c.req.method === 'GET' ? '' : await c.req.text();
  const rec: RecordedRequest = {
    method: c.req.method,
    path: c.req.path,
    headers: dropUndefined({
      idempotencyKey: c.req.header('idempotency-key'),
      authorization: c.req.header('authorization'),
      contentType: c.req.header('content-type'),
      stripeVersion: c.req.header('stripe-version'),
    }),
    rawBody,
    body: parseStripeForm(rawBody),
  };
  state.requests.push(rec);
  c.set('rec', rec);
  // Both scripts are taken in arrival order, so a delayed request keeps the failure meant for it.
  const delay = state.delays.shift();
  const fail = state.fails.shift();
  if (delay !== undefined) await pause(state, delay, c.req.raw.signal);
  if (fail) {
    const type = fail.type ?? ERROR_TYPE_BY_STATUS[fail.status] ?? 'api_error';
    return sendError(c, new ApiError(fail.status, dropUndefined({ type, code: fail.code, message: fail.message ?? `Scripted failure (${fail.status}) from the Stripe double.` })));
  }
  const auth = rec.headers.authorization;
  const key = /^Bearer (\S+)$/.exec(auth ?? '')?.[1];
  if (!key || !(state.opts.secretKey ? key === state.opts.secretKey : key.startsWith('sk_test_'))) {
    return sendError(
      c,
      new ApiError(401, {
        type: 'invalid_request_error',
        message: key ? `Invalid API Key provided: ${key.slice(0, 8)}****` : 'You did not provide an API key. Provide it in the Authorization header (Bearer auth).',
      }),
    );
  }
  await next();
});

/** Runs `handler` under Stripe's idempotency rules for the request's Idempotency-Key (POST only). */
const idempotent = async (state: StripeState, c: Context<Env>, handler: () => Answer | Promise<Answer>) => {
  const rec = c.get('rec');
  const key = rec.headers.idempotencyKey;
  const fingerprint = `${rec.method} ${rec.path} ${[...new URLSearchParams(rec.rawBody)].map(([k, v]) => `${k}=${v}`).sort().join('&')}`;
  if (key) {
    const prior = state.saved.get(key);
    if (prior && prior.fingerprint !== fingerprint) {
      return sendError(
        c,
        new ApiError(400, {
          type: 'idempotency_error',
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        }),
      );
    }
    if (prior) {
      rec.replayed = true;
      return send(c, prior.answer, { 'Idempotency-Key': key, 'Idempotent-Replayed': 'true' });
    }
    if (state.inFlight.has(key)) {
      return sendError(c, new ApiError(409, { type: 'idempotency_error', code: 'idempotency_key_in_use', message: 'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please retry in a few seconds.' }));
    }
    state.inFlight.add(key);
  }
  try {
    let answer: Answer;
    let save = true;
    try {
      answer = await handler();
      answer = { status: answer.status, body: structuredClone(answer.body) };
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      answer = { status: e.status, body: { error: e.body } };
      save = e.save;
    }
    // Saved even when the client already gave up (timeout): the request executed, as it would on Stripe.
    if (key && save) state.saved.set(key, { fingerprint, answer });
    return send(c, answer, key ? { 'Idempotency-Key': key } : {});
  } finally {
    if (key) state.inFlight.delete(key);
  }
};

/** The Stripe API routes the double serves, over `state`. */
export function createStripeApp(state: StripeState): Hono<Env> {
  const app = new Hono<Env>();
  app.use('*', recordScriptAuth(state));
  app.post('/v1/payment_intents', (c) => idempotent(state, c, () => createIntent(state, c.get('rec').body, c.req.raw.signal)));
  app.get('/v1/payment_intents/:id', (c) => idempotent(state, c, () => ({ status: 200, body: getIntent(state, c.req.param('id')) })));
  app.post('/v1/payment_intents/:id/confirm', (c) => idempotent(state, c, () => confirmIntent(state, c.req.param('id'), c.get('rec').body, c.req.raw.signal)));
  app.post('/v1/payment_intents/:id/capture', (c) => idempotent(state, c, () => captureIntent(state, c.req.param('id'), c.get('rec').body)));
  app.post('/v1/payment_intents/:id/cancel', (c) => idempotent(state, c, () => cancelIntent(state, c.req.param('id'), c.get('rec').body)));
  app.post('/v1/refunds', (c) => idempotent(state, c, () => createRefund(state, c.get('rec').body)));
  app.notFound((c) =>
    sendError(c, new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${c.req.method}: ${c.req.path}).` })),
  );
  app.onError((err, c) => sendError(c, new ApiError(500, { type: 'api_error', message: `Stripe double bug: ${err.message}` })));
  return app;
}
