/**
 * A lean HTTP/1.1 client for the crowd simulations: node:http over a keep-alive pool of `sockets` connections.
 * Latency is measured from the moment the request has a socket to the end of the response, so time spent waiting
 * for a free pooled connection (the client's own queue) is not blamed on the server; it is reported separately.
 *
 * `lane`: requests of different lanes never wait for each other's sockets (a pool of `sockets` per lane). A crowd of
 * people is many browsers: one person's poll must not queue behind another person's backlog of joins in one shared
 * client-side FIFO, which no real buyer would see (the demo gives joins, polls and purchases a lane each).
 */
import { Agent, request } from 'node:http';

export type Answer = { status: number; body: Record<string, unknown> | null; ms: number; queuedMs: number; at: number };

export function httpClient(base: string, o: { sockets: number; timeoutMs?: number }) {
  const u = new URL(base);
  const agents = new Map<string, Agent>();
  const agentOf = (lane: string) => {
    let a = agents.get(lane);
    if (!a) agents.set(lane, (a = new Agent({ keepAlive: true, maxSockets: o.sockets, maxFreeSockets: o.sockets, scheduling: 'fifo' })));
    return a;
  };
  const timeoutMs = o.timeoutMs ?? 10_000;
  let inFlight = 0;

  function call(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string>; lane?: string } = {}): Promise<Answer> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string | number> = { accept: 'application/json', ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const issued = performance.now();
    inFlight++;
    return new Promise<Answer>((resolve) => {
      let started = issued;
      let settled = false;
      const finish = (status: number, body: Record<string, unknown> | null) => {
        if (settled) return;
        settled = true;
        inFlight--;
        const now = performance.now();
        resolve({ status, body, ms: now - started, queuedMs: started - issued, at: Date.now() });
      };
      const req = request({ host: u.hostname, port: u.port, path, method, headers, agent: agentOf(opts.lane ?? 'main') }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: Record<string, unknown> | null = null;
          const text = Buffer.concat(chunks).toString('utf8');
          if (text && /json/.test(String(res.headers['content-type']))) {
            try {
              body = JSON.parse(text) as Record<string, unknown>;
            } catch {
              body = null;
            }
          }
          finish(res.statusCode ?? 0, body);
        });
        res.on('error', () => finish(0, null));
      });
      req.on('socket', () => {
        started = performance.now();
      });
      req.setTimeout(timeoutMs, () => {
        req.destroy(new Error('timeout'));
      });
      req.on('error', (err) => finish(0, { error: err.message }));
      if (payload) req.write(payload);
      req.end();
    });
  }
  return {
    call,
    get inFlight() {
      return inFlight;
    },
    close: () => {
      for (const a of agents.values()) a.destroy();
    },
  };
}
export type HttpClient = ReturnType<typeof httpClient>;
