/**
 * The waiting-room page: plain HTML and a little JavaScript, no framework. It joins the line with the visitor's
 * token, follows their place over Server-Sent Events (falling back to polling), and once they are admitted offers a
 * booking form that sends the admission pass. Everything shown is set with textContent (no HTML injection).
 */
export function waitPage(eventId: string): string {
  const data = JSON.stringify({ eventId }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waiting room · Floodgate</title>
<style>
  body { font: 17px/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f6f3; }
  main { max-width: 34rem; margin: 0 auto; padding: 2rem 1.25rem; }
  h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
  .big { font-size: 2.2rem; font-weight: 700; margin: 1rem 0 .25rem; }
  section { background: #fff; border: 1px solid #ddd; border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input, select, button { font: inherit; padding: .45rem .6rem; }
  button { background: #1f5fbf; color: #fff; border: 0; border-radius: .35rem; cursor: pointer; margin-top: .75rem; }
  button.secondary { background: #eee; color: #222; }
  [role=alert] { color: #a40000; }
  .muted { color: #555; }
</style>
</head>
<body>
<main>
  <h1>Waiting room</h1>
  <p id="event" class="muted">Loading the event…</p>

  <section id="signin" hidden>
    <label for="token">Your access token</label>
    <input id="token" type="password" autocomplete="off" size="40">
    <button id="join" type="button">Join the line</button>
  </section>

  <section id="waiting" hidden aria-live="polite">
    <p class="big" id="position"></p>
    <p id="ahead"></p>
    <p id="eta" class="muted"></p>
    <button id="leave" type="button" class="secondary">Leave the line</button>
  </section>

  <section id="admitted" hidden>
    <h2>You're in — choose your tickets</h2>
    <p id="pass" class="muted"></p>
    <form id="book">
      <label for="tier">Ticket type</label>
      <select id="tier" required></select>
      <label for="count">Number of tickets</label>
      <input id="count" type="number" min="1" max="8" value="1" required>
      <button type="submit">Book</button>
    </form>
    <p id="book-error" role="alert"></p>
  </section>

  <section id="booked" hidden aria-live="polite">
    <h2>Booked</h2>
    <p id="booking"></p>
    <p class="muted">Pay before the reservation expires to receive your tickets.</p>
  </section>

  <section id="soldout" hidden aria-live="polite">
    <h2>Sold out</h2>
    <p>Everything has been taken for now. Keep this page open: if reservations expire, the line moves again.</p>
  </section>

  <section id="over" hidden aria-live="polite">
    <h2 id="over-title"></h2>
    <p id="over-text"></p>
  </section>

  <p id="error" role="alert"></p>
</main>
<script type="application/json" id="page-data">${data}</script>
<script>
(() => {
  const { eventId } = JSON.parse(document.getElementById('page-data').textContent);
  const $ = (id) => document.getElementById(id);
  const show = (id) => { for (const s of ['signin', 'waiting', 'admitted', 'booked', 'soldout', 'over']) $(s).hidden = s !== id; };
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) { localStorage.setItem('floodgate-token', fromHash); history.replaceState(null, '', location.pathname); }
  let token = fromHash || localStorage.getItem('floodgate-token') || '';
  let current = null;
  let events = null;

  const api = async (method, path, body, headers = {}) => {
    const res = await fetch(path, { method, headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(json.detail || json.title || ('HTTP ' + res.status)), { problem: json, status: res.status });
    return json;
  };
  const minutes = (s) => s < 90 ? Math.max(1, Math.round(s)) + ' seconds' : Math.round(s / 60) + ' minutes';

  function render(st) {
    current = st;
    $('error').textContent = '';
    if (st.status === 'waiting') {
      show('waiting');
      if (st.position === null) {
        $('position').textContent = 'You are in line';
        $('ahead').textContent = 'Everyone who arrives before ' + new Date(st.drawAt).toLocaleTimeString() +
          ' gets a fair random place when the sale opens.';
        $('eta').textContent = st.estimatedWaitSeconds !== null ? 'The draw is in ' + minutes(st.estimatedWaitSeconds) + '.' : '';
      } else {
        $('position').textContent = 'You are number ' + st.position + ' in line';
        $('ahead').textContent = st.aheadOfYou === 0 ? 'You are next.' : st.aheadOfYou === 1 ? '1 person is ahead of you.' : st.aheadOfYou + ' people are ahead of you.';
        const r = st.estimatedWaitRange;
        $('eta').textContent = st.estimatedWaitSeconds === null ? '' : 'Estimated wait: about ' + minutes(st.estimatedWaitSeconds) +
          (r && r.high !== null && r.high !== r.low ? ' (between ' + minutes(r.low) + ' and ' + minutes(r.high) + ')' : '') + '.';
      }
    } else if (st.status === 'sold_out') {
      show('soldout');
    } else if (st.status === 'admitted') {
      if ($('booked').hidden) { show('admitted'); offerTickets(st); }
    } else if (st.status === 'expired') {
      show('over'); $('over-title').textContent = 'Your turn has passed'; $('over-text').textContent = 'Your admission pass expired before it was used.';
    } else {
      show('over'); $('over-title').textContent = 'The waiting room is closed'; $('over-text').textContent = '';
    }
  }

  async function offerTickets(st) {
    $('pass').textContent = 'Your pass is valid until ' + new Date(st.admissionExpiresAt).toLocaleTimeString() + '.';
    const ev = await fetch('/api/events/' + eventId).then((r) => r.json());
    const select = $('tier');
    if (select.options.length === 0) {
      for (const t of ev.tiers) {
        const o = document.createElement('option');
        o.value = t.id;
        o.textContent = t.name + ' (' + (t.price / 100).toFixed(2) + ' ' + t.currency + ', ' + t.available + ' left)';
        o.disabled = t.available === 0;
        select.append(o);
      }
      $('count').max = String(ev.maxTicketsPerUser);
    }
  }

  $('book').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('book-error').textContent = '';
    try {
      const b = await api('POST', '/api/bookings', { eventId, tierId: $('tier').value, ticketCount: Number($('count').value) },
        { 'x-admission-token': current.admissionToken, 'idempotency-key': 'wait-' + current.queueId + '-' + $('tier').value + '-' + $('count').value });
      show('booked');
      $('booking').textContent = 'Booking ' + b.bookingId + ': ' + b.ticketCount + ' ticket(s)' + (b.seats.length ? ' (' + b.seats.join(', ') + ')' : '') +
        ', ' + (b.amount / 100).toFixed(2) + ' ' + b.currency + ', reserved until ' + new Date(b.expiresAt).toLocaleTimeString() + '.';
    } catch (err) { $('book-error').textContent = err.message; }
  });

  function follow(queueId) {
    if (events) events.close();
    events = new EventSource('/api/queue/' + queueId + '/events?access_token=' + encodeURIComponent(token));
    events.addEventListener('status', (m) => render(JSON.parse(m.data)));
    events.onerror = () => {
      events.close();
      if (current && ['admitted', 'expired', 'closed'].includes(current.status)) return;
      setTimeout(async () => { try { render(await api('GET', '/api/queue/' + queueId)); follow(queueId); } catch (err) { $('error').textContent = err.message; } }, 2000);
    };
  }

  async function join() {
    try {
      const st = await api('POST', '/api/events/' + eventId + '/queue');
      render(st);
      follow(st.queueId);
    } catch (err) {
      if (err.status === 401) { show('signin'); $('error').textContent = 'Please sign in: your token was not accepted.'; }
      else $('error').textContent = err.message;
    }
  }

  $('join').addEventListener('click', () => { token = $('token').value.trim(); localStorage.setItem('floodgate-token', token); join(); });
  $('leave').addEventListener('click', async () => {
    if (!current || !confirm('Leave the line? Your place will be given up.')) return;
    await api('DELETE', '/api/queue/' + current.queueId).catch(() => {});
    if (events) events.close();
    show('over'); $('over-title').textContent = 'You left the line'; $('over-text').textContent = '';
  });

  fetch('/api/events/' + eventId).then((r) => r.ok ? r.json() : Promise.reject(new Error('This event does not exist.')))
    .then((ev) => { $('event').textContent = ev.name + ' · ' + ev.venue + ' · ' + new Date(ev.startsAt).toLocaleString(); })
    .catch((err) => { $('event').textContent = err.message; });
  if (token) join(); else show('signin');
})();
</script>
</body>
</html>`;
}
