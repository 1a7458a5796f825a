import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'>;

export type PgSettings = { url: string; schema?: string; max?: number; statementTimeoutMs?: number };

/**
 * A pool whose sessions use `schema` (tests run one schema per file). Every statement has a deadline (server-side
 * statement_timeout, and a client-side timeout a second later for a server that stopped answering), so a Postgres
 * that is away turns into a quick 503 / retry instead of a hang.
 */
export function createPool({ url, schema = 'public', max = 10, statementTimeoutMs = 4_000 }: PgSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    options: `-c search_path=${schema} -c statement_timeout=${statementTimeoutMs}`,
    query_timeout: statementTimeoutMs + 1000,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // A server going away errors the idle clients (the pool's listener) and the checked-out ones (their own listener,
  // which pg-pool removes while a client is out): without these, "Connection terminated unexpectedly" would be an
  // uncaught error that ends the process. The query in flight still fails, and its caller retries or answers 503.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Runs `fn` in a transaction; rolls back on any error and rethrows it. */
export async function withTx<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const out = await fn(tx);
    await tx.query('COMMIT');
    return out;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    tx.release();
  }
}

/** Deadlock (40P01) or serialization failure (40001): Postgres rolled the transaction back; running it again is safe. */
export const isTransientTxError = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
};

/**
 * withTx, run again (up to `attempts` times, after a short random pause) when Postgres aborts it as a deadlock victim
 * or a serialization failure. Only for transactions whose body touches nothing but this transaction (no Redis, no
 * provider call): the abort undid all of it, so the next run starts from the same place.
 */
export async function withTxRetrying<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>, attempts = 5): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await withTx(pool, fn);
    } catch (err) {
      if (!isTransientTxError(err) || n >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40 * n));
    }
  }
}

/** What Postgres itself says about this database: sessions waiting on a lock, sessions running a statement, and the
 *  deadlocks it has counted since its statistics were last reset. */
export type PgActivity = { lockWaits: number; activeSessions: number; deadlocks: number };

export async function pgActivity(db: Queryable): Promise<PgActivity> {
  const { rows } = await db.query<{ waiting: string; active: string; deadlocks: string }>(
    `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock') AS waiting,
            (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active') AS active,
            (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()) AS deadlocks`,
  );
  return { lockWaits: Number(rows[0]!.waiting), activeSessions: Number(rows[0]!.active), deadlocks: Number(rows[0]!.deadlocks) };
}
