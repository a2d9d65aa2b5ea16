// admin.js is the brand admin page's shell: sign-in with an admin key
// (hza_), the sections, and the one place a refused key signs out. The
// sections live in their own modules and use the public API only.

import {ApiError, request} from './api.js';
import {$, $$, say} from './dom.js';
import {storesView} from './admin-stores.js';
import {eventsView, deliveriesView} from './admin-lists.js';
import {presetsView} from './admin-presets.js';
import {policyView, pushView, settingsView} from './admin-settings.js';

const KEY = 'hotzone.admin.key';
const VIEWS = ['stores', 'events', 'deliveries', 'messages', 'policy', 'push', 'settings'];

// app is what every section gets: the key's calls, and ways to talk to
// the person and to move between sections.
const app = {
  key: null,
  me: null,

  // call is api.request's data; a 401 signs out (the key was revoked or
  // is wrong) and is still thrown so the caller stops.
  async call(method, path, opts) {
    // A new change makes the last "saved" message old news.
    if (method !== 'GET') say($('#flash'), '');
    try {
      return (await request(app.key, method, path, opts)).data;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && app.key) {
        signOut('Your admin key was not accepted any more (revoked?). Sign in again.');
      }
      throw err;
    }
  },

  // list reads a paginated list: up to maxPages pages from cursor on;
  // it answers {items, next}, next "" when the list is done.
  async list(path, {maxPages = 1, limit = 100, cursor = ''} = {}) {
    const items = [];
    let next = cursor;
    for (let i = 0; i < maxPages; i++) {
      const u = new URL(path, location.origin);
      u.searchParams.set('limit', String(limit));
      if (next) u.searchParams.set('cursor', next);
      const page = await app.call('GET', u.pathname + u.search);
      items.push(...page.items);
      next = page.next_cursor;
      if (!next) break;
    }
    return {items, next};
  },

  flash(text, kind = 'ok') {
    const f = $('#flash');
    f.dataset.kind = kind;
    say(f, text);
    clearTimeout(app._flashTimer);
    app._flashTimer = setTimeout(() => say(f, ''), 6000);
  },

  go(view, params) {
    pending = params || null;
    if (location.hash !== `#${view}`) location.hash = view;
    else show(view);
  },
};

let pending = null; // parameters for the next view shown (a filter, say)
const views = {};
let current = '';

function init() {
  views.stores = storesView(app);
  views.events = eventsView(app);
  views.deliveries = deliveriesView(app);
  views.messages = presetsView(app);
  views.policy = policyView(app);
  views.push = pushView(app);
  views.settings = settingsView(app);

  $('#signin-form').addEventListener('submit', onSignIn);
  $('#signout').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => {
    // A key link opened over this page only changes the fragment.
    const linked = keyFromHash();
    if (linked) {
      if (app.key) signOut('');
      signIn(linked, false);
    } else if (app.key && app.me) {
      show(viewFromHash());
    }
  });

  const key = keyFromHash() || localStorage.getItem(KEY);
  if (key) {
    signIn(key, false);
  } else {
    showSignIn('');
  }
}

// keyFromHash takes a key from a link's fragment (/admin#key=hza_…, as
// `hotzone serve --demo` prints it): a fragment never reaches a server,
// and the key leaves the address bar at once. signIn keeps it in this
// browser if it is an admin key.
function keyFromHash() {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(m[1]);
}

function viewFromHash() {
  const v = location.hash.replace(/^#/, '');
  return VIEWS.includes(v) ? v : 'stores';
}

function show(view) {
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  $('#view-signin').hidden = true;
  for (const a of $$('#tabs a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const params = pending;
  pending = null;
  if (current !== view && current && views[current].leave) views[current].leave();
  current = view;
  views[view].enter(params);
}

function showSignIn(message) {
  for (const v of VIEWS) $(`#view-${v}`).hidden = true;
  $('#view-signin').hidden = false;
  $('#tabs').hidden = true;
  $('#signout').hidden = true;
  say($('#brand-name'), '');
  say($('#signin-msg'), message);
  document.title = 'hotzone admin';
}

async function onSignIn(e) {
  e.preventDefault();
  const input = $('#signin-key');
  const key = input.value.trim();
  say($('#signin-error'), '');
  if (!key) {
    say($('#signin-error'), 'Paste the admin key (it starts with hza_).');
    return;
  }
  await signIn(key, true);
}

async function signIn(key, typed) {
  const btn = $('#signin-form button');
  btn.disabled = true;
  try {
    const me = (await request(key, 'GET', '/v1/me')).data;
    if (me.kind !== 'admin') {
      const hint = me.kind === 'manager' ? ' A manager key belongs on the store tablet page (/tablet).' : '';
      const msg = `That is a ${me.kind} key; this page needs the brand's admin key (hza_…).${hint}`;
      localStorage.removeItem(KEY);
      if (typed) say($('#signin-error'), msg);
      else showSignIn(msg);
      return;
    }
    localStorage.setItem(KEY, key);
    $('#signin-key').value = '';
    app.key = key;
    app.me = me;
    say($('#brand-name'), me.brand.name);
    document.title = `${me.brand.name} — hotzone admin`;
    $('#tabs').hidden = false;
    $('#signout').hidden = false;
    show(viewFromHash());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      localStorage.removeItem(KEY);
      const msg = 'That key was not accepted. It may have been revoked.';
      if (typed) say($('#signin-error'), msg);
      else showSignIn(msg);
    } else if (typed) {
      say($('#signin-error'), `Could not sign in: ${err.message}`);
    } else {
      showSignIn(`Could not reach the server: ${err.message}. Reload to try again.`);
    }
  } finally {
    btn.disabled = false;
  }
}

function signOut(message) {
  if (current && views[current].leave) views[current].leave();
  current = '';
  for (const v of Object.values(views)) if (v.reset) v.reset();
  localStorage.removeItem(KEY);
  app.key = null;
  app.me = null;
  showSignIn(message);
}

init();
