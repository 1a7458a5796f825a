import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { asNamespace, type BookingId, type EventId, type UserId } from '../engine/ids.js';
import { eventKeys } from '../engine/keys.js';
import { Reply } from './codes.js';
import { LUA_DIR, readScripts } from './commands.js';

/** The header contract of every script, checked against its body (BullMQ's discipline). */
describe('lua scripts', async () => {
  const scripts = await readScripts();

  it('are all named <camelCaseName>-<numKeys>.lua and expand their includes', () => {
    expect(scripts.map((s) => s.name).sort()).toEqual(
      ['admitNext', 'armEvent', 'configureQueue', 'confirmHold', 'expireHold', 'holdBest', 'holdGeneral', 'holdSeats', 'joinQueue',
        'leaveQueue', 'payHold', 'queueStatus', 'refundHold', 'releaseHold', 'restoreHold', 'retakeHold', 'streamSlot', 'takeLease'].sort(),
    );
    for (const s of scripts) {
      expect(s.lua).not.toMatch(/@include/);
      expect(s.lua.startsWith('--[[')).toBe(true);
    }
  });

  for (const s of scripts) {
    describe(s.file, async () => {
      const raw = await readFile(join(LUA_DIR, s.file), 'utf8');
      const header = raw.slice(0, raw.indexOf(']]'));
      const body = s.lua.slice(s.lua.indexOf(']]'));

      it('documents purpose, invariants, input, output and idempotency', () => {
        expect(header).toMatch(new RegExp(`^--\\[\\[\\n  ${s.name}: \\S`));
        for (const section of ['Invariants:', 'Input:', 'Output:', 'Idempotent:']) expect(header).toContain(section);
      });

      it('documents exactly numKeys KEYS and never indexes past them', () => {
        const documented = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect(new Set(documented)).toEqual(new Set(Array.from({ length: s.numberOfKeys }, (_, i) => i + 1)));
        const used = [...body.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect(Math.max(...used)).toBeLessThanOrEqual(s.numberOfKeys);
      });

      it('documents every ARGV it reads', () => {
        const documented = new Set([...header.matchAll(/ARGV\[(\d+)(\.\.)?\]/g)].map((m) => Number(m[1])));
        for (const m of body.matchAll(/ARGV\[(\d+)\]/g)) expect(documented, `ARGV[${m[1]}]`).toContain(Number(m[1]));
      });

      it('builds no key names from strings (every key comes in through KEYS)', () => {
        expect(body).not.toMatch(/redis\.call\("[A-Z]+",\s*[a-z_]+\s*\.\./);
      });

      it('lists only reply codes that lua/codes.ts names', () => {
        const output = header.slice(header.indexOf('Output:'), header.indexOf('Idempotent:'));
        const codes = [...output.matchAll(/\{(-?\d+)[,}]/g)].map((m) => Number(m[1]));
        expect(codes.length).toBeGreaterThan(0);
        for (const c of codes) expect(Object.values(Reply) as number[]).toContain(c);
      });
    });
  }
});

describe('eventKeys', () => {
  const k = eventKeys(asNamespace('fg'), 'ev_abcdefghijkl' as EventId);

  it('puts every key of one event on one Redis Cluster slot', () => {
    const keys = [k.meta, k.inv, k.sec, k.smap, k.expiry, k.buyers, k.outbox, k.persistLease, k.noIdem, k.wrCfg, k.wrPre, k.wrLine,
      k.wrPasses, k.wrUsed, k.wrDone, k.wrJoined,
      k.hold('bk_abcdefghijkl_0123456789abcdef' as BookingId), k.idem('user-1' as UserId, 'key:1.x')];
    expect(new Set(keys.map((x) => calculateSlot(x))).size).toBe(1);
    expect(calculateSlot(k.meta)).toBe(calculateSlot('{evt:ev_abcdefghijkl}'));
  });

  it('spreads different events over different slots', () => {
    const slots = new Set(Array.from({ length: 50 }, (_, i) => calculateSlot(eventKeys(asNamespace('fg'), `ev_${String(i).padStart(12, '0')}` as EventId).inv)));
    expect(slots.size).toBeGreaterThan(40);
  });

  it('refuses a namespace that could move the hash tag', () => {
    expect(() => asNamespace('fg{x}')).toThrow(/namespace/);
    expect(() => asNamespace('fg:x')).toThrow(/namespace/);
  });
});
