import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'>;

export type PgSettings = {
  url: string;
  /** Comma-separated host:port list (PG_HOSTS): the pool connects to the one that accepts writes. Unset: the URL's host. */
  hosts?: string;
  schema?: string;
  max?: number;
  statementTimeoutMs?: number;
  /** Told when the pool finds another host of PG_HOSTS accepting writes than the one it used (a failover). */
  onPrimaryChange?: (from: PgHost, to: PgHost) => void;
};

export type PgHost = { host: string; port: number };

/** `a:5432,b:5433` → hosts; a host without a port takes `defaultPort`. */
export function parsePgHosts(list: string, defaultPort = 5432): PgHost[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const i = hp.lastIndexOf(':');
      if (i < 0) return { host: hp, port: defaultPort };
      const port = Number(hp.slice(i + 1));
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`PG_HOSTS: bad port in ${JSON.stringify(hp)}`);
      return { host: hp.slice(0, i), port };
    });
}

/** `url` with its host and port replaced (a connection string's host wins over pg's host/port settings). */
export function urlAt(url: string, h: PgHost): string {
  const u = new URL(url);
  u.hostname = h.host;
  u.port = String(h.port);
  return u.toString();
}

/** No host of PG_HOSTS accepts writes right now (all down, or a standby not yet promoted): a 503 and a retry. */
export class NoPrimaryError extends Error {
  readonly code = '08001'; // sqlclient_unable_to_establish_sqlconnection: platform/unavailable.ts maps it to 503
  constructor(tried: string) {
    super(`no writable Postgres among ${tried}`);
    this.name = 'NoPrimaryError';
  }
}

/**
 * Finds the primary among several Postgres hosts, as libpq's `target_session_attrs=read-write` does (node-postgres
 * has no such option): the first host that answers `pg_is_in_recovery() = false`. The answer is remembered until a
 * connection to it fails or it turns out to be a standby; then every host is asked again. A look that finds another
 * host than the previous one is a failover: `onChange(from, to)`.
 */
export function primaryLocator(hosts: PgHost[], url: string, probeTimeoutMs = 2_000, onChange?: (from: PgHost, to: PgHost) => void) {
  let known: PgHost | undefined;
  /** The primary found last (kept when `known` is forgotten): a look that finds another one is a failover. */
  let last: PgHost | undefined;
  let finding: Promise<PgHost> | undefined;
  const isPrimary = async (h: PgHost): Promise<boolean> => {
    const c = new pg.Client({ connectionString: urlAt(url, h), connectionTimeoutMillis: probeTimeoutMs, query_timeout: probeTimeoutMs });
    c.on('error', () => {});
    try {
      await c.connect();
      const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      return rows[0]?.r === false;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  };
  const find = async (): Promise<PgHost> => {
    const answers = await Promise.all(hosts.map(isPrimary));
    const i = answers.indexOf(true);
    if (i < 0) throw new NoPrimaryError(hosts.map((h) => `${h.host}:${h.port}`).join(','));
    const found = hosts[i]!;
    const before = last;
    last = found;
    if (before && (before.host !== found.host || before.port !== found.port)) {
      try {
        onChange?.(before, found);
      } catch {
        /* a listener's error is not the pool's */
      }
    }
    return found;
  };
  return {
    /** The primary: the remembered one, or a fresh look across every host (one look at a time). */
    async primary(): Promise<PgHost> {
      if (known) return known;
      finding ??= find().finally(() => (finding = undefined));
      known = await finding;
      return known;
    },
    /** A connection to `h` failed or `h` is a standby: ask every host again next time. */
    forget(h?: PgHost) {
      if (!h || (known && known.host === h.host && known.port === h.port)) known = undefined;
    },
  };
}

/** A pg.Client that connects to the current primary among `locator`'s hosts and checks it accepts writes. */
function primaryClient(locator: ReturnType<typeof primaryLocator>) {
  return class PrimaryClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, c?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, c?: pg.Client) => void): Promise<pg.Client> | void {
      const p = this.connectPrimary();
      if (!callback) return p;
      p.then((c) => callback(null, c), (err: Error) => callback(err));
    }

    private async connectPrimary(): Promise<pg.Client> {
      const h = await locator.primary();
      // the pool built this client from DATABASE_URL; it goes to the primary instead
      this.host = h.host;
      this.port = h.port;
      this.on('error', () => locator.forget(h));
      try {
        await super.connect();
      } catch (err) {
        locator.forget(h);
        throw err;
      }
      const standby = await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r').then((r) => r.rows[0]?.r !== false, () => true);
      if (standby) {
        locator.forget(h);
        await this.end().catch(() => {});
        throw new NoPrimaryError(`${h.host}:${h.port} (no longer the primary)`);
      }
      return this;
    }
  };
}

/**
 * A pool whose sessions use `schema` (on the primary of PG_HOSTS when a host list is given) (tests run one schema per file). Every statement has a deadline (server-side
 * statement_timeout, and a client-side timeout a second later for a server that stopped answering), so a Postgres
 * that is away turns into a quick 503 / retry instead of a hang.
 */
export function createPool({ url, hosts, schema = 'public', max = 10, statementTimeoutMs = 4_000, onPrimaryChange }: PgSettings): pg.Pool {
  const list = hosts ? parsePgHosts(hosts) : [];
  const pool = new pg.Pool({
    connectionString: url,
    max,
    options: `-c search_path=${schema} -c statement_timeout=${statementTimeoutMs}`,
    query_timeout: statementTimeoutMs + 1000,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // several hosts: connect to the one that accepts writes, and look again after a connection error
    ...(list.length > 0 ? { Client: primaryClient(primaryLocator(list, url, 2_000, onPrimaryChange)) } : {}),
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
