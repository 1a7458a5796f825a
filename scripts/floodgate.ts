/**
 * `npm run floodgate -- <command>`: operator commands.
 *   reconcile <eventId>          compare Redis with Postgres for one event; exit 1 on a mismatch
 *   rebuild <eventId> [--force]  rebuild an event's Redis state from Postgres (after a Redis loss); refuses a live
 *                                event unless --force; prints what it restored
 */
import { isDomainError } from '../engine/errors.js';
import { isEventId } from '../engine/ids.js';
import { boot } from '../wiring/boot.js';

const USAGE = 'usage: npm run floodgate -- reconcile <eventId> | rebuild <eventId> [--force]';
const [command, eventId, ...rest] = process.argv.slice(2);
if (!command || !eventId || !['reconcile', 'rebuild'].includes(command)) {
  console.error(USAGE);
  process.exit(2);
}
if (!isEventId(eventId)) {
  console.error(`not an event id: ${JSON.stringify(eventId)} (ev_ and 12 letters or digits)`);
  process.exit(2);
}

const rt = await boot('workers', 'worker', { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
let code: number;
try {
  if (command === 'reconcile') {
    const r = await rt.engine.reconcile(eventId);
    console.log(r.mismatch === 0 ? `${eventId}: Redis and Postgres agree (${r.pendingEntries} outbox entries in flight)` : `${eventId}: MISMATCH ${r.mismatch}`);
    for (const d of r.differences) console.log(`  ${d.tier ? `tier ${d.tier}` : `seat ${d.seat}`} ${d.field}: redis ${d.redis}, expected ${d.expected}`);
    code = r.mismatch === 0 ? 0 : 1;
  } else {
    const r = await rt.engine.rebuild(eventId, { force: rest.includes('--force') });
    console.log(`${eventId}: rebuilt from Postgres`);
    if (r.drained) console.log(`  applied ${r.drained} outbox entries to Postgres first`);
    for (const t of r.tiers) console.log(`  tier ${t.id} (${t.kind}): capacity ${t.cap}, available ${t.free}, held ${t.held}, sold ${t.sold}`);
    console.log(`  holds restored: ${r.holdsRestored}, sold bookings restored: ${r.soldRestored}, buyers: ${r.buyers}`);
    if (r.salesRetaken || r.paymentsReturned) {
      console.log(`  paid bookings whose confirmation was lost: ${r.salesRetaken} sold again, ${r.paymentsReturned} to be cancelled or refunded (settle jobs queued)`);
    }
    const check = await rt.engine.reconcile(eventId);
    console.log(`  reconcile after rebuild: mismatch ${check.mismatch}`);
    code = check.mismatch === 0 ? 0 : 1;
  }
} catch (err) {
  console.error(isDomainError(err) ? `refused: ${err.detail}` : (err as Error).message);
  code = 1;
} finally {
  await rt.shutdown.run();
}
process.exit(code);
