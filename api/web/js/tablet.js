// tablet.js is the store manager's counter screen: start a live event
// (typed, or from the brand's saved templates and audiences), watch its
// counts, end it, and see what it brought in. It uses a manager key
// (hzm_) and the public API only: GET /v1/me, the saved templates and
// audiences, POST and DELETE the store's live event, the event's report,
// and the live stream read with fetch so the key stays in a header.

import {ApiError, NetworkError, randomKey, request, seg} from './api.js';
import {readEvents} from './sse.js';
import {$, clearErrors, say, showErrors} from './dom.js';

const KEY = 'hotzone.tablet.key';
const presetKey = (storeID) => `hotzone.tablet.preset.${storeID}`;

const REVOKED = "This tablet's key was revoked — ask your brand admin for a new link.";
const NOT_MANAGER = 'That is not a store manager key. Open the tablet link your brand admin made for this store.';
const STORE_GONE = 'This store no longer exists — ask your brand admin for a new link.';

// Reconnect delays; the last one repeats. Jitter spreads a shop full of
// tablets after a server restart.
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
// The server sends a comment every 15 s; silence this long means the
// connection is dead even if the socket does not say so.
const WATCHDOG_MS = 45000;
// Re-read /v1/me now and then, so a revoked key or a store that was
// deleted shows even when the stream stays open.
const REFRESH_MS = 60000;

const state = {
  key: null,
  me: null, // {kind, brand, store, live_event}
  event: null, // the live event with counts, or null
  ended: null, // the last event this page saw end
  templates: [], // the brand's saved templates
  audiences: [], // the brand's saved audiences
  report: null, // {id, at, text}: the ended event's report as last shown
  skewMs: 0, // server clock minus ours
  conn: 'connecting',
};

let gen = 0; // bumps on sign-in and sign-out; an old loop sees it and stops
let session = null; // AbortController of the current loop
let wake = null; // cuts a backoff sleep short
let confirmTimer = 0;
let wakeLock = null;
let presetFor = ''; // the store whose preset fills the start form

const el = {};

function init() {
  for (const id of ['brand-name', 'store-name', 'conn', 'loading', 'signin', 'signin-msg', 'signin-form', 'signin-key',
    'signin-error', 'idle', 'ended', 'ended-summary', 'start-form', 'ev-title', 'ev-body', 'start', 'live', 'live-title',
    'live-body', 'live-note', 'countdown', 'ends-at', 'c-in', 'c-sent', 'c-queued', 'c-suppressed', 'c-failed', 'c-opened', 'end',
    'ended-report', 'choices', 'template-field', 'ev-template', 'audience-field', 'ev-audience',
    'end-confirm', 'end-yes', 'end-no', 'end-error', 'signout']) {
    el[id] = document.getElementById(id);
  }
  el['signin-form'].addEventListener('submit', onSignIn);
  el['start-form'].addEventListener('submit', onStart);
  el.end.addEventListener('click', () => askEnd(true));
  el['end-no'].addEventListener('click', () => askEnd(false));
  el['end-yes'].addEventListener('click', onEnd);
  el.signout.addEventListener('click', onSignOut);
  el['ev-template'].addEventListener('change', onTemplate);
  for (const id of ['ev-title', 'ev-body']) el[id].addEventListener('change', savePreset);
  document.addEventListener('change', (e) => {
    if (e.target.name === 'duration') savePreset();
  });
  window.addEventListener('online', () => wake && wake());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      if (wake) wake();
      if (state.event) holdScreen(true);
    }
  });
  setInterval(tick, 1000);

  // The key arrives in the fragment (never sent to any server), is kept
  // in this browser, and is taken out of the address bar at once.
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  state.key = localStorage.getItem(KEY);
  if (state.key) start();
  else showSignIn('');
}

// --- views -----------------------------------------------------------

function showOnly(id) {
  for (const v of ['loading', 'signin', 'idle', 'live']) el[v].hidden = v !== id;
}

function showSignIn(message) {
  showOnly('signin');
  say(el['signin-msg'], message);
  el['store-name'].textContent = 'Store tablet';
  say(el['brand-name'], '');
  el.signout.hidden = true;
  setConn('signedout');
  holdScreen(false);
}

function setConn(s) {
  state.conn = s;
  const text = {
    connecting: 'Connecting…',
    live: 'Connected',
    reconnecting: 'Connection lost — reconnecting…',
    signedout: 'Not signed in',
  }[s];
  el.conn.dataset.state = s;
  el.conn.textContent = text;
  document.body.classList.toggle('stale', s === 'reconnecting');
}

function render() {
  const me = state.me;
  if (!me) return;
  el['store-name'].textContent = me.store.name;
  say(el['brand-name'], me.brand ? me.brand.name : '');
  document.title = `${me.store.name} — Hot Now`;
  el.signout.hidden = false;
  if (state.event) {
    const wasHidden = el.live.hidden;
    showOnly('live');
    renderLive(state.event);
    if (wasHidden) holdScreen(true);
  } else {
    const wasHidden = el.idle.hidden;
    showOnly('idle');
    askEnd(false);
    if (wasHidden) holdScreen(false);
    if (state.ended) {
      const c = state.ended.counts;
      el['ended-summary'].textContent =
        `“${state.ended.title}” reached ${c.devices_in_fence} ${plural(c.devices_in_fence, 'device', 'devices')} in range; ` +
        `${c.sent} sent, ${c.suppressed} suppressed, ${c.failed} failed.`;
      showReport(state.ended.id);
    }
    el.ended.hidden = !state.ended;
  }
}

// REPORT_EVERY_MS: visits go on counting for hours after an event ends
// (the attribution window), so the summary is read again now and then.
const REPORT_EVERY_MS = 30000;

// showReport shows what the ended event brought in: "N visits, +X% vs
// held back", read from its report (and again after a while).
async function showReport(id) {
  const r = state.report;
  if (r && r.id === id) {
    say(el['ended-report'], r.text);
    if (Date.now() - r.at < REPORT_EVERY_MS) return;
  }
  state.report = {id, at: Date.now(), text: r && r.id === id ? r.text : ''};
  try {
    const res = await request(state.key, 'GET', `/v1/events/${seg(id)}/report`);
    if (!state.report || state.report.id !== id) return;
    state.report.text = reportText(res.data);
    say(el['ended-report'], state.report.text);
  } catch {
    // A report is a nicety: the counts above stand without it.
  }
}

// reportText puts a report in the manager's words.
function reportText(r) {
  const visits = `${r.visits.notified} ${plural(r.visits.notified, 'visit', 'visits')}`;
  const opened = r.opened ? `, ${r.opened} opened` : '';
  if (r.lift && r.lift.ratio !== null) {
    const pct = Math.round((r.lift.ratio - 1) * 100);
    return `${visits}, ${pct >= 0 ? '+' : '−'}${Math.abs(pct)}% vs held back${opened}.`;
  }
  if (r.lift) return `${visits}; nobody held back came in${opened}.`;
  if (r.held_back === 0) return `${visits}${opened} (nobody was held back to compare).`;
  return `${visits}${opened} — too few held back to compare yet.`;
}

function renderLive(ev) {
  el['live-title'].textContent = ev.title;
  el['live-body'].textContent = ev.body;
  const c = ev.counts;
  const set = (id, v) => {
    if (el[id].textContent !== String(v)) el[id].textContent = String(v);
  };
  set('c-in', c.devices_in_fence);
  set('c-sent', c.sent);
  set('c-queued', c.queued);
  set('c-suppressed', c.suppressed);
  set('c-failed', c.failed);
  set('c-opened', c.opened || 0);
  el['ends-at'].textContent = `Ends at ${storeClock(ev.ends_at)}`;
  tick();
}

// storeClock is a time as the store's wall clock shows it: the tablet
// may be set to another zone (or none) than the shop it stands in.
function storeClock(iso) {
  const opts = {hour: '2-digit', minute: '2-digit'};
  const zone = state.me && state.me.store.timezone;
  try {
    return new Date(iso).toLocaleTimeString([], {...opts, timeZone: zone || 'UTC'});
  } catch {
    // A zone this browser does not know: its own clock is the best left.
    return new Date(iso).toLocaleTimeString([], opts);
  }
}

function tick() {
  if (!state.event) return;
  const left = Date.parse(state.event.ends_at) - (Date.now() + state.skewMs);
  if (left <= 0) {
    el.countdown.textContent = 'Ending…';
    return;
  }
  const s = Math.ceil(left / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  el.countdown.textContent = hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function plural(n, one, many) {
  return n === 1 ? one : many;
}

// holdScreen keeps the tablet awake while an event is live, where the
// browser allows it (a secure context); elsewhere nothing happens.
async function holdScreen(on) {
  try {
    if (on && !wakeLock && navigator.wakeLock && document.visibilityState === 'visible') {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', () => {
        wakeLock = null;
      });
    } else if (!on && wakeLock) {
      await wakeLock.release();
      wakeLock = null;
    }
  } catch {
    wakeLock = null;
  }
}

// --- state from the server ------------------------------------------

// applyEvent takes an event from any source (me, stream, start, end).
function applyEvent(ev) {
  if (ev && ev.status === 'live') {
    if (!state.event || state.event.id !== ev.id) {
      state.ended = null;
      say(el['live-note'], '');
    }
    state.event = ev;
  } else if (ev && ev.status === 'ended') {
    if (!state.event || state.event.id === ev.id) {
      state.event = null;
      state.ended = ev;
    }
  }
  render();
}

// applyMe takes /v1/me: the store, and the live event or null.
function applyMe(me) {
  state.me = me;
  if (presetFor !== me.store.id) {
    // The start form starts from this manager's last choice.
    presetFor = me.store.id;
    loadPreset();
    loadChoices();
  }
  if (me.live_event) {
    applyEvent(me.live_event);
  } else {
    if (state.event) {
      // It ended while we were not listening: keep what we last saw.
      state.ended = {...state.event, status: 'ended'};
      state.event = null;
    }
    render();
  }
}

function noteClock(headers) {
  const d = Date.parse(headers.get('Date') || '');
  if (Number.isNaN(d)) return;
  const skew = d - Date.now();
  // The header has whole seconds; only a clearly wrong tablet clock
  // is corrected.
  state.skewMs = Math.abs(skew) > 2000 ? skew : 0;
}

// --- the connection loop ---------------------------------------------

function start() {
  stop();
  const my = ++gen;
  session = new AbortController();
  setConn('connecting');
  if (!state.me) showOnly('loading');
  run(my, session.signal);
}

function stop() {
  gen++;
  if (session) session.abort();
  session = null;
  if (wake) wake();
}

async function run(my, signal) {
  let attempt = 0;
  while (my === gen) {
    const attemptCtl = new AbortController();
    const cut = () => attemptCtl.abort();
    signal.addEventListener('abort', cut);
    let watchdog = 0;
    const kick = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(cut, WATCHDOG_MS);
    };
    const refresher = setInterval(() => refreshMe(my, attemptCtl), REFRESH_MS);
    try {
      const me = await request(state.key, 'GET', '/v1/me', {signal: attemptCtl.signal});
      if (my !== gen) return;
      if (me.data.kind !== 'manager' || !me.data.store) {
        forgetKey(NOT_MANAGER);
        return;
      }
      noteClock(me.headers);
      applyMe(me.data);
      kick();
      const res = await fetch(`/v1/stores/${seg(me.data.store.id)}/events/live/stream`, {
        headers: {Authorization: `Bearer ${state.key}`, Accept: 'text/event-stream'},
        signal: attemptCtl.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
      if (my !== gen) return;
      setConn('live');
      await readEvents(res, (name, data) => onStreamEvent(my, name, data), () => {
        attempt = 0;
        kick();
      });
    } catch (err) {
      if (my !== gen) return;
      if (err instanceof ApiError) {
        if (err.status === 401) return forgetKey(REVOKED);
        if (err.status === 403 || err.status === 404) return forgetKey(STORE_GONE);
      }
      // Anything else (network, 5xx, 429, the watchdog) is retried.
    } finally {
      clearTimeout(watchdog);
      clearInterval(refresher);
      signal.removeEventListener('abort', cut);
    }
    if (my !== gen) return;
    setConn('reconnecting');
    await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4));
    attempt++;
  }
}

// refreshMe re-reads /v1/me while the stream is open; on any failure it
// cuts the stream so the loop reconnects and decides.
async function refreshMe(my, attemptCtl) {
  try {
    const me = await request(state.key, 'GET', '/v1/me', {signal: attemptCtl.signal});
    if (my === gen && me.data.kind === 'manager' && me.data.store) {
      noteClock(me.headers);
      applyMe(me.data);
    }
  } catch {
    attemptCtl.abort();
  }
}

function onStreamEvent(my, name, data) {
  if (my !== gen || (name !== 'counts' && name !== 'ended')) return;
  let ev;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  applyEvent(ev);
}

function sleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake = null;
      resolve();
    }
    wake = done;
  });
}

// forgetKey drops a key the server refused and asks for a new one.
function forgetKey(message) {
  stop();
  localStorage.removeItem(KEY);
  state.key = null;
  state.me = null;
  state.event = null;
  state.ended = null;
  presetFor = '';
  showSignIn(message);
}

// --- actions ---------------------------------------------------------

async function onSignIn(e) {
  e.preventDefault();
  const key = el['signin-key'].value.trim();
  say(el['signin-error'], '');
  if (!key) {
    say(el['signin-error'], 'Paste the manager key (it starts with hzm_).');
    return;
  }
  const btn = e.submitter || el['signin-form'].querySelector('button');
  btn.disabled = true;
  try {
    const me = await request(key, 'GET', '/v1/me');
    if (me.data.kind !== 'manager') {
      say(el['signin-error'], NOT_MANAGER);
      return;
    }
    localStorage.setItem(KEY, key);
    state.key = key;
    el['signin-key'].value = '';
    start();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) say(el['signin-error'], 'That key was not accepted. It may have been revoked — ask your brand admin for a new link.');
    else say(el['signin-error'], `Could not sign in: ${err.message}`);
  } finally {
    btn.disabled = false;
  }
}

// loadChoices offers the brand's saved templates and audiences; a brand
// with none keeps the plain form.
async function loadChoices() {
  const list = async (path) => {
    try {
      return (await request(state.key, 'GET', `${path}?limit=100`)).data.items || [];
    } catch {
      return [];
    }
  };
  [state.templates, state.audiences] = await Promise.all([list('/v1/templates'), list('/v1/audiences')]);
  fillSelect(el['ev-template'], state.templates);
  fillSelect(el['ev-audience'], state.audiences);
  el['template-field'].hidden = state.templates.length === 0;
  el['audience-field'].hidden = state.audiences.length === 0;
  el.choices.hidden = el['template-field'].hidden && el['audience-field'].hidden;
}

function fillSelect(sel, items) {
  const first = sel.options[0];
  sel.replaceChildren(first, ...items.map((it) => {
    const o = document.createElement('option');
    o.value = it.id;
    o.textContent = it.name;
    return o;
  }));
}

const chosen = (items, sel) => items.find((it) => it.id === sel.value) || null;

// onTemplate fills the form from the chosen template.
function onTemplate() {
  const t = chosen(state.templates, el['ev-template']);
  if (!t) return;
  el['ev-title'].value = t.title;
  el['ev-body'].value = t.body;
  const d = t.duration_s && document.getElementById(`dur-${t.duration_s}`);
  if (d) d.checked = true;
  savePreset();
}

function loadPreset() {
  const st = state.me.store;
  let p = {};
  try {
    p = JSON.parse(localStorage.getItem(presetKey(st.id)) || '{}') || {};
  } catch {
    p = {};
  }
  el['ev-title'].value = p.title || 'Hot Now';
  el['ev-body'].value = p.body || `Fresh batch at ${st.name}, right now`;
  const d = document.getElementById(`dur-${p.duration_s || 1800}`);
  if (d) d.checked = true;
}

function savePreset() {
  if (!state.me) return;
  const p = {title: el['ev-title'].value, body: el['ev-body'].value, duration_s: duration()};
  localStorage.setItem(presetKey(state.me.store.id), JSON.stringify(p));
}

function duration() {
  const r = document.querySelector('input[name="duration"]:checked');
  return r ? Number(r.value) : 1800;
}

async function onStart(e) {
  e.preventDefault();
  const form = el['start-form'];
  clearErrors(form);
  const title = el['ev-title'].value.trim();
  const body = el['ev-body'].value.trim();
  const missing = [];
  if (!title) missing.push({field: 'title', message: 'Give the notification a title.'});
  if (!body) missing.push({field: 'body', message: 'Write the message people will see.'});
  if (missing.length) {
    showErrors(form, {message: '', fieldErrors: missing});
    return;
  }
  savePreset();
  el.start.disabled = true;
  el.start.textContent = 'Starting…';
  // One Idempotency-Key for this tap: a retry after a lost answer
  // cannot start a second event or notify anyone twice.
  const idem = randomKey();
  const path = `/v1/stores/${seg(state.me.store.id)}/events`;
  try {
    for (let i = 0; ; i++) {
      try {
        const res = await request(state.key, 'POST', path, {
          body: eventBody(title, body),
          headers: {'Idempotency-Key': idem},
        });
        applyEvent(res.data);
        return;
      } catch (err) {
        if (err instanceof NetworkError && i < 2) {
          await new Promise((r) => setTimeout(r, 1000 * (i + 1)));
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.problem.event) {
      applyEvent(err.problem.event);
      say(el['live-note'], 'An event was already live at this store — it is shown here.');
    } else if (err instanceof ApiError && err.status === 401) {
      forgetKey(REVOKED);
    } else if (err instanceof ApiError && err.status === 400) {
      showErrors(form, err);
    } else if (err instanceof NetworkError) {
      showErrors(form, {message: 'No connection to the server — the event was not started. Try again in a moment.'});
    } else {
      showErrors(form, err);
    }
  } finally {
    el.start.disabled = false;
    el.start.textContent = 'Start live event';
  }
}

// eventBody is the start request: the form's text, the chosen
// template's link and languages (while its text is unchanged, so no
// language says something else), and the chosen audience.
function eventBody(title, body) {
  const out = {title, body, duration_s: duration()};
  const t = chosen(state.templates, el['ev-template']);
  if (t) {
    if (t.url) out.url = t.url;
    if (t.localized && t.title === title && t.body === body) out.localized = t.localized;
  }
  const a = chosen(state.audiences, el['ev-audience']);
  if (a) out.audience = {any: a.any, all: a.all, none: a.none};
  return out;
}

function askEnd(on) {
  clearTimeout(confirmTimer);
  el['end-confirm'].hidden = !on;
  el.end.hidden = on;
  say(el['end-error'], '');
  if (on) {
    el['end-no'].focus();
    // An unanswered question goes away by itself.
    confirmTimer = setTimeout(() => askEnd(false), 15000);
  }
}

async function onEnd() {
  el['end-yes'].disabled = true;
  try {
    const res = await request(state.key, 'DELETE', `/v1/stores/${seg(state.me.store.id)}/events/live`);
    askEnd(false);
    applyEvent(res.data);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return forgetKey(REVOKED);
    if (err instanceof ApiError && err.status === 404) {
      // Ended already, by time or elsewhere: show what /v1/me says.
      askEnd(false);
      try {
        applyMe((await request(state.key, 'GET', '/v1/me')).data);
      } catch {
        // The connection loop will catch up.
      }
      return;
    }
    say(el['end-error'], err instanceof NetworkError ? 'No connection — the event is still live. Try again.' : `Could not end it: ${err.message}`);
  } finally {
    el['end-yes'].disabled = false;
  }
}

let signoutArmed = 0;
function onSignOut() {
  // Two taps, so a floury elbow cannot sign the tablet out.
  if (!signoutArmed) {
    el.signout.textContent = 'Tap again to sign out';
    signoutArmed = setTimeout(() => {
      signoutArmed = 0;
      el.signout.textContent = 'Sign out this tablet';
    }, 5000);
    return;
  }
  clearTimeout(signoutArmed);
  signoutArmed = 0;
  el.signout.textContent = 'Sign out this tablet';
  forgetKey('Signed out. Open the tablet link again to sign back in.');
}

init();
