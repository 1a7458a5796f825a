import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from './fixtures.js';
import { TEST_ENGINE_CONFIG } from './config.js';
import { gaEvent, seatedEvent } from './events.js';
import { drain, waitFor } from './wait.js';
import { createEngine } from '../engine/index.js';
import type { UserId } from '../engine/ids.js';
import { eventKeys, simulatedPaymentKeys } from '../engine/keys.js';
import { loadCommands } from '../lua/commands.js';
import { listSimulatedPayments, createSimulatedProvider } from '../integrations/payments/simulated.js';

const free = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** Something accepts connections on the port. (Probing by binding the port, as `free` does, could take it from a
 *  redis-server that is just starting: it then exits with "Address already in use" and never comes up.) */
const accepting = (port: number) =>
  new Promise<boolean>((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });

/**
 * Three ports (and their cluster-bus ports, +10000) nothing listens on, all below the ephemeral range (32768 and up on
 * Linux), so a client connection of another test file cannot take one between this check and redis-server's bind.
 */
async function clusterPorts(): Promise<number[]> {
  for (let base = 20000 + Math.floor(Math.random() * 2700); ; base = base + 7 > 22700 ? 20000 : base + 7) {
    const ports = [base, base + 1, base + 2];
    if ((await Promise.all(ports.flatMap((p) => [free(p), free(p + 10000)]))).every(Boolean)) return ports;
  }
}

/** Floodgate on a real 3-node Redis Cluster on spare loopback ports: every script call stays on one slot. */
describe('Redis Cluster', () => {
  it('holds, payments, the outbox, the waiting room, reconcile and rebuild work with events spread over three nodes', async ({ ns, pg, clock, onTestFinished }) => {
    for (const tool of ['redis-server', 'redis-cli']) {
      expect(spawnSync(tool, ['--version']).error?.message, `${tool} is not on PATH: install Redis 7 (apt-get install redis-server)`).toBeUndefined();
    }
    const dir = await mkdtemp(join(tmpdir(), 'fg-cluster-'));
    const ports = await clusterPorts();
    const nodes: ChildProcess[] = ports.map((p) =>
      spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`,
        '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const output = nodes.map(() => [] as string[]);
    nodes.forEach((n, i) => {
      n.stdout!.on('data', (b: Buffer) => output[i]!.push(b.toString()));
      n.stderr!.on('data', (b: Buffer) => output[i]!.push(b.toString()));
    });
    const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: null }, lazyConnect: true });
    onTestFinished(async () => {
      cluster.disconnect();
      for (const n of nodes) n.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    });
    const dead = () => nodes.findIndex((n) => n.exitCode !== null || n.signalCode !== null);
    await waitFor('the nodes', async () => dead() >= 0 || (await Promise.all(ports.map((p) => accepting(p)))).every(Boolean));
    if (dead() >= 0) throw new Error(`redis-server on port ${ports[dead()]} exited: ${output[dead()]!.join('').slice(-2000)}`);
    // bounded: redis-cli waits for the nodes to agree without a limit of its own, and spawnSync blocks the test's timer
    const made = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    expect(made.status, made.stdout + made.stderr).toBe(0);
    // every node must agree before the cluster client connects: it reads the slot map from one node, and one that has
    // not heard of the others yet makes connect() retry without end (seen under load)
    const direct = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 }));
    try {
      await waitFor('cluster_state:ok on every node', async () => {
        const infos = await Promise.all(direct.map((r) => r.cluster('INFO')));
        return infos.every((i) => i.includes('cluster_state:ok') && i.includes('cluster_known_nodes:3'));
      }, 30_000, 100);
    } finally {
      for (const r of direct) r.disconnect();
    }
    await cluster.connect();
    await waitFor('cluster_state:ok', async () => (await cluster.cluster('INFO')).includes('cluster_state:ok'));
    await loadCommands(cluster);

    const engine = createEngine({ ns, redis: cluster, pg, clock, config: TEST_ENGINE_CONFIG, provider: createSimulatedProvider({ redis: cluster, keys: simulatedPaymentKeys(ns) }) });
    const events = [];
    for (let i = 0; i < 6; i++) events.push(await engine.createEvent(i % 2 ? gaEvent(20) : seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 5 }])));
    const slots = (await cluster.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const owners = new Set(events.map((e) => slotOwner(slots, calculateSlot(eventKeys(ns, e.id).inv))));
    expect(owners.size).toBeGreaterThan(1); // the events really live on different nodes

    for (const [i, ev] of events.entries()) {
      const u = (s: string) => `${s}${i}` as UserId;
      const a = await engine.bookings.create({ userId: u('a'), eventId: ev.id, ticketCount: 2, idempotencyKey: 'k' });
      await drain(engine, ev.id);
      await engine.payments.pay({ bookingId: a.reservation.bookingId, userId: u('a'), paymentMethodId: 'pm_card_visa' });
      const b = await engine.bookings.create({ userId: u('b'), eventId: ev.id, ticketCount: 1 });
      await engine.bookings.cancel(b.reservation.bookingId, u('b'));
      await engine.bookings.create({ userId: u('c'), eventId: ev.id, ticketCount: 3 });
      await drain(engine, ev.id);
    }
    clock.advance(60_000);
    for (const ev of events) expect(await engine.holds.sweep(ev.id)).toBe(1);
    for (const ev of events) await drain(engine, ev.id);
    const report = await engine.checkInvariants({ eventIds: events.map((e) => e.id), charges: await listSimulatedPayments(cluster, simulatedPaymentKeys(ns)), drained: true });
    expect(report.violations).toEqual([]);
    expect(report.figures).toMatchObject({ sold: 12, held: 0, captured: 6 });

    // the waiting room and a rebuild after one event's keys are lost
    const q = await engine.createEvent({ ...gaEvent(10), salesOpenAt: new Date(clock.now()).toISOString(),
      queue: { enabled: true, opensAt: new Date(clock.now() - 1000).toISOString(), admissionRatePerSecond: 10, passTtlSeconds: 60 } });
    await engine.waitingRoom.join(q.id, 'w1' as UserId);
    expect((await engine.waitingRoom.admit(q.id, 5))!.admitted).toBe(1);
    const lost = events[0]!;
    for (const node of cluster.nodes('master')) {
      const k = await node.keys(eventKeys(ns, lost.id).pattern);
      if (k.length) await node.unlink(...k);
    }
    await engine.rebuild(lost.id);
    expect((await engine.reconcile(lost.id)).mismatch).toBe(0);
  });
});

function slotOwner(slots: [number, number, [string, number]][], slot: number): string {
  const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
  return `${range[2][0]}:${range[2][1]}`;
}
