import { assertNever, TakeLeaseReply } from '../lua/codes.js';
import type { EngineDeps } from './deps.js';

/**
 * Takes (or renews, or with 'drop' gives up) the exclusive lease at `key` for `owner` (lua/takeLease): true while
 * `owner` holds it. The persist worker's outbox drain and the admission worker each hold one per event.
 */
export async function takeLease(redis: EngineDeps['redis'], key: string, owner: string, ttlMs: number, mode: 'take' | 'drop'): Promise<boolean> {
  const [code] = await redis.takeLease(key, owner, ttlMs, mode);
  switch (code) {
    case TakeLeaseReply.HELD:
      return true;
    case TakeLeaseReply.BUSY:
      return false;
    default:
      return assertNever(code, 'takeLease');
  }
}
