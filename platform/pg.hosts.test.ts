import { describe, expect, it } from 'vitest';
import { cleanups } from '../test/faults/harness.js';
import { startPgPair } from '../test/faults/replicas.js';
import { waitFor } from '../test/wait.js';
import { createPool, NoPrimaryError, parsePgHosts } from './pg.js';
import { isUnavailable } from './unavailable.js';

describe('PG_HOSTS: a primary among several Postgres hosts', () => {
  it('parses host:port lists (a host without a port takes 5432)', () => {
    expect(parsePgHosts('a:5433, b ,c:1')).toEqual([{ host: 'a', port: 5433 }, { host: 'b', port: 5432 }, { host: 'c', port: 1 }]);
    expect(() => parsePgHosts('a:99999')).toThrow(/bad port/);
  });

  it('connects to the primary, not the standby listed first; after the primary dies and the standby is promoted, finds it, with every committed row', {
    timeout: 120_000,
  }, async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const pair = own(await startPgPair({ synchronous: true }), (p) => p.stop());
    const first = pair.primaryPort();
    // the standby first in the list: a pool that took the first host that answers would land on a read-only server
    const hosts = `127.0.0.1:${pair.standbyPort()},127.0.0.1:${first}`;
    const changes: string[] = [];
    const pool = own(createPool({ url: pair.urlOf(first), hosts, max: 4, statementTimeoutMs: 2_000,
      onPrimaryChange: (from, to) => changes.push(`${from.port}->${to.port}`) }), (p) => p.end());
    const port = async () => (await pool.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;

    expect(await port()).toBe(first);
    expect(changes).toEqual([]); // finding the first primary is no failover
    await pool.query('CREATE TABLE acked (n int PRIMARY KEY)');
    // synchronous_standby_names='*': each commit returns once the standby has flushed it
    for (let n = 0; n < 50; n++) await pool.query('INSERT INTO acked VALUES ($1)', [n]);

    await pair.kill9Primary();
    // the dead primary's connections fail; with no writable host left, a clean "unavailable" error (503, retry)
    const during = await waitFor('the pool to see no primary', async () => {
      try {
        await pool.query('SELECT 1');
        return false;
      } catch (err) {
        return err instanceof NoPrimaryError ? err : false;
      }
    }, 20_000, 50);
    expect(isUnavailable(during)).toBe(true);

    await pair.promoteStandby();
    const promoted = pair.primaryPort();
    expect(promoted).not.toBe(first);
    expect(await waitFor('the pool on the promoted standby', async () => (await port().catch(() => 0)) === promoted, 20_000, 50)).toBe(true);
    // zero loss: every acknowledged commit is on the promoted standby
    expect((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM acked')).rows[0]!.n).toBe(50);
    await pool.query('INSERT INTO acked VALUES (50)');
    // the switch is told once (the reconcile worker reconciles at once after it: workers/reconcile)
    expect(changes).toEqual([`${first}->${promoted}`]);

    // a new standby on the old primary's port; killing the new primary moves the pool back
    await pair.rebuildStandby();
    await pool.query('INSERT INTO acked VALUES (51)');
    await pair.kill9Primary();
    await pair.promoteStandby();
    expect(pair.primaryPort()).toBe(first);
    await waitFor('the pool back on the first port', async () => (await port().catch(() => 0)) === first, 20_000, 50);
    expect((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM acked')).rows[0]!.n).toBe(52);
    expect(changes).toEqual([`${first}->${promoted}`, `${promoted}->${first}`]);
  });
});
