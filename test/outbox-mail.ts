import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Undoes quoted-printable (RFC 2045 6.7): soft line breaks, then =XX octets. */
const unQp = (s: string) =>
  Buffer.from(s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');

/** The sign-in link path (`/signin/link?token=...`) of the newest message to `to` in an outbox folder, or null. */
export async function signInLinkFor(dir: string, to: string): Promise<string | null> {
  let found: { at: string; path: string } | null = null;
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith('.')) continue;
    const summary = JSON.parse(await readFile(join(dir, entry, 'message.json'), 'utf8')) as { to: string; subject: string; createdAt: string };
    if (summary.to !== to || !summary.subject.includes('sign-in')) continue;
    const m = /\/signin\/link\?token=[A-Za-z0-9_-]{43}/.exec(unQp(await readFile(join(dir, entry, 'message.eml'), 'utf8')));
    if (m && (!found || summary.createdAt > found.at)) found = { at: summary.createdAt, path: m[0] };
  }
  return found?.path ?? null;
}

/** The waitlist offer's checkout path (`/bookings/<bookingId>`) in the newest offer e-mail to `to`, or null. */
export async function offerLinkFor(dir: string, to: string): Promise<string | null> {
  let found: { at: string; path: string } | null = null;
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (entry.startsWith('.')) continue;
    const summary = JSON.parse(await readFile(join(dir, entry, 'message.json'), 'utf8')) as { to: string; subject: string; createdAt: string };
    if (summary.to !== to || !summary.subject.includes('held for you')) continue;
    const m = /\/bookings\/bk_[a-z0-9]{12}_[a-z0-9]{16}/.exec(unQp(await readFile(join(dir, entry, 'message.eml'), 'utf8')));
    if (m && (!found || summary.createdAt > found.at)) found = { at: summary.createdAt, path: m[0] };
  }
  return found?.path ?? null;
}
