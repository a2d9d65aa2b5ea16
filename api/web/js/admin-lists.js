// admin-lists.js: live and past events, and the delivery log, each with
// its filters and "load more" over next_cursor.

import {seg} from './api.js';
import {$, fmtTime, h, say} from './dom.js';

const PAGE = 100;

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

const num = (n) => h('td', {class: 'num'}, String(n));

export function eventsView(app) {
  const table = pagedTable(app, {
    path: '/v1/events',
    rows: '#events-rows',
    empty: '#events-empty',
    more: '#events-more',
    error: '#events-error',
    row: (ev) => {
      const c = ev.counts;
      const actions = h('td', {class: 'row-actions'},
        h('button', {type: 'button', class: 'btn secondary small', onclick: () => app.go('deliveries', {event_id: ev.id})}, 'Deliveries'));
      if (ev.status === 'live') actions.append(endControl(ev));
      return h('tr', {class: ev.status === 'live' ? 'is-live' : ''},
        h('td', {}, h('code', {}, ev.store_id)),
        h('td', {}, h('span', {class: 'ev-title'}, ev.title), h('span', {class: 'help block'}, ev.body)),
        h('td', {}, ev.status === 'live' ? h('span', {class: 'badge-live'}, 'LIVE') : ev.status),
        h('td', {}, h('span', {class: 'block'}, fmtTime(ev.starts_at)), h('span', {class: 'help block'}, `${ev.status === 'live' ? 'ends' : 'ended'} ${fmtTime(ev.ends_at)}`)),
        num(c.devices_in_fence), num(c.sent), num(c.queued), num(c.suppressed), num(c.failed), num(c.expired),
        actions);
    },
  });

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
      h('td', {}, fmtTime(n.created_at)),
      h('td', {}, h('code', {}, n.store_id)),
      h('td', {}, h('code', {}, n.device_id)),
      h('td', {}, n.provider || '—'),
      h('td', {}, h('span', {class: `status status-${n.status}`}, n.status)),
      h('td', {}, n.reason || ''),
      num(n.attempts),
      h('td', {}, n.sent_at ? fmtTime(n.sent_at) : ''),
      h('td', {class: 'wrap'}, n.last_error || ''),
      h('td', {}, h('code', {class: 'small'}, n.event_id))),
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
