import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { child1, child3 } from './metric-children.js';

const pair = () => {
  const [cached, plain] = [new Registry(), new Registry()];
  const make = (registry: Registry) => ({
    h: new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['method', 'route', 'status'] as const, buckets: [0.01, 0.1], registers: [registry] }),
    c: new Counter({ name: 'c_total', help: 'c', labelNames: ['outcome'] as const, registers: [registry] }),
  });
  return { cached: { registry: cached, ...make(cached) }, plain: { registry: plain, ...make(plain) } };
};

describe('cached metric children', () => {
  it('record exactly what the label-object calls record', async () => {
    const { cached, plain } = pair();
    const calls: [string, string, number, number, string][] = [
      ['POST', '/api/bookings', 201, 0.004, 'held'], ['POST', '/api/bookings', 409, 0.05, 'SOLD_OUT'],
      ['GET', '/api/events/:eventId', 200, 0.2, 'held'], ['POST', '/api/bookings', 201, 0.001, 'replayed'],
    ];
    for (const [method, route, status, seconds, outcome] of [...calls, ...calls]) {
      child3(cached.h, method, route, status).observe(seconds);
      child1(cached.c, outcome).inc();
      plain.h.observe({ method, route, status: String(status) }, seconds);
      plain.c.inc({ outcome });
    }
    expect(await cached.registry.metrics()).toBe(await plain.registry.metrics());
  });

  it('makes one child per label combination and per metric', () => {
    const { cached, plain } = pair();
    expect(child3(cached.h, 'POST', '/a', 201)).toBe(child3(cached.h, 'POST', '/a', 201));
    expect(child3(cached.h, 'POST', '/a', 201)).not.toBe(child3(cached.h, 'POST', '/a', 409));
    expect(child3(cached.h, 'POST', '/a', 201)).not.toBe(child3(plain.h, 'POST', '/a', 201));
    expect(child1(cached.c, 'held')).toBe(child1(cached.c, 'held'));
  });
});
