// admin-settings.js: the brand's policy, its push credentials
// (write-only secrets) and this browser's map settings.

import {ApiError} from './api.js';
import {$, clearErrors, h, say, showErrors} from './dom.js';
import {DEFAULT_TILES, getTiles, setTiles} from './tiles.js';

export function policyView(app) {
  const form = $('#policy-form');
  const fields = {
    min_interval_s: '#p-min-interval',
    daily_cap: '#p-daily-cap',
    max_accuracy_m: '#p-max-accuracy',
    presence_ttl_s: '#p-presence-ttl',
    max_ping_age_s: '#p-max-age',
    holdout_pct: '#p-holdout',
    retention_days: '#p-retention',
  };

  function fill(p) {
    for (const [k, sel] of Object.entries(fields)) $(sel).value = String(p[k]);
    const q = p.quiet_hours;
    $('#p-quiet-on').checked = !!q;
    $('#p-quiet-start').value = q ? q.start : '21:00';
    $('#p-quiet-end').value = q ? q.end : '08:00';
    quietChanged();
    intervalHelp();
  }

  function quietChanged() {
    const on = $('#p-quiet-on').checked;
    $('#p-quiet-start').disabled = !on;
    $('#p-quiet-end').disabled = !on;
  }

  function intervalHelp() {
    const s = Number($('#p-min-interval').value);
    let text = '';
    if (Number.isFinite(s) && s > 0) {
      const hrs = Math.floor(s / 3600);
      const mins = Math.round((s % 3600) / 60);
      text = `= ${hrs ? `${hrs} h ` : ''}${mins ? `${mins} min` : ''}`.trim();
    }
    $('#p-min-interval-help').textContent = text;
  }

  async function load() {
    clearErrors(form);
    try {
      fill(await app.call('GET', '/v1/policy'));
    } catch (err) {
      showErrors(form, err);
    }
  }

  async function save(e) {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    for (const [k, sel] of Object.entries(fields)) {
      const v = $(sel).value.trim();
      if (v !== '') body[k] = Number(v);
    }
    body.quiet_hours = $('#p-quiet-on').checked ? {start: $('#p-quiet-start').value, end: $('#p-quiet-end').value} : null;
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      fill(await app.call('PATCH', '/v1/policy', {body}));
      app.flash('Policy saved.');
    } catch (err) {
      showErrors(form, err);
    } finally {
      btn.disabled = false;
    }
  }

  form.addEventListener('submit', save);
  $('#p-quiet-on').addEventListener('change', quietChanged);
  $('#p-min-interval').addEventListener('input', intervalHelp);
  return {enter: load};
}

export function pushView(app) {
  const providers = {
    apns: {
      form: $('#apns-form'),
      name: 'APNs',
      shown: [['key_id', 'Key id'], ['team_id', 'Team id'], ['topic', 'Topic'], ['environment', 'Environment']],
      body: () => ({
        key_p8: $('#apns-key').value,
        key_id: $('#apns-key-id').value.trim(),
        team_id: $('#apns-team-id').value.trim(),
        topic: $('#apns-topic').value.trim(),
        environment: $('#apns-env').value,
      }),
    },
    fcm: {
      form: $('#fcm-form'),
      name: 'FCM',
      shown: [['project_id', 'Project'], ['client_email', 'Service account']],
      body: () => ({service_account_json: $('#fcm-json').value}),
    },
  };

  function renderStatus(p, st) {
    const dl = $(`#${p}-status`);
    const row = (k, v, cls) => [h('dt', {}, k), h('dd', {class: cls || null}, v)];
    if (!st || !st.configured) {
      dl.replaceChildren(...row('Status', 'not configured — dry-run'));
      return;
    }
    const items = [...row('Status', st.status === 'ok' ? 'ok' : 'broken', st.status === 'ok' ? 'ok-text' : 'field-error')];
    for (const [k, label] of providers[p].shown) items.push(...row(label, st[k] || '—'));
    if (st.error) items.push(...row('Provider said', st.error, 'field-error'));
    dl.replaceChildren(...items);
  }

  async function load() {
    try {
      const st = await app.call('GET', '/v1/push');
      renderStatus('apns', st.apns);
      renderStatus('fcm', st.fcm);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) app.flash(`Could not read the push status: ${err.message}`, 'warn');
    }
  }

  for (const [p, cfg] of Object.entries(providers)) {
    cfg.form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(cfg.form);
      const btn = cfg.form.querySelector('button[type=submit]');
      btn.disabled = true;
      try {
        await app.call('PUT', `/v1/push/${p}`, {body: cfg.body()});
        // Secrets are write-only: nothing typed stays on the page.
        cfg.form.reset();
        app.flash(`${cfg.name} credentials saved.`);
        load();
      } catch (err) {
        showErrors(cfg.form, err);
      } finally {
        btn.disabled = false;
      }
    });
    const confirm = $(`#${p}-remove-confirm`);
    const ask = $(`#${p}-remove`);
    ask.addEventListener('click', () => {
      confirm.hidden = false;
      ask.hidden = true;
      $(`#${p}-remove-no`).focus();
    });
    $(`#${p}-remove-no`).addEventListener('click', () => {
      confirm.hidden = true;
      ask.hidden = false;
    });
    $(`#${p}-remove-yes`).addEventListener('click', async () => {
      try {
        await app.call('DELETE', `/v1/push/${p}`);
        app.flash(`${cfg.name} credentials removed.`);
      } catch (err) {
        app.flash(`Could not remove them: ${err.message}`, 'warn');
      }
      confirm.hidden = true;
      ask.hidden = false;
      load();
    });
  }
  const fileInto = (input, target) => $(input).addEventListener('change', async () => {
    const f = $(input).files[0];
    if (f) $(target).value = await f.text();
  });
  fileInto('#apns-key-file', '#apns-key');
  fileInto('#fcm-file', '#fcm-json');

  return {
    enter: load,
    reset() {
      for (const cfg of Object.values(providers)) cfg.form.reset();
    },
  };
}

export function settingsView(app) {
  const form = $('#settings-form');
  function fill(t) {
    $('#s-tiles').value = t.url;
    $('#s-attribution').value = t.attribution;
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const url = $('#s-tiles').value.trim();
    if (url && !/^https:\/\/[^/]+\//.test(url) && !url.startsWith('/')) {
      app.flash('The tile URL must start with https:// (or be a path on this server), or be empty.', 'warn');
      return;
    }
    setTiles({url, attribution: $('#s-attribution').value.trim()});
    app.flash(url ? 'Map tiles saved.' : 'Map tiles off: fences on a plain background.');
  });
  $('#s-default').addEventListener('click', () => fill(DEFAULT_TILES));
  return {enter: () => fill(getTiles())};
}
