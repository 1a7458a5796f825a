import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { cleanups, startOwnRedis } from '../test/faults/harness.js';
import { isUnavailable } from './unavailable.js';

describe('isUnavailable: a dependency that cannot answer now (503), not a bug (500)', () => {
  it("counts node-postgres's clients whose connection died, as a Postgres failover leaves them", () => {
    expect(isUnavailable(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(isUnavailable(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it("counts Redis's answers to a WAIT on a primary that was made a replica (as Sentinel does in a failover)", async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const [a, b] = [own(await startOwnRedis(), (r) => r.stop()), own(await startOwnRedis(), (r) => r.stop())];
    const client = own(new Redis(a.url, { maxRetriesPerRequest: null }), (c) => c.disconnect());
    await client.set('k', '1');
    // the state-changing scripts' WAIT (platform/redis.ts), blocked for want of a replica, when the primary is demoted
    const blocked = client.wait(1, 5_000).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 100));
    await a.admin.replicaof('127.0.0.1', String(b.port));
    const unblocked = await blocked;
    expect(String(unblocked)).toMatch(/UNBLOCKED/);
    expect(isUnavailable(unblocked)).toBe(true);
    // and the next WAIT on the same connection, now to a replica
    const refused = await client.wait(1, 100).catch((err: unknown) => err);
    expect(String(refused)).toMatch(/WAIT cannot be used with replica/);
    expect(isUnavailable(refused)).toBe(true);
    const readOnly = await client.eval("return redis.call('SET', 'k', '2')", 0).catch((err: unknown) => err);
    expect(isUnavailable(readOnly)).toBe(true);
  });

  it('leaves errors of our own code alone', () => {
    expect(isUnavailable(new Error('payHold start: refused a held hold (x)'))).toBe(false);
    expect(isUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isUnavailable('not an error')).toBe(false);
  });
});
