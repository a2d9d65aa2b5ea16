// admin-lists.js: live and past events, and the delivery log, each with
// its filters and "load more" over next_cursor.

import {seg} from './api.js';
import {$, h, say, timeEl} from './dom.js';

const PAGE = 100;

// What the log's codes mean, in words; the code stays in the tooltip
// (and is what the filters send).
const STATUS_WORDS = {
  queued: 'Queued',
  sent: 'Sent',
  dry_run: 'Dry run',
  suppressed: 'Suppressed',
  failed: 'Failed',
  expired: 'Expired',
  invalid_token: 'Invalid token',
  live: 'Live',
  ended: 'Ended',
};
const REASON_WORDS = {
  opted_out: 'Opted out',
  no_token: 'No push token',
  quiet_hours: 'Quiet hours',
  daily_cap: 'Daily cap reached',
  min_interval: 'Too soon after the last one',
  low_accuracy: 'Position too inaccurate',
  stale: 'Position too old',
  already_notified: 'Already notified',
  audience: 'Not in the audience',
  holdout: 'Held back to measure lift',
};

// word is a code in words, the code itself in the tooltip; an unknown
// code shows as it is.
function word(words, code, cls) {
  if (!code) return '';
  return h('span', {class: cls, title: code}, words[code] || code);
}

// pagedTable keeps one filtered list: load() starts over, more() goes on.
function pagedTable(app, {path, rows, empty, more, error, row}) {
  let next = '';
  let query = '';
  async function fetchPage(fresh) {
    say($(error), '');
    try {
      const res = await app.list(path + query, {limit: PAGE, cursor: fresh ? '' : next});
      if (fresh) $(rows).replaceChildren();
      $(rows).append(...res.items.map(row));
      next = res.next;
      $(more).hidden = !next;
      $(empty).hidden = $(rows).childElementCount > 0;
    } catch (err) {
      say($(error), `Could not load: ${err.message}`);
    }
  }
  $(more).addEventListener('click', () => fetchPage(false));
  return {
    load(params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
      query = q.toString() ? `?${q}` : '';
      return fetchPage(true);
    },
    clear() {
      $(rows).replaceChildren();
      next = '';
    },
  };
}

// td is a table cell; label names it where the table shows as cards
// (a narrow screen), and a wide cell takes a card's whole row.
const td = (label, props, ...children) => h('td', {'data-label': label, ...props}, ...children);
const num = (label, n) => td(label, {class: 'num'}, String(n));

export function eventsView(app) {
  const table = pagedTable(app, {
    path: '/v1/events',
    rows: '#events-rows',
    empty: '#events-empty',
    more: '#events-more',
    error: '#events-error',
    row: (ev) => {
      const c = ev.counts;
      const report = h('div', {class: 'report', 'data-event': ev.id, hidden: true});
      const actions = h('div', {class: 'row-actions'},
        h('button', {type: 'button', class: 'btn secondary small', onclick: () => app.go('deliveries', {event_id: ev.id})}, 'Deliveries'),
        h('button', {type: 'button', class: 'btn secondary small report-btn', onclick: () => showReport(ev, report)}, 'Report'));
      if (ev.status === 'live') actions.append(endControl(ev));
      return h('tr', {class: ev.status === 'live' ? 'is-live' : ''},
        td('Store', {class: 'wrap'}, h('code', {}, ev.store_id)),
        td('Event', {class: 'wide wrap ev-text'}, h('span', {class: 'ev-title'}, ev.title), h('span', {class: 'help block'}, ev.body)),
        td('Status', {}, ev.status === 'live' ? h('span', {class: 'badge-live', title: 'live'}, 'LIVE') : word(STATUS_WORDS, ev.status, '')),
        td('Time', {class: 'wide'}, h('span', {class: 'block'}, timeEl(ev.starts_at)),
          h('span', {class: 'help block'}, timeEl(ev.ends_at, ev.status === 'live' ? 'ends ' : 'ended '))),
        num('In range', c.devices_in_fence), num('Sent', c.sent), num('Queued', c.queued),
        num('Suppressed', c.suppressed), num('Failed', c.failed), num('Expired', c.expired), num('Opened', c.opened || 0),
        td('', {class: 'wide'}, actions, report));
    },
  });

  // showReport reads what the event brought in into its row: the groups,
  // their visits and rates, and the lift with its interval.
  async function showReport(ev, box) {
    box.hidden = false;
    box.replaceChildren(h('p', {class: 'help'}, 'Loading the report…'));
    try {
      box.replaceChildren(...reportLines(await app.call('GET', `/v1/events/${seg(ev.id)}/report`)));
    } catch (err) {
      box.replaceChildren(h('p', {class: 'field-error'}, `Could not load the report: ${err.message}`));
    }
  }

  // endControl ends a live event after one in-page confirmation.
  function endControl(ev) {
    const box = h('span', {class: 'inline-confirm', hidden: true},
      h('button', {type: 'button', class: 'btn danger small', onclick: async () => {
        try {
          await app.call('DELETE', `/v1/stores/${seg(ev.store_id)}/events/live`);
          app.flash(`Ended “${ev.title}” at ${ev.store_id}.`);
        } catch (err) {
          app.flash(`Could not end it: ${err.message}`, 'warn');
        }
        load();
      }}, 'Yes, end it'),
      h('button', {type: 'button', class: 'btn secondary small', onclick: () => {
        box.hidden = true;
        ask.hidden = false;
      }}, 'No'));
    const ask = h('button', {type: 'button', class: 'btn secondary small', onclick: () => {
      ask.hidden = true;
      box.hidden = false;
    }}, 'End…');
    return h('span', {}, ask, box);
  }

  function load() {
    return table.load({status: $('#ev-status').value, store_id: $('#ev-store').value.trim()});
  }

  $('#events-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  return {
    enter(params) {
      if (params && params.store_id !== undefined) $('#ev-store').value = params.store_id;
      load();
    },
    reset() {
      table.clear();
    },
  };
}

export function deliveriesView(app) {
  const table = pagedTable(app, {
    path: '/v1/notifications',
    rows: '#deliveries-rows',
    empty: '#deliveries-empty',
    more: '#deliveries-more',
    error: '#deliveries-error',
    row: (n) => h('tr', {},
      td('Created', {}, timeEl(n.created_at)),
      td('Store', {class: 'wrap'}, h('code', {}, n.store_id)),
      td('Device', {class: 'wrap'}, h('code', {}, n.device_id)),
      td('Provider', {}, {apns: 'APNs', fcm: 'FCM'}[n.provider] || n.provider || '—'),
      td('Status', {}, word(STATUS_WORDS, n.status, `status status-${n.status}`)),
      td('Reason', {}, word(REASON_WORDS, n.reason, '')),
      num('Attempts', n.attempts),
      td('Sent', {}, n.sent_at ? timeEl(n.sent_at) : ''),
      td('Last error', {class: 'wrap wide'}, n.last_error || ''),
      td('Event', {class: 'wrap wide'}, h('code', {class: 'small'}, n.event_id))),
  });
  function load() {
    return table.load({event_id: $('#dl-event').value.trim(), device_id: $('#dl-device').value.trim(), status: $('#dl-status').value});
  }
  $('#deliveries-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  return {
    enter(params) {
      if (params) {
        $('#dl-event').value = params.event_id || '';
        $('#dl-device').value = params.device_id || '';
        $('#dl-status').value = params.status || '';
      }
      load();
    },
    reset() {
      table.clear();
      for (const id of ['#dl-event', '#dl-device']) $(id).value = '';
      $('#dl-status').value = '';
    },
  };
}

const pct = (x) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
const pts = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)} pts`;

// reportLines is an event report in words.
function reportLines(r) {
  const hours = Math.round((r.attribution_s / 3600) * 10) / 10;
  const lines = [
    h('p', {}, `Notified ${r.notified}, held back ${r.held_back}, opened ${r.opened}.`),
    h('p', {}, `Visits within ${hours} h: ${r.visits.notified} notified (${pct(r.visit_rate.notified)}), ` +
      `${r.visits.held_back} held back (${pct(r.visit_rate.held_back)}); ` +
      `already there: ${r.already_there.notified} and ${r.already_there.held_back}.`),
  ];
  if (r.lift) {
    const ratio = r.lift.ratio === null ? '' : `, ${r.lift.ratio.toFixed(2)}× the held-back rate`;
    lines.push(h('p', {class: 'lift'}, `Lift ${pts(r.lift.difference)}${ratio} ` +
      `(95% interval ${pts(r.lift.ci95[0])} to ${pts(r.lift.ci95[1])}).`));
  } else {
    lines.push(h('p', {class: 'lift help'}, 'Too few devices in a group to tell the lift (30 needed in each).'));
  }
  return lines;
}
