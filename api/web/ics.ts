/** Escapes iCalendar TEXT (RFC 5545 3.3.11). */
const text = (s: string) => s.replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r?\n/g, '\\n');
const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** Folds a content line at 75 octets (RFC 5545 3.1). */
const fold = (line: string) => {
  const out: string[] = [];
  let rest = line;
  while (Buffer.byteLength(rest) > 75) {
    let n = 75;
    while (Buffer.byteLength(rest.slice(0, n)) > 75) n--;
    out.push(rest.slice(0, n));
    rest = ' ' + rest.slice(n);
  }
  out.push(rest);
  return out.join('\r\n');
};

/** An "add to calendar" file for one booking: the event's start (no end is known, so none is given). */
export function bookingIcs(o: { bookingId: string; eventName: string; venue: string; startsAt: string; tickets: number; url: string; now: Date }): string {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Floodgate//Tickets//EN',
    'CALSCALE:GREGORIAN',
    'BEGIN:VEVENT',
    `UID:${o.bookingId}@floodgate`,
    `DTSTAMP:${stamp(o.now)}`,
    `DTSTART:${stamp(new Date(o.startsAt))}`,
    `SUMMARY:${text(o.eventName)}`,
    `LOCATION:${text(o.venue)}`,
    `DESCRIPTION:${text(`${o.tickets} ticket(s), booking ${o.bookingId}: ${o.url}`)}`,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ]
    .map(fold)
    .join('\r\n');
}
