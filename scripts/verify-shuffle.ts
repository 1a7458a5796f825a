/**
 * `npm run verify:shuffle -- <eventId> [--url http://127.0.0.1:3000]`: checks an event's waiting-room draw from
 * the public fairness record alone: sha256(seed) equals the hash published before the draw, and the published
 * order of pre-opening places is exactly the order the seed produces. Exit code 0 when it holds, 1 when not.
 */
import { createHash } from 'node:crypto';

type Record = {
  seedHash: string;
  seed: string | null;
  drawAt: string;
  preOpening: { count: number; offset: number; places: { queueId: string; drawScore: number }[] };
};

export async function verifyShuffle(base: string, eventId: string, log: (s: string) => void = console.log): Promise<boolean> {
  const places: { queueId: string; drawScore: number }[] = [];
  let first: Record | undefined;
  for (let offset = 0; ; ) {
    const res = await fetch(`${base}/api/events/${eventId}/queue/fairness?offset=${offset}&limit=10000`);
    if (!res.ok) throw new Error(`GET fairness: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as Record;
    first ??= page;
    places.push(...page.preOpening.places);
    offset += page.preOpening.places.length;
    if (page.preOpening.places.length === 0 || offset >= page.preOpening.count) break;
  }
  const rec = first!;
  if (!rec.seed) {
    log(`the draw has not happened yet (at ${rec.drawAt}); published seed hash: ${rec.seedHash}`);
    return false;
  }
  let ok = true;
  const hash = createHash('sha256').update(rec.seed).digest('hex');
  log(`seed hash   ${hash === rec.seedHash ? 'matches' : 'DOES NOT MATCH'} the published ${rec.seedHash}`);
  ok &&= hash === rec.seedHash;
  const member = (q: string) => q.slice(-16);
  const score = (m: string) => parseInt(createHash('sha1').update(`${rec.seed}:${m}`).digest('hex').slice(0, 13), 16);
  const badScores = places.filter((p) => score(member(p.queueId)) !== p.drawScore);
  log(`draw scores ${badScores.length === 0 ? 'all recomputed from the seed' : `${badScores.length} DO NOT MATCH the seed`}`);
  ok &&= badScores.length === 0;
  const sorted = [...places].sort((a, b) => a.drawScore - b.drawScore || (member(a.queueId) < member(b.queueId) ? -1 : 1));
  const sameOrder = sorted.every((p, i) => p.queueId === places[i]!.queueId);
  log(`order       ${sameOrder ? 'is' : 'is NOT'} the order the seed produces (${places.length} of ${rec.preOpening.count} places)`);
  ok &&= sameOrder && places.length === rec.preOpening.count;
  log(ok ? 'VERIFIED: the draw is the one committed to before the sale opened' : 'NOT VERIFIED');
  return ok;
}

if (process.argv[1]?.endsWith('verify-shuffle.ts')) {
  const args = process.argv.slice(2);
  const eventId = args.find((a) => a.startsWith('ev_'));
  const i = args.indexOf('--url');
  const base = i >= 0 ? args[i + 1]! : 'http://127.0.0.1:3000';
  if (!eventId) {
    console.error('usage: npm run verify:shuffle -- <eventId> [--url http://127.0.0.1:3000]');
    process.exit(2);
  }
  verifyShuffle(base, eventId).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err: Error) => {
      console.error(err.message);
      process.exit(2);
    },
  );
}
