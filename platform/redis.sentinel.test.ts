import { describe, expect, it } from 'vitest';
import { cleanups } from '../test/faults/harness.js';
import { startRedisSentinel } from '../test/faults/replicas.js';
import { waitFor } from '../test/wait.js';
import { createRedis, ReplicaWaitError } from './redis.js';
import { isUnavailable } from './unavailable.js';

/** restoreHold-2 is one of DURABLE_SCRIPTS and needs no other state: a hold hash and its expiry entry. */
const restore = (r: Awaited<ReturnType<typeof createRedis>>, id: string) =>
  r.restoreHold(`sx:{evt:e}:hold:${id}`, 'sx:{evt:e}:expiry', id, 'u1', 't1', 1, '', Date.now() + 600_000, Date.now(), 'held', 0);

describe('Redis through Sentinel, WAIT after state-changing scripts', () => {
  it('answers a script once a replica has it, fails with ReplicaWaitError (503) when none confirms, and follows a Sentinel failover keeping what WAIT confirmed', {
    timeout: 90_000,
  }, async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const set = own(await startRedisSentinel('fgunit'), (s) => s.stop());
    const redis = own(
      await createRedis({ url: 'redis://127.0.0.1:1', sentinels: set.sentinels, sentinelName: set.name, waitReplicas: 1, waitTimeoutMs: 1_000 }, 'worker'),
      (r) => r.disconnect(),
    );
    redis.on('error', () => {});
    const first = await set.primaryPort();
    const replica = (await set.admin(first).info('replication')).match(/slave0:ip=[^,]+,port=(\d+)/)![1]!;

    expect(await restore(redis, 'b1')).toEqual([1]);
    // WAIT 1 returned: the replica has it already, not "soon"
    expect(await set.admin(Number(replica)).hget('sx:{evt:e}:hold:b1', 'u')).not.toBeNull();

    await set.kill9(Number(replica));
    const err = await restore(redis, 'b2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicaWaitError);
    expect(isUnavailable(err)).toBe(true);
    await set.restartAsReplica(Number(replica));
    expect(await restore(redis, 'b3')).toEqual([1]);

    const dead = await set.kill9Primary();
    const promoted = await set.waitPromoted(dead);
    expect(promoted).toBe(Number(replica));
    await set.restartAsReplica(dead);
    // the client found the new primary through Sentinel; the holds WAIT confirmed are there
    expect(await waitFor('a script on the new primary', () => restore(redis, 'b4').catch(() => null), 20_000, 50)).toEqual([1]);
    const held = await Promise.all(['b1', 'b3', 'b4'].map((id) => redis.exists(`sx:{evt:e}:hold:${id}`)));
    expect(held).toEqual([1, 1, 1]);
    expect(await set.primaryPort()).toBe(promoted);
  });
});
