/**
 * A TCP fault proxy for the fault tests (node:net; `tc netem` is not available here). Put it between a client and a
 * server on loopback and switch its mode at any time; a mode applies to the connections already open and to new ones:
 *   pass       bytes flow both ways;
 *   blackhole  connections are accepted but nothing gets through either way (a partition: what was sent is held, as
 *              TCP would keep retransmitting it, and delivered if the partition heals before anyone gives up);
 *   delay(ms)  every chunk is delivered ms later, each direction (order kept);
 *   reset      every open connection is destroyed with a TCP RST, and new ones are accepted and reset at once.
 * Bytes are never silently dropped from inside a live connection: a real network cannot do that to TCP without
 * breaking the connection, and a client would then read replies that belong to other requests.
 */
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export type ProxyMode = { kind: 'pass' } | { kind: 'blackhole' } | { kind: 'delay'; ms: number } | { kind: 'reset' };

type Pipe = { from: Socket; to: Socket; held: Buffer[] };
type Link = { client: Socket; upstream: Socket; up: Pipe; down: Pipe };

export type FaultProxy = {
  /** The proxy's own address, to give the client instead of the server's. */
  host: string;
  port: number;
  /** Rewrites a redis:// or postgres:// URL to go through the proxy. */
  url(target: string): string;
  mode(): ProxyMode;
  setMode(m: ProxyMode): void;
  /** Connections opened so far, and resets sent. */
  stats(): { connections: number; open: number; resets: number };
  close(): Promise<void>;
};

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: ProxyMode = { kind: 'pass' };
  const links = new Set<Link>();
  let connections = 0;
  let resets = 0;

  const reset = (s: Socket) => {
    if (s.destroyed) return;
    resets++;
    s.resetAndDestroy();
  };
  const drop = (l: Link) => {
    links.delete(l);
    reset(l.client);
    reset(l.upstream);
  };

  /** Sends what a pipe has held back (after a blackhole heals). */
  const flush = (p: Pipe) => {
    for (const chunk of p.held.splice(0)) if (!p.to.destroyed) p.to.write(chunk);
  };

  const forward = (p: Pipe, chunk: Buffer) => {
    switch (mode.kind) {
      case 'pass':
        if (p.held.length) flush(p);
        if (!p.to.destroyed) p.to.write(chunk);
        return;
      case 'blackhole':
        p.held.push(chunk);
        return;
      case 'delay': {
        p.held.push(chunk);
        // timers of the same duration fire in the order they were set: the stream keeps its order
        setTimeout(() => {
          if (mode.kind === 'blackhole' || mode.kind === 'reset') return; // held until the partition heals
          const next = p.held.shift();
          if (next && !p.to.destroyed) p.to.write(next);
        }, mode.ms).unref();
        return;
      }
      case 'reset':
        return;
    }
  };

  const server: Server = createServer({ noDelay: true }, (client) => {
    connections++;
    if (mode.kind === 'reset') {
      reset(client);
      return;
    }
    const upstream = new Socket();
    const l: Link = {
      client,
      upstream,
      up: { from: client, to: upstream, held: [] },
      down: { from: upstream, to: client, held: [] },
    };
    links.add(l);
    client.on('data', (c) => forward(l.up, c));
    upstream.on('data', (c) => forward(l.down, c));
    const end = () => {
      if (!links.has(l)) return;
      links.delete(l);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.connect({ host: target.host, port: target.port, noDelay: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    url(t: string) {
      const u = new URL(t);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    mode: () => mode,
    setMode(m: ProxyMode) {
      const was = mode;
      mode = m;
      if (m.kind === 'reset') for (const l of [...links]) drop(l);
      if (m.kind !== 'blackhole' && m.kind !== 'reset' && was.kind === 'blackhole') {
        for (const l of links) {
          flush(l.up);
          flush(l.down);
        }
      }
    },
    stats: () => ({ connections, open: links.size, resets }),
    async close() {
      for (const l of [...links]) drop(l);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
