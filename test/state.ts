import type { Redis } from 'ioredis';
import type { Pool } from '../platform/pg.js';

/** Every key of a namespace with its type and full value: compare two snapshots to prove "nothing changed". */
export async function snapshotRedis(redis: Redis, pattern: string): Promise<Record<string, unknown>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const out: Record<string, unknown> = {};
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    switch (type) {
      case 'hash':
        out[key] = { type, value: await redis.hgetall(key) };
        break;
      case 'zset':
        out[key] = { type, value: await redis.zrange(key, '0', '-1', 'WITHSCORES') };
        break;
      case 'set':
        out[key] = { type, value: (await redis.smembers(key)).sort() };
        break;
      case 'stream':
        out[key] = { type, value: await redis.xrange(key, '-', '+') };
        break;
      case 'string':
        out[key] = { type, value: await redis.get(key), pttl: (await redis.pttl(key)) > 0 };
        break;
      default:
        out[key] = { type };
    }
  }
  return out;
}

/** The rows of every durable table that a booking can touch. */
export async function snapshotPg(pg: Pool): Promise<Record<string, unknown[]>> {
  const q = async (sql: string) => (await pg.query(sql)).rows;
  return {
    tiers: await q('SELECT id, capacity, reserved, sold FROM tiers ORDER BY id'),
    bookings: await q('SELECT id, state, ticket_count, failure_reason FROM bookings ORDER BY id'),
    booking_seats: await q('SELECT booking_id, seat_id, live FROM booking_seats ORDER BY booking_id, seat_id'),
    booking_transitions: await q('SELECT booking_id, from_state, to_state FROM booking_transitions ORDER BY id'),
    processed_events: await q('SELECT key FROM processed_events ORDER BY key'),
  };
}
