/**
 * The waiting-room page: plain HTML and a little JavaScript, no framework (a stand-in until the web app lands). The
 * visitor signs in with a token (pasted, or given in the URL fragment `#token=...`, which browsers never send to a
 * server). On an event with a waiting room it joins the line, follows the place over Server-Sent Events (falling back
 * to polling; the server pushes every change, `sold_out` included, which is not final: tickets that come back reopen
 * the line) and, once admitted, offers a booking form that sends the admission pass (as many tickets as the pass
 * allows, which may be fewer when only a few are left; "seats may be apart" is the buyer's explicit choice, suggested
 * when only single seats are left) and says by when to book before the turn passes on; on an event without one it
 * offers the booking form at once. After a hold it pays with the provider's test card (`pm_card_visa`, one
 * Idempotency-Key per booking) and shows the booking once it is confirmed. Everything shown is set with textContent
 * (no HTML injection). All script is one inline <script> block with no inline event handlers, so a nonce or hash
 * Content-Security-Policy covers it (the JSON data block is not script).
 */
export function waitPage(eventId: string, session?: { csrf: string }): string {
  // signed in through the web app: the session cookie authenticates, the CSRF token goes with every write
  const data = JSON.stringify({ eventId, ...(session ? { csrf: session.csrf } : {}) }).replace(/</g, '\\u003c');
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
    <h2>Sign in</h2>
    <p><a href="/signin?next=/wait/${eventId}">Sign in with your e-mail address</a>, or use a developer token:</p>
    <p class="muted">Paste your access token (<code>npm start</code> prints one; <code>npm run token -- &lt;userId&gt;</code> makes another).
      Or open this page as <code>/wait/&lt;eventId&gt;#token=&lt;token&gt;</code>: the part after # never leaves your browser.</p>
    <label for="token">Your access token</label>
    <input id="token" type="password" autocomplete="off" size="40">
    <button id="join" type="button">Sign in</button>
  </section>

  <section id="waiting" hidden aria-live="polite">
    <p class="big" id="position"></p>
    <p id="ahead"></p>
    <p id="chance"></p>
    <p id="eta" class="muted"></p>
    <button id="leave" type="button" class="secondary">Leave the line</button>
  </section>

  <section id="admitted" hidden>
    <h2 id="choose-title">You're in — choose your tickets</h2>
    <p id="pass" class="muted"></p>
    <p id="left"></p>
    <form id="book">
      <label for="tier">Ticket type</label>
      <select id="tier" required></select>
      <label for="count">Number of tickets</label>
      <input id="count" type="number" min="1" max="8" value="1" required>
      <label><input id="apart" type="checkbox"> Seats may be apart (best available, not together)</label>
      <button type="submit">Book</button>
    </form>
    <p id="book-error" role="alert"></p>
  </section>

  <section id="booked" hidden aria-live="polite">
    <h2>Booked</h2>
    <p id="booking"></p>
    <p class="muted">Pay before the reservation expires to receive your tickets.</p>
    <button id="pay" type="button">Pay with the test card</button>
    <p id="paying" class="muted"></p>
    <p id="pay-error" role="alert"></p>
  </section>

  <section id="confirmed" hidden aria-live="polite">
    <h2>Confirmed</h2>
    <p id="confirmed-text"></p>
    <p class="muted">Your tickets are on their way by e-mail.</p>
  </section>

  <section id="soldout" hidden aria-live="polite">
    <h2>Sold out</h2>
    <p>Everything has been taken, and the tickets others still hold are not expected to come back as far as your place.
      Keep this page open if you like: if tickets come back, the line moves again and this page tells you at once.</p>
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
  const { eventId, csrf } = JSON.parse(document.getElementById('page-data').textContent);
  // with a web session (csrf given) the cookie signs every call in: no token is pasted or stored
  const session = Boolean(csrf);
  const $ = (id) => document.getElementById(id);
  const show = (id) => { for (const s of ['signin', 'waiting', 'admitted', 'booked', 'confirmed', 'soldout', 'over']) $(s).hidden = s !== id; };
  const fromHash = session ? null : new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) { localStorage.setItem('floodgate-token', fromHash); history.replaceState(null, '', location.pathname); }
  let token = session ? '' : fromHash || localStorage.getItem('floodgate-token') || '';
  let current = null;
  let events = null;
  let eventInfo = null;
  let booking = null;
  const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  const api = async (method, path, body, headers = {}) => {
    const auth = session ? (method === 'GET' ? {} : { 'x-csrf-token': csrf }) : { authorization: 'Bearer ' + token };
    const res = await fetch(path, { method, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(json.detail || json.title || ('HTTP ' + res.status)),
      { problem: json, status: res.status, retryAfter: Number(res.headers.get('retry-after')) || 1 });
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
      $('chance').textContent = st.chance === 'unlikely'
        ? 'Nothing is free for your place right now. ' + (st.ticketsHeldAhead || 0) + ' ticket(s) are held by people ahead of you; ' +
          'only if some come back can you get one: unlikely.'
        : '';
    } else if (st.status === 'sold_out') {
      show('soldout');
    } else if (st.status === 'admitted') {
      if ($('booked').hidden && $('confirmed').hidden) { show('admitted'); offerTickets(st); }
    } else if (st.status === 'expired') {
      show('over'); $('over-title').textContent = 'Your turn has passed';
      $('over-text').textContent = 'Your admission pass was not used in time, so it went to the next person in line.';
    } else {
      show('over'); $('over-title').textContent = 'The waiting room is closed'; $('over-text').textContent = '';
    }
  }

  async function offerTickets(st) {
    $('pass').textContent = !st ? '' : st.admissionUseBy
      ? 'Book by ' + new Date(st.admissionUseBy).toLocaleTimeString() + ', or your turn passes to the next person in line.'
      : 'Your pass is valid until ' + new Date(st.admissionExpiresAt).toLocaleTimeString() + '.';
    const ev = await fetch('/api/events/' + eventId).then((r) => r.json());
    const limit = st && st.passTickets ? Math.min(st.passTickets, ev.maxTicketsPerUser) : ev.maxTicketsPerUser;
    $('left').textContent = !st || !st.passTickets || st.passTickets >= ev.maxTicketsPerUser ? ''
      : 'Only a few tickets are left: you can book up to ' + st.passTickets + '.' +
        (st.singleSeatsOnly ? ' They are single seats, not next to each other: tick "Seats may be apart" to take more than one.' : '');
    const select = $('tier');
    if (select.options.length === 0) {
      for (const t of ev.tiers) {
        const o = document.createElement('option');
        o.value = t.id;
        o.textContent = t.name + ' (' + (t.price / 100).toFixed(2) + ' ' + t.currency + ', ' + t.available + ' left)';
        o.disabled = t.available === 0;
        o.dataset.seated = t.seated ? '1' : '';
        select.append(o);
      }
    }
    $('count').max = String(limit);
  }

  $('book').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('book-error').textContent = '';
    try {
      // with a waiting room the pass goes along; without one the hold is taken directly
      const headers = current
        ? { 'x-admission-token': current.admissionToken, 'idempotency-key': 'wait-' + current.queueId + '-' + $('tier').value + '-' + $('count').value + ($('apart').checked ? '-apart' : '') }
        : { 'idempotency-key': 'book-' + newKey() };
      const body = { eventId, tierId: $('tier').value, ticketCount: Number($('count').value) };
      // "not together" applies to assigned seats only (general admission has no places to be apart)
      if ($('apart').checked && $('tier').selectedOptions[0].dataset.seated === '1') body.seatPreferences = { adjacent: false };
      const b = await api('POST', '/api/bookings', body, headers);
      booking = { ...b, payKey: 'pay-' + b.bookingId };
      // in the web app, the checkout page takes it from here (countdown, test cards)
      if (session) { location.assign('/bookings/' + b.bookingId); return; }
      show('booked');
      $('booking').textContent = 'Booking ' + b.bookingId + ': ' + b.ticketCount + ' ticket(s)' + (b.seats.length ? ' (' + b.seats.join(', ') + ')' : '') +
        ', ' + (b.amount / 100).toFixed(2) + ' ' + b.currency + ', reserved until ' + new Date(b.expiresAt).toLocaleTimeString() + '.';
    } catch (err) { $('book-error').textContent = err.message; }
  });

  // Pays with the provider's test card. One Idempotency-Key per booking: a retry (503: the reservation is not
  // recorded yet, or the provider did not answer) carries the same attempt on and never charges twice.
  $('pay').addEventListener('click', async () => {
    if (!booking) return;
    $('pay').disabled = true;
    $('pay-error').textContent = '';
    $('paying').textContent = 'Paying…';
    try {
      for (let tries = 0; ; tries++) {
        try {
          await api('POST', '/api/payments', { bookingId: booking.bookingId, paymentMethodId: 'pm_card_visa' }, { 'idempotency-key': booking.payKey });
          break;
        } catch (err) {
          if (err.status !== 503 || tries >= 10) throw err;
          $('paying').textContent = 'Almost there: retrying in ' + err.retryAfter + ' s…';
          await sleep(err.retryAfter * 1000);
        }
      }
      $('paying').textContent = 'Paid. Confirming your booking…';
      for (let tries = 0; tries < 60; tries++) {
        const b = await api('GET', '/api/bookings/' + booking.bookingId);
        if (b.status === 'CONFIRMED' || b.status === 'TICKETS_DELIVERED') {
          show('confirmed');
          $('confirmed-text').textContent = 'Booking ' + b.bookingId + ' is ' + b.status + ': ' + b.ticketCount + ' ticket(s)' +
            (b.seats && b.seats.length ? ' (' + b.seats.join(', ') + ')' : '') + '.';
          return;
        }
        await sleep(500);
      }
      $('paying').textContent = 'Paid. Your booking is being confirmed; reload this page later to see it.';
    } catch (err) {
      $('paying').textContent = '';
      $('pay-error').textContent = err.message + (err.problem && err.problem.attemptsLeft !== undefined ? ' (' + err.problem.attemptsLeft + ' attempt(s) left)' : '');
      $('pay').disabled = false;
    }
  });

  function follow(queueId) {
    if (events) events.close();
    events = new EventSource('/api/queue/' + queueId + '/events' + (session ? '' : '?access_token=' + encodeURIComponent(token)));
    events.addEventListener('status', (m) => render(JSON.parse(m.data)));
    events.onerror = () => {
      events.close();
      if (current && ['admitted', 'expired', 'closed'].includes(current.status)) return;
      setTimeout(async () => { try { render(await api('GET', '/api/queue/' + queueId)); follow(queueId); } catch (err) { $('error').textContent = err.message; } }, 2000);
    };
  }

  /** Without a waiting room there is no line to join: the booking form at once. */
  function bookDirectly() {
    current = null;
    show('admitted');
    $('choose-title').textContent = 'Choose your tickets';
    offerTickets(null).catch((err) => { $('error').textContent = err.message; });
  }

  async function start() {
    if (eventInfo && !(eventInfo.queue && eventInfo.queue.enabled)) {
      // check the token first (the bookings list needs one), so a bad token goes back to the sign-in form
      try { await api('GET', '/api/bookings'); } catch (err) {
        if (err.status === 401) { show('signin'); $('error').textContent = 'Please sign in: your token was not accepted.'; return; }
      }
      bookDirectly();
      return;
    }
    await join();
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

  $('join').addEventListener('click', () => { token = $('token').value.trim(); localStorage.setItem('floodgate-token', token); start(); });
  $('leave').addEventListener('click', async () => {
    if (!current || !confirm('Leave the line? Your place will be given up.')) return;
    await api('DELETE', '/api/queue/' + current.queueId).catch(() => {});
    if (events) events.close();
    show('over'); $('over-title').textContent = 'You left the line'; $('over-text').textContent = '';
  });

  fetch('/api/events/' + eventId).then((r) => r.ok ? r.json() : Promise.reject(new Error('This event does not exist.')))
    .then((ev) => {
      eventInfo = ev;
      $('event').textContent = ev.name + ' · ' + ev.venue + ' · ' + new Date(ev.startsAt).toLocaleString();
      if (session || token) start(); else show('signin');
    })
    .catch((err) => { $('event').textContent = err.message; });
})();
</script>
</body>
</html>`;
}
