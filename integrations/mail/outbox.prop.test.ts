import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Mail } from './mailer.js';
import { createOutboxMailer, type OutboxSummary } from './outbox.js';

// Keys that share a folder-name fragment ('a/b', 'a:b' and 'a_b' all become 'a_b…'), sent at one of two instants so
// the timestamp part of the folder names collides too.
const KEYS = ['tickets-bk_1', 'tickets-bk_2', 'a/b', 'a:b', 'a_b', 'refund-bk_1'] as const;
const INSTANTS = [Date.parse('2026-12-07T10:00:00.000Z'), Date.parse('2026-12-07T10:00:00.001Z')];
const PDF = new Uint8Array(Buffer.from('%PDF-1.7\n' + 'x'.repeat(2000)));

const mail = (key: string): Mail => ({
  to: 'Zoë <zoe@example.test>',
  from: 'Floodgate <tickets@floodgate.test>',
  subject: `tickets for ${key}`,
  text: `Hello,\nkey ${key}\n`,
  attachments: [{ filename: 'tickets.pdf', contentType: 'application/pdf', content: PDF }],
  idempotencyKey: key,
});

/** One send of a race: which key, when, how long it dawdles between claim and publish, and whether it dies there. */
const send = fc.record({
  key: fc.constantFrom(...KEYS),
  instant: fc.constantFrom(...INSTANTS),
  pause: fc.constantFrom('none', 'immediate', 'timer'),
  crash: fc.boolean(),
});

class Crash extends Error {}

/** The folder of a returned messageId is there and whole: every file, the summary pointing at itself. */
async function checkComplete(dir: string, folder: string, key: string, messageId: string): Promise<void> {
  const files = (await readdir(join(dir, folder))).sort();
  expect(files).toEqual(['message.eml', 'message.json', 'tickets.pdf']);
  const summary = JSON.parse(await readFile(join(dir, folder, 'message.json'), 'utf8')) as OutboxSummary;
  expect(summary).toMatchObject({ messageId, folder, idempotencyKey: key });
  expect((await stat(join(dir, folder, 'tickets.pdf'))).size).toBe(PDF.byteLength);
  const eml = await readFile(join(dir, folder, 'message.eml'), 'utf8');
  expect(eml).toContain(`Message-ID: <${messageId}>`);
  expect(eml.trimEnd().endsWith('--')).toBe(true);
}

/** messageId -> folder, over every message folder in `dir`. */
async function folders(dir: string): Promise<Map<string, { folder: string; key: string }>> {
  const out = new Map<string, { folder: string; key: string }>();
  for (const folder of (await readdir(dir)).filter((f) => !f.startsWith('.'))) {
    const s = JSON.parse(await readFile(join(dir, folder, 'message.json'), 'utf8')) as OutboxSummary;
    expect(out.has(s.messageId)).toBe(false);
    out.set(s.messageId, { folder, key: s.idempotencyKey });
  }
  return out;
}

describe('outbox mailer under racing sends and crashes', () => {
  it('keeps exactly one complete folder per key, and every returned messageId names a complete folder', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(send, { minLength: 2, maxLength: 12 }), async (sends) => {
        const dir = await mkdtemp(join(tmpdir(), 'fg-outbox-race-'));
        try {
          let i = 0;
          const race = await Promise.allSettled(
            sends.map((s) => {
              const mailer = createOutboxMailer({
                dir,
                now: () => new Date(s.instant),
                beforePublish: async () => {
                  if (s.pause === 'immediate') await new Promise((r) => setImmediate(r));
                  if (s.pause === 'timer') await sleep(1 + (i++ % 3));
                  if (s.crash) throw new Crash('died between claim and publish');
                },
              });
              return mailer.send(mail(s.key));
            }),
          );
          // A send fails only by the injected crash.
          for (const r of race) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(Crash);

          // Right after the race: every send that returned names a complete folder of its own key.
          const byKey = new Map<string, string>();
          let onDisk = await folders(dir);
          race.forEach((r, n) => {
            if (r.status !== 'fulfilled') return;
            const key = sends[n]!.key;
            expect(byKey.get(key) ?? r.value.messageId).toBe(r.value.messageId);
            byKey.set(key, r.value.messageId);
            expect(onDisk.get(r.value.messageId)?.key).toBe(key);
          });
          for (const [key, messageId] of byKey) await checkComplete(dir, onDisk.get(messageId)!.folder, key, messageId);
          expect(onDisk.size).toBeLessThanOrEqual(new Set(sends.map((s) => s.key)).size);

          // A retry of every key (as the notify job's retry after a crash): same messageId, the folder now there.
          const keys = [...new Set(sends.map((s) => s.key))];
          const retry = createOutboxMailer({ dir, now: () => new Date(INSTANTS[1]! + 5000) });
          for (const key of keys) {
            const { messageId } = await retry.send(mail(key));
            expect(byKey.get(key) ?? messageId).toBe(messageId);
            byKey.set(key, messageId);
          }
          onDisk = await folders(dir);
          expect(onDisk.size).toBe(keys.length);
          for (const [key, messageId] of byKey) await checkComplete(dir, onDisk.get(messageId)!.folder, key, messageId);

          // Nothing half-written is left: no work folders, no claim files, one index entry per key.
          expect(await readdir(join(dir, '.tmp')).catch(() => [])).toEqual([]);
          const index = await readdir(join(dir, '.index'));
          expect(index.filter((f) => f.startsWith('.'))).toEqual([]);
          expect(index).toHaveLength(keys.length);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 200 },
    );
  });
});
