/**
 * A process that opens a Postgres transaction with platform/pg.ts's withTx and waits inside it, as the persist worker
 * (applyOutbox) or a payment (withTx) does for a moment on every batch. The test stops Postgres meanwhile: a process
 * that survives prints "survived: <error>"; one that does not dies of an uncaught 'error' event of the checked-out client.
 */
import { createPool, withTx } from '../../platform/pg.js';

const url = process.env.DATABASE_URL ?? (() => { throw new Error('DATABASE_URL missing'); })();
const pool = createPool({ url, max: 2 });
try {
  await withTx(pool, async (tx) => {
    await tx.query('SELECT 1');
    console.log('in transaction');
    // wait (inside the transaction) until the server goes away; then the next statement fails
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      await tx.query('SELECT 1');
    }
  });
} catch (err) {
  console.log(`survived: ${(err as Error).message}`);
}
await pool.end().catch(() => {});
process.exit(0);
