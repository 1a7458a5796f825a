import fc from 'fast-check';

/**
 * fast-check arbitraries for hostile input: strings that have broken other systems (SQL and Lua injection, path
 * traversal, Redis hash tags, template and script injection, control characters, bidi overrides, lone surrogates,
 * homoglyphs), numbers JSON can carry but a schema should refuse, prototype-pollution keys, and JSON documents built
 * as raw text so that duplicate keys, `__proto__` and out-of-range number literals reach the server as sent.
 */
export const HOSTILE_STRINGS = [
  "' OR 1=1--",
  "'; DROP TABLE bookings;--",
  '" OR ""="',
  '1; SELECT pg_sleep(5)',
  '$1',
  '"); redis.call("FLUSHALL") --',
  "]] redis.call('flushall') --[[",
  "return redis.call('keys','*')",
  '{evt:x}',
  '}{',
  '*',
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2f',
  '....//....//',
  'C:\\Windows\\win.ini',
  '/dev/zero',
  '\u0000',
  'a\u0000b',
  '\r\nX-Injected: 1',
  '\u202eevil',
  '\ufeff',
  '\u200b',
  '😀🎟️',
  '𝕏𝕪𝕫',
  'Ａｄｍｉｎ',
  'аdmin', // Cyrillic a
  '\ud800',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  '%s%s%s%n',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  'null',
  'undefined',
  'true',
  '__proto__',
  'constructor',
  '$gt',
  '{"$gt":""}',
  'ev_ZZZZZZZZZZZZ',
  'ev_000000000000',
  'bk_000000000000_0000000000000000',
  'q_000000000000_0000000000000000',
  'tr_0000000000',
  'pm_card_visa',
  // dates at and past the edges (Postgres has no year 0; the Lua scripts take times up to 1e14 ms)
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '1970-01-01T00:00:00Z',
  '2030-02-30T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '2030-01-01T00:00:00+14:00',
  '2030-01-01T00:00:00.123456789Z',
  'x'.repeat(5_000),
  '',
  ' ',
] as const;

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) }, // lone surrogates too
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('ev_', 'bk_', 'tr_', 'q_', 'pm_', 'A-'), fc.string({ maxLength: 30 })).map(([p, s]) => p + s) },
);

/** Number literals as they appear in JSON text (some overflow to Infinity or lose precision when parsed). */
export const hostileNumberLiteral: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('0', '-1', '1.5', '-0', '1e309', '-1e309', '9007199254740993', '123456789012345678901234567890', '1e-400', '0.1e1', '2e0', '1E2', '100000000000', '4294967297'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
);

/** Object keys: the real field names (so validation goes deeper), prototype-pollution keys, hostile strings. */
export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString', 'valueOf'),
  fc.constantFrom('eventId', 'tierId', 'ticketCount', 'seatPreferences', 'seatIds', 'section', 'adjacent', 'bookingId', 'paymentMethodId',
    'holderName', 'holderEmail', 'holderPhone', 'code', 'gate', 'reason', 'decision', 'enabled', 'opensAt', 'admissionRatePerSecond',
    'passTtlSeconds', 'salesOpenAt', 'maxTicketsPerUser', 'name', 'category', 'venue', 'startsAt', 'tiers', 'queue', 'price', 'status',
    'userId', 'admin', 'role', 'amount'),
  hostileString,
);

/** `{"k": v, ...}` from raw parts: duplicate keys and `__proto__` arrive as written. */
export const rawObject = (entries: readonly (readonly [string, string])[]) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;

/** A JSON value as raw text: hostile strings, number literals, nested containers, raw objects with any keys. */
export const rawJsonValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString.map((s) => JSON.stringify(s)),
    hostileNumberLiteral,
    fc.constantFrom('true', 'false', 'null'),
    fc.array(tie('value'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
    fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 4 }).map(rawObject),
  ),
})).value;

/**
 * A body for an endpoint that expects `valid` (a good body as raw entries): the good body with one field replaced,
 * removed or duplicated, extra fields (mass assignment, pollution), a random JSON value, or text that is not JSON.
 */
export function hostileBody(valid: Record<string, string>): fc.Arbitrary<string> {
  const entries = Object.entries(valid);
  const keys = Object.keys(valid);
  return fc.oneof(
    // the good body itself (the happy path must hold up between the hostile ones, and reach the engine)
    fc.constant(rawObject(entries)),
    // one field replaced by a hostile value
    fc.tuple(fc.constantFrom(...keys), rawJsonValue).map(([k, v]) => rawObject(entries.map(([ek, ev]) => [ek, ek === k ? v : ev]))),
    // one field missing
    fc.constantFrom(...keys).map((k) => rawObject(entries.filter(([ek]) => ek !== k))),
    // extra fields: mass assignment and prototype pollution
    fc.array(fc.tuple(hostileKey, rawJsonValue), { minLength: 1, maxLength: 3 }).map((extra) => rawObject([...entries, ...extra])),
    // the same key twice (the last wins in JSON.parse: does validation see the same value the handler uses?)
    fc.tuple(fc.constantFrom(...keys), rawJsonValue).map(([k, v]) => rawObject([...entries, [k, v]])),
    // any JSON value at all
    rawJsonValue,
    // not JSON, or JSON with trailing garbage, deep nesting, or a BOM
    fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constant(rawObject(entries) + ' trailing'),
      fc.constant(`${'['.repeat(5_000)}${']'.repeat(5_000)}`),
      fc.constant(`\ufeff${rawObject(entries)}`),
      fc.constant('{"a":'),
      fc.constant(''),
    ),
  );
}

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD's bytes; encodeURIComponent would throw). */
export const pctEncode = (s: string) =>
  [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

/** Path segments for ids: hostile strings, percent-encoded or raw (traversal, stray %, encoded NUL and CRLF). */
export const hostileId: fc.Arbitrary<string> = fc.oneof(
  hostileString.map(pctEncode),
  fc.constantFrom('..', '../..', '..%2f..%2fetc%2fpasswd', '%2e%2e', '%', '%zz', '%00', '%0d%0aX-Injected:%201', '%c0%af', '..%252f', '.', '%20', 'a%2Fb', ';', 'a;b=c', '?x', '#frag'),
);

/** Header values fetch will send (no CR, LF or NUL: undici refuses them before they leave; the raw-socket tests
 *  send those), including Latin-1 bytes. */
export const hostileHeaderValue: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x20 : c)), maxLength: 300 }),
);

/** A query string of hostile pairs (repeated keys too). */
export const hostileQuery: fc.Arbitrary<string> = fc
  .array(fc.tuple(fc.oneof(hostileKey, fc.constantFrom('category', 'status', 'offset', 'limit', 'access_token')), fc.oneof(hostileString, hostileNumberLiteral)), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${pctEncode(k)}=${pctEncode(v)}`).join('&')}` : ''));

export const contentTypes = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/problem+json',
  'application/json; charset=latin1',
  '',
);
