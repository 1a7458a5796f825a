/** True when an error means a dependency (Redis, Postgres) cannot answer right now, not that the request
 *  was wrong: the caller should answer 503 with Retry-After, and the client may retry. */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string; errno?: string };
  if (e.name === 'UnavailableError' || e.name === 'MaxRetriesPerRequestError' || e.name === 'ReplicaWaitError') return true;
  if (typeof e.code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND'].includes(e.code)) return true;
    // Postgres: connection exceptions, admin shutdown / crash recovery, too many connections
    if (/^(08...|57P0[1-3]|53300)$/.test(e.code)) return true;
  }
  // node-postgres: "Client has encountered a connection error and is not queryable", "Client was closed and is not
  // queryable" (a pooled client whose server went away, as in a Postgres failover).
  // Redis, a primary made a replica (a Sentinel failover): a WAIT blocked on it is ended with "UNBLOCKED force unblock
  // from blocking operation, instance state changed (master -> replica?)", and a WAIT sent to it answers "ERR WAIT
  // cannot be used with replica instances" (a script's write is refused with READONLY)
  return /UNBLOCKED force unblock|WAIT cannot be used with replica|Command timed out|Stream isn't writeable|Connection is closed|Connection terminated|is not queryable|Query read timeout|canceling statement due to statement timeout|timeout exceeded when trying to connect|connect ECONNREFUSED|CLUSTERDOWN|TRYAGAIN|LOADING|READONLY|All sentinels are unreachable|MASTERDOWN|OOM command not allowed/i.test(
    e.message,
  );
}
