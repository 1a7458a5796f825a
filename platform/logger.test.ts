import { describe, expect, it } from '../test/fixtures.js';
import { memoryLogger, inProcessApi } from '../test/http.js';
import { createLogger, maskCardNumbers } from './logger.js';

describe('logs', () => {
  it('redact secrets by path and mask card-like numbers anywhere', () => {
    const lines: string[] = [];
    const log = createLogger('test', 'info', { write: (s) => void lines.push(s) });
    log.info({ req: { headers: { authorization: 'Bearer eyJhbGciOi.secret.sig' } }, user: { token: 'tok_123', apiKey: 'SG.abc' } }, 'request');
    log.warn({ detail: 'card 4111 1111 1111 1111 was sent', nested: { list: ['5555-5555-5555-4444'] } }, 'paid with 4242424242424242?');
    log.error(new Error('boom 378282246310005'), 'failed');
    const all = lines.join('\n');
    for (const secret of ['eyJhbGciOi', 'tok_123', 'SG.abc', '4111 1111 1111 1111', '5555-5555-5555-4444', '4242424242424242', '378282246310005']) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('[redacted]');
    expect(all).toContain('paid with [card]?');
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'test', msg: 'request' });
    // numbers that are not card numbers stay
    expect(maskCardNumbers('order 1234567890123 at 1764115200000')).toBe('order 1234567890123 at 1764115200000');
  });

  it('an unexpected error answers 500 without details and is logged once with the request id', async ({ engine, onTestFinished }) => {
    const { log, lines } = memoryLogger('info');
    const broken = { ...engine, catalog: { ...engine.catalog, list: async () => { throw new Error('database exploded: password=hunter2'); } } };
    const api = inProcessApi(broken as typeof engine, { log });
    onTestFinished(() => api.close());
    const res = await api.call('GET', '/api/events');
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ type: '/problems/internal', title: 'Internal error', status: 500, instance: '/api/events', requestId: expect.any(String) });
    expect(res.text).not.toMatch(/exploded|hunter2/);
    const errorLines = lines.map((l) => JSON.parse(l)).filter((l) => l.level >= 50);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatchObject({ requestId: res.json.requestId, route: '/api/events', msg: 'unhandled error' });
    // expected rejections (sold out and the like) are counted, not logged
    const before = lines.length;
    await api.call('GET', '/api/events/ev_000000000000');
    expect(lines.length).toBe(before);
  });
});
