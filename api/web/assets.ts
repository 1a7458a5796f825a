/**
 * The web app's stylesheet and its one script, served by the app itself at /assets/web.css and /assets/web.js (files
 * of this origin, so the pages' Content-Security-Policy allows `script-src 'self'` and no inline script at all).
 * Mobile first: one column, large touch targets, fits 390x844 without sideways scrolling.
 */
export const WEB_CSS = `
*,*::before,*::after{box-sizing:border-box}
body{font:17px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#f6f6f3}
a{color:#0b4aa8}
header{display:flex;align-items:center;justify-content:space-between;gap:.5rem;padding:.6rem 1rem;background:#fff;border-bottom:1px solid #ddd}
header .brand{font-weight:700;text-decoration:none;color:#1a1a1a}
header nav{display:flex;gap:.75rem;align-items:center}
header form{margin:0}
main{max-width:36rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0}
h2{font-size:1.2rem;margin:.25rem 0}
.card{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:.9rem 1rem;margin:.75rem 0}
.muted{color:#555}
.notice{background:#fff8d6;border:1px solid #e6d37a;border-radius:.5rem;padding:.6rem .9rem}
.error{background:#fdecec;border:1px solid #e2a3a3;border-radius:.5rem;padding:.6rem .9rem;color:#8a0000}
.price{font-weight:700}
.timer{font-size:1.6rem;font-weight:700;font-variant-numeric:tabular-nums}
label{display:block;margin:.5rem 0 .25rem;font-weight:600}
fieldset{border:1px solid #ccc;border-radius:.5rem;margin:.75rem 0;padding:.5rem .9rem}
fieldset label{font-weight:400;display:flex;gap:.5rem;align-items:center;min-height:44px;margin:0}
input,select,button{font:inherit}
input[type=email],select{width:100%;padding:.55rem .6rem;min-height:44px;border:1px solid #888;border-radius:.35rem}
button,.button{display:inline-block;min-height:44px;padding:.55rem 1rem;background:#1f5fbf;color:#fff;border:0;border-radius:.35rem;cursor:pointer;text-decoration:none;margin-top:.5rem}
button.secondary,.button.secondary{background:#e9e9e9;color:#1a1a1a}
button.link{background:none;color:#0b4aa8;text-decoration:underline;padding:0;min-height:0;margin:0}
.qr svg{width:100%;max-width:16rem;height:auto;display:block;background:#fff}
ul.plain{list-style:none;padding:0;margin:0}
.seatmap{width:100%;height:auto;display:block}
.seatmap .free{fill:#2e8b57}
.seatmap .taken{fill:#c4c4c4}
.seatrow{display:flex;flex-wrap:wrap;align-items:center;gap:2px;margin:.25rem 0}
.rowname{width:4.2rem;font-size:.85rem;color:#555}
label.seat{display:inline-flex;flex-direction:column;align-items:center;min-height:0;width:2rem;font-size:.7rem;margin:0}
label.seat input{width:1.5rem;height:1.5rem;margin:0}
.live:empty{display:none}
.live{background:#fff8d6;border:1px solid #e6d37a;border-radius:.5rem;padding:.6rem .9rem}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
`;

export const WEB_JS = `
(() => {
  // The reservation countdown: counts down from the time the server gave, then returns to the event page.
  const timer = document.querySelector('[data-countdown]');
  if (timer) {
    const end = Date.now() + Number(timer.getAttribute('data-remaining-ms'));
    const expired = timer.getAttribute('data-expired-url');
    const tick = () => {
      const left = Math.max(0, end - Date.now());
      const s = Math.ceil(left / 1000);
      timer.textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
      if (left <= 0) { location.assign(expired); return; }
      setTimeout(tick, Math.min(1000, left));
    };
    tick();
  }
  // The page's own timings (TTFB, DOM ready, load, LCP where the browser has it), once, for the Mobile Performance KPI.
  const page = document.body.getAttribute('data-page');
  if (page && window.fetch && window.performance && performance.getEntriesByType) {
    let lcp = null;
    try {
      new PerformanceObserver((list) => { const e = list.getEntries(); if (e.length) lcp = e[e.length - 1].startTime; })
        .observe({ type: 'largest-contentful-paint', buffered: true });
    } catch (e) { /* no LCP in this browser */ }
    const send = () => {
      const n = performance.getEntriesByType('navigation')[0];
      if (!n || !(n.loadEventEnd > 0)) return;
      const body = { page, device: matchMedia('(max-width: 767px)').matches ? 'mobile' : 'desktop',
        ttfbMs: Math.round(n.responseStart), domReadyMs: Math.round(n.domContentLoadedEventEnd), loadMs: Math.round(n.loadEventEnd) };
      if (lcp !== null) body.lcpMs = Math.round(lcp);
      fetch('/api/client-timings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
        keepalive: true, credentials: 'omit' }).catch(() => {});
    };
    // loadEventEnd is set once the load handlers have run
    if (document.readyState === 'complete') setTimeout(send, 0); else addEventListener('load', () => setTimeout(send, 0));
  }
  // The seat map follows the sale: seats taken (or freed) meanwhile change on the map and in the picker; a seat the
  // buyer had ticked that someone else took is unticked, and the page says so.
  const seatStatus = document.querySelector('[data-seat-poll]');
  if (seatStatus) {
    const eventId = seatStatus.getAttribute('data-seat-poll');
    const poll = async () => {
      try {
        const res = await fetch('/api/events/' + encodeURIComponent(eventId) + '/seats');
        if (res.ok) {
          const lost = [];
          for (const s of (await res.json()).sections) {
            for (let i = 0; i < s.seatMap.length; i++) {
              const row = Math.floor(i / s.seatsPerRow) + 1, n = (i % s.seatsPerRow) + 1, id = s.id + '-' + row + '-' + n;
              const taken = s.seatMap[i] !== '.';
              const rect = document.getElementById('seat-' + id);
              if (rect) rect.setAttribute('class', taken ? 'taken' : 'free');
              const box = document.querySelector('input[name="seat"][value="' + id + '"]');
              if (!box || box.disabled === taken) continue;
              if (taken && box.checked) { box.checked = false; lost.push(id); }
              box.disabled = taken;
              box.setAttribute('aria-label', 'Row ' + row + ', seat ' + n + (taken ? ' (taken)' : ''));
            }
          }
          if (lost.length) seatStatus.textContent = 'Just taken by someone else: ' + lost.join(', ') + '. Please choose another seat.';
        }
      } catch (e) { /* try again at the next turn */ }
      setTimeout(poll, 3000);
    };
    setTimeout(poll, 3000);
  }
  // The event page's ticket counts follow the sale: the event's availability every 5 s, each tier's count updated.
  const counts = document.querySelector('[data-availability-poll]');
  if (counts) {
    const eventId = counts.getAttribute('data-availability-poll');
    const poll = async () => {
      try {
        const res = await fetch('/api/events/' + encodeURIComponent(eventId));
        if (res.ok) {
          for (const t of (await res.json()).tiers) {
            const el = document.querySelector('[data-tier-left="' + t.id + '"]');
            if (el && el.textContent !== String(t.available)) el.textContent = String(t.available);
          }
        }
      } catch (e) { /* try again at the next turn */ }
      setTimeout(poll, 5000);
    };
    setTimeout(poll, 5000);
  }
  // A form is sent once: its buttons are disabled while the next page loads.
  for (const form of document.querySelectorAll('form[data-once]')) {
    form.addEventListener('submit', () => { for (const b of form.querySelectorAll('button')) b.disabled = true; });
  }
})();
`;
