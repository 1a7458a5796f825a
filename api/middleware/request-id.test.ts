import { describe, expect, it } from '../../test/fixtures.js';
import { inProcessApi } from '../../test/http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('X-Request-Id', () => {
  it('echoes a well-formed id (letters, digits, . _ -, at most 64) and replaces anything else with a fresh UUID', async ({ engine, onTestFinished }) => {
    const api = inProcessApi(engine);
    onTestFinished(() => api.close());
    const sent = async (id: string) => {
      const res = await api.call('GET', '/nowhere', { headers: { 'x-request-id': id } });
      expect(res.json.requestId, 'the problem body carries the same id').toBe(res.headers.get('x-request-id'));
      return res.headers.get('x-request-id')!;
    };
    for (const ok of ['abc', 'trace-01.span_02', 'A'.repeat(64), '550e8400-e29b-41d4-a716-446655440000']) expect(await sent(ok)).toBe(ok);
    for (const bad of ['A'.repeat(65), 'x'.repeat(255), 'a b', 'id=1', '<script>', 'a/b', 'é', '{"x":1}', 'a;b']) {
      const got = await sent(bad);
      expect(got, bad).toMatch(UUID);
    }
    // none given: one is made
    expect((await api.call('GET', '/health')).headers.get('x-request-id')).toMatch(UUID);
  });
});
