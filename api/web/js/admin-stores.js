// admin-stores.js: the store list, the fence map and editor, tablet
// links (manager keys) and GeoJSON import/export.

import {ApiError, seg} from './api.js';
import {$, clearErrors, fmtTime, h, say, showErrors} from './dom.js';
import {qrSVG} from './qr.js';
import {DEFAULT_TILES, escapeHTML, getTiles} from './tiles.js';

const L = window.L;

const COLOR = '#1d4ed8';
const LIVE_COLOR = '#b91c1c';
const EDIT_COLOR = '#c2410c';
const AUTO_PAGES = 5; // pages of 1000 stores read without asking
const LIST_MAX = 500; // rows drawn at once; search narrows the rest
const IMPORT_LIST_MAX = 300; // features listed in full; past that only bad ones
const LIVE_REFRESH_MS = 30000;

export function storesView(app) {
  const s = {
    stores: [],
    byID: new Map(),
    next: '',
    tag: '',
    live: new Map(), // store id -> live event
    loaded: false,
    selected: null, // store id being edited, or '' for a new store
    map: null,
    tiles: null,
    fences: null, // L.LayerGroup of every store's fence
    fenceByID: new Map(),
    edit: null, // L.LayerGroup of the fence being edited
    centre: null, // {lat, lon} of the circle being edited
    marker: null,
    circle: null,
    timer: 0,
    importText: null,
    visitKept: null, // a visit area set through the API that the form cannot show, kept on save
  };

  // --- map -----------------------------------------------------------

  function ensureMap() {
    if (s.map) {
      s.map.invalidateSize();
      return;
    }
    s.map = L.map('map', {worldCopyJump: true, minZoom: 1});
    s.map.setView([20, 0], 2);
    L.control.scale({imperial: false}).addTo(s.map);
    s.fences = L.layerGroup().addTo(s.map);
    s.edit = L.layerGroup().addTo(s.map);
    s.renderer = L.canvas({padding: 0.5});
    s.map.on('click', (e) => {
      if (editingCircle()) setCentre(e.latlng.wrap(), true);
    });
    applyTiles();
    window.addEventListener('hotzone:tiles', applyTiles);
    new ResizeObserver(() => s.map.invalidateSize()).observe($('#map'));
  }

  function applyTiles() {
    if (s.tiles) s.tiles.remove();
    s.tiles = null;
    const t = getTiles();
    const note = $('#map-note');
    if (!t.url) {
      say(note, 'No map tiles: fences are drawn on a plain background. Set a tile URL under Settings.');
      return;
    }
    say(note, '');
    const official = t.url === DEFAULT_TILES.url && t.attribution === DEFAULT_TILES.attribution;
    const attribution = official
      ? '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
      : escapeHTML(t.attribution);
    s.tiles = L.tileLayer(t.url, {attribution, maxZoom: 19});
    let warned = false;
    s.tiles.on('tileerror', () => {
      if (warned) return;
      warned = true;
      say(note, 'Map tiles could not be loaded; fences are still shown. Check the tile URL under Settings.');
    });
    s.tiles.addTo(s.map);
  }

  function fenceLayer(st, opts) {
    const f = st.fence;
    if (f.circle) return L.circle([f.circle.lat, f.circle.lon], {radius: f.circle.radius_m, ...opts});
    return L.geoJSON(f.polygon, {...opts, style: () => opts});
  }

  function drawFences() {
    s.fences.clearLayers();
    s.fenceByID.clear();
    for (const st of s.stores) {
      // The store being edited is drawn by drawEdit instead.
      if (s.selected === st.id) continue;
      const live = s.live.has(st.id);
      const layer = fenceLayer(st, {
        renderer: s.renderer,
        color: live ? LIVE_COLOR : COLOR,
        weight: 2,
        fillOpacity: live ? 0.25 : 0.12,
      });
      layer.bindTooltip(h('span', {}, st.name, live ? ' — LIVE' : ''), {sticky: true});
      layer.on('click', (e) => {
        if (editingCircle()) return; // the map's click moves the centre
        L.DomEvent.stopPropagation(e);
        select(st.id, false);
      });
      layer.addTo(s.fences);
      s.fenceByID.set(st.id, layer);
    }
  }

  function bboxBounds(b) {
    let [w, so, e, n] = b;
    if (w > e) e += 360; // across the antimeridian
    return L.latLngBounds([so, w], [n, e]);
  }

  // fitTo moves the map to bounds. Leaflet drops a new view asked for
  // while a zoom animation runs, so such a request waits for its end.
  function fitTo(bounds, maxZoom) {
    const go = () => s.map.fitBounds(bounds, {maxZoom});
    if (s.map._animatingZoom) s.map.once('zoomend', go);
    else go();
  }

  function fitAll() {
    if (!s.stores.length) return;
    let b = null;
    for (const st of s.stores) b = b ? b.extend(bboxBounds(st.bbox)) : bboxBounds(st.bbox);
    fitTo(b.pad(0.1), 15);
  }

  // --- list ----------------------------------------------------------

  async function loadStores(more) {
    const err = $('#store-count');
    try {
      const path = s.tag ? `/v1/stores?tag=${encodeURIComponent(s.tag)}` : '/v1/stores';
      const res = await app.list(path, {maxPages: AUTO_PAGES, limit: 1000, cursor: more ? s.next : ''});
      if (!more) s.stores = [];
      s.stores.push(...res.items);
      s.next = res.next;
      s.byID = new Map(s.stores.map((st) => [st.id, st]));
      s.loaded = true;
      renderList();
      drawFences();
      if (!more && s.selected === null) fitAll();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) say(err, `Could not load the stores: ${e.message}`);
    }
  }

  async function loadLive() {
    try {
      const res = await app.list('/v1/events?status=live', {maxPages: 20, limit: 1000});
      s.live = new Map(res.items.map((ev) => [ev.store_id, ev]));
      renderList();
      drawFences();
      renderEditorLive();
    } catch {
      // The list still works without the live marks; the next refresh retries.
    }
  }

  function fenceText(st) {
    if (st.fence.circle) return `circle ${Math.round(st.fence.circle.radius_m)} m`;
    return st.fence.polygon && st.fence.polygon.type === 'MultiPolygon' ? 'multipolygon' : 'polygon';
  }

  function renderList() {
    const q = $('#store-search').value.trim().toLowerCase();
    const shown = q ? s.stores.filter((st) => st.id.toLowerCase().includes(q) || st.name.toLowerCase().includes(q)) : s.stores;
    const ul = $('#store-list');
    ul.replaceChildren(
      ...shown.slice(0, LIST_MAX).map((st) => {
        const live = s.live.has(st.id);
        return h('li', {},
          h('button', {
            type: 'button',
            class: 'store-item' + (live ? ' is-live' : ''),
            'aria-current': s.selected === st.id ? 'true' : null,
            dataset: {id: st.id},
            onclick: () => select(st.id, true),
          },
          h('span', {class: 'si-top'}, h('span', {class: 'si-name'}, st.name), live ? h('span', {class: 'badge-live'}, 'LIVE') : null),
          h('span', {class: 'si-meta'}, h('code', {}, st.id), ` · ${fenceText(st)}`, st.tags.length ? ` · ${st.tags.join(', ')}` : '')));
      }));
    let text = `${shown.length} of ${s.stores.length}${s.next ? '+' : ''} stores`;
    if (s.tag) text += ` tagged “${s.tag}”`;
    if (s.live.size) text += ` · ${s.live.size} live`;
    if (shown.length > LIST_MAX) text += ` · showing the first ${LIST_MAX}; search to narrow`;
    say($('#store-count'), text);
    $('#stores-more').hidden = !s.next;
  }

  // --- editor --------------------------------------------------------

  const form = $('#store-form');

  function fenceKind() {
    return $('#fk-polygon').checked ? 'polygon' : 'circle';
  }

  function editingCircle() {
    return s.selected !== null && fenceKind() === 'circle';
  }

  function openEditor() {
    $('#import').hidden = true;
    $('#editor').hidden = false;
    clearErrors(form);
    askDelete(false);
    // Map on top, the form's start below it: both in view.
    const top = $('.map-wrap').getBoundingClientRect().top + window.scrollY - 8;
    if (Math.abs(window.scrollY - top) > 4) window.scrollTo({top});
  }

  function newStore() {
    s.selected = '';
    openEditor();
    $('#editor-title').textContent = 'New store';
    $('#f-id').readOnly = false;
    $('#f-id-help').hidden = false;
    $('#f-id-fixed').hidden = true;
    $('#f-id').value = '';
    $('#f-name').value = '';
    $('#f-tz').value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    $('#f-tags').value = '';
    $('#fk-circle').checked = true;
    $('#f-geojson').value = '';
    $('#f-radius').value = '200';
    $('#f-visit').value = '';
    s.visitKept = null;
    $('#f-radius-range').value = '200';
    s.centre = null;
    $('#f-lat').value = '';
    $('#f-lon').value = '';
    $('#delete-store').hidden = true;
    $('#keys').hidden = true;
    $('#editor-live').hidden = true;
    kindChanged();
    renderList();
    drawFences();
    $('#f-id').focus();
  }

  function select(id, fly) {
    const st = s.byID.get(id);
    if (!st) return;
    s.selected = id;
    openEditor();
    $('#editor-title').textContent = st.name;
    $('#f-id').value = st.id;
    $('#f-id').readOnly = true;
    // Read-only, it looks it (admin.css) and says why.
    $('#f-id-help').hidden = true;
    $('#f-id-fixed').hidden = false;
    $('#f-name').value = st.name;
    $('#f-tz').value = st.timezone;
    $('#f-tags').value = st.tags.join(', ');
    // A visit area the form can show (a circle at the fence's centre) is
    // edited here; any other, set through the API, is kept as it is.
    const v = st.visit && st.visit.circle;
    const centred = v && st.fence.circle && v.lat === st.fence.circle.lat && v.lon === st.fence.circle.lon;
    $('#f-visit').value = centred ? String(v.radius_m) : '';
    s.visitKept = st.visit && !centred ? st.visit : null;
    if (st.fence.circle) {
      $('#fk-circle').checked = true;
      const c = st.fence.circle;
      setRadius(c.radius_m);
      s.centre = null;
      setCentre(L.latLng(c.lat, c.lon), false);
      $('#f-geojson').value = '';
    } else {
      $('#fk-polygon').checked = true;
      $('#f-geojson').value = JSON.stringify(st.fence.polygon, null, 1);
      s.centre = null;
    }
    $('#delete-store').hidden = false;
    $('#keys').hidden = false;
    $('#new-key').hidden = true;
    say($('#key-error'), '');
    renderEditorLive();
    kindChanged();
    renderList();
    drawFences();
    if (fly) fitTo(bboxBounds(st.bbox).pad(0.3), 16);
    loadKeys(id);
  }

  function closeEditor() {
    s.selected = null;
    $('#editor').hidden = true;
    s.edit.clearLayers();
    s.marker = null;
    s.circle = null;
    renderList();
    drawFences();
  }

  function renderEditorLive() {
    const on = s.selected && s.live.has(s.selected);
    $('#editor-live').hidden = !on;
  }

  function kindChanged() {
    const circle = fenceKind() === 'circle';
    $('#circle-fields').hidden = !circle;
    $('#polygon-fields').hidden = circle;
    $('#map').classList.toggle('placing', circle && s.selected !== null);
    drawEdit();
  }

  function setRadius(r) {
    $('#f-radius').value = String(Math.round(r));
    $('#f-radius-range').value = String(Math.min(Math.max(r, 10), 5000));
    drawEdit();
  }

  function setCentre(ll, fromMap) {
    s.centre = {lat: round6(ll.lat), lon: round6(ll.lng)};
    $('#f-lat').value = String(s.centre.lat);
    $('#f-lon').value = String(s.centre.lon);
    drawEdit();
    if (fromMap) {
      say($('#f-lat-error'), '');
      say($('#f-lon-error'), '');
    }
  }

  function round6(x) {
    return Math.round(x * 1e6) / 1e6;
  }

  // drawEdit shows the fence being edited, dashed, over the others.
  function drawEdit() {
    if (!s.edit) return;
    s.edit.clearLayers();
    s.marker = null;
    s.circle = null;
    if (s.selected === null) return;
    if (fenceKind() === 'circle') {
      if (!s.centre) return;
      const r = Number($('#f-radius').value) || 0;
      const ll = [s.centre.lat, s.centre.lon];
      s.circle = L.circle(ll, {radius: r, color: EDIT_COLOR, weight: 3, dashArray: '6 6', fillOpacity: 0.15, interactive: false}).addTo(s.edit);
      s.marker = L.marker(ll, {draggable: true, autoPan: true, title: 'Fence centre', alt: 'Fence centre'}).addTo(s.edit);
      s.marker.on('drag', (e) => {
        s.circle.setLatLng(e.target.getLatLng());
      });
      s.marker.on('dragend', (e) => setCentre(e.target.getLatLng().wrap(), true));
    } else {
      const g = readPolygon(false);
      if (g) {
        try {
          L.geoJSON(g, {style: () => ({color: EDIT_COLOR, weight: 3, dashArray: '6 6', fillOpacity: 0.15}), interactive: false}).addTo(s.edit);
        } catch {
          // Not drawable; the server says what is wrong on save.
        }
      }
    }
  }

  // readPolygon takes the textarea's GeoJSON: a geometry, a Feature, or
  // a FeatureCollection of one feature.
  function readPolygon(report) {
    const text = $('#f-geojson').value.trim();
    const fail = (msg) => {
      if (report) say($('#f-geojson-error'), msg);
      return null;
    };
    if (!text) return fail('Paste a GeoJSON Polygon or MultiPolygon, or upload a file.');
    let g;
    try {
      g = JSON.parse(text);
    } catch (e) {
      return fail(`Not valid JSON: ${e.message}`);
    }
    if (g && g.type === 'FeatureCollection') {
      if (!Array.isArray(g.features) || g.features.length !== 1) return fail('A FeatureCollection here must hold exactly one feature.');
      g = g.features[0];
    }
    if (g && g.type === 'Feature') g = g.geometry;
    if (!g || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) return fail('The geometry must be a Polygon or a MultiPolygon.');
    return g;
  }

  async function save(e) {
    e.preventDefault();
    clearErrors(form);
    const id = $('#f-id').value.trim();
    const local = [];
    if (!id) local.push({field: 'store_id', message: 'Give the store an id.'});
    else if (s.selected === '' && s.byID.has(id)) local.push({field: 'store_id', message: 'A store with this id exists; select it in the list to edit it.'});
    let fence;
    if (fenceKind() === 'circle') {
      const lat = $('#f-lat').value;
      const lon = $('#f-lon').value;
      if (lat === '' || lon === '') local.push({field: 'fence.circle.lat', message: 'Click the map to place the centre, or type it.'});
      fence = {circle: {lat: Number(lat), lon: Number(lon), radius_m: Number($('#f-radius').value)}};
    } else {
      const g = readPolygon(true);
      if (!g) {
        showErrors(form, {message: '', fieldErrors: local.concat([{field: 'fence.polygon', message: $('#f-geojson-error').textContent}])});
        return;
      }
      fence = {polygon: g};
    }
    if (local.length) {
      showErrors(form, {message: '', fieldErrors: local});
      return;
    }
    const walkIn = $('#f-visit').value.trim();
    let visit = s.visitKept || null;
    if (fence.circle && walkIn !== '') visit = {circle: {lat: fence.circle.lat, lon: fence.circle.lon, radius_m: Number(walkIn)}};
    const body = {
      name: $('#f-name').value.trim(),
      timezone: $('#f-tz').value.trim() || 'UTC',
      tags: $('#f-tags').value.split(',').map((t) => t.trim()).filter(Boolean),
      fence,
      visit,
    };
    const btn = $('#save-store');
    btn.disabled = true;
    try {
      const st = await app.call('PUT', `/v1/stores/${seg(id)}`, {body});
      const i = s.stores.findIndex((x) => x.id === st.id);
      if (i >= 0) s.stores[i] = st;
      else s.stores.push(st);
      s.byID.set(st.id, st);
      app.flash(`Saved ${st.name}.`);
      select(st.id, false);
    } catch (err) {
      showErrors(form, err);
    } finally {
      btn.disabled = false;
    }
  }

  function askDelete(on) {
    $('#delete-confirm').hidden = !on;
    $('#delete-store').hidden = on || s.selected === '' || s.selected === null;
    if (on) $('#delete-no').focus();
  }

  async function remove() {
    const id = s.selected;
    try {
      await app.call('DELETE', `/v1/stores/${seg(id)}`);
      s.stores = s.stores.filter((x) => x.id !== id);
      s.byID.delete(id);
      s.live.delete(id);
      app.flash(`Deleted store ${id}.`);
      closeEditor();
    } catch (err) {
      showErrors(form, err);
    }
  }

  // --- tablet links ----------------------------------------------------

  async function loadKeys(id) {
    const ul = $('#key-list');
    ul.replaceChildren();
    try {
      const res = await app.call('GET', `/v1/stores/${seg(id)}/manager-keys`);
      if (s.selected !== id) return;
      if (!res.items.length) {
        ul.append(h('li', {class: 'help'}, 'No tablet links yet.'));
        return;
      }
      ul.append(...res.items.map((k) => keyRow(id, k)));
    } catch (err) {
      ul.append(h('li', {class: 'field-error'}, `Could not load the tablet links: ${err.message}`));
    }
  }

  function keyRow(storeID, k) {
    const confirm = h('span', {class: 'inline-confirm', hidden: true},
      h('span', {}, 'Revoke? The tablet stops working at once.'),
      h('button', {type: 'button', class: 'btn danger small', onclick: () => revoke(storeID, k.id)}, 'Yes, revoke'),
      h('button', {type: 'button', class: 'btn secondary small', onclick: () => {
        confirm.hidden = true;
        ask.hidden = false;
      }}, 'No'));
    const ask = h('button', {type: 'button', class: 'btn secondary small', onclick: () => {
      ask.hidden = true;
      confirm.hidden = false;
    }}, 'Revoke…');
    return h('li', {class: 'key-row'},
      h('span', {class: 'key-label'}, k.label || '(no label)'),
      h('span', {class: 'help'}, `created ${fmtTime(k.created_at)} · ${k.last_used_at ? `last used ${fmtTime(k.last_used_at)}` : 'never used'}`),
      h('span', {class: 'key-actions'}, ask, confirm));
  }

  async function revoke(storeID, keyID) {
    try {
      await app.call('DELETE', `/v1/manager-keys/${seg(keyID)}`);
      app.flash('Tablet link revoked.');
    } catch (err) {
      say($('#key-error'), `Could not revoke: ${err.message}`);
    }
    loadKeys(storeID);
  }

  async function createKey(e) {
    e.preventDefault();
    const id = s.selected;
    const label = $('#key-label').value.trim();
    say($('#key-error'), '');
    try {
      const k = await app.call('POST', `/v1/stores/${seg(id)}/manager-keys`, label ? {body: {label}} : {});
      const url = location.origin + k.tablet_url;
      $('#new-key-url').value = url;
      $('#qr').replaceChildren(qrSVG(url, `QR code of the tablet link for ${s.byID.get(id)?.name || id}`));
      $('#new-key').hidden = false;
      $('#key-label').value = '';
      loadKeys(id);
    } catch (err) {
      say($('#key-error'), err instanceof ApiError && err.fieldErrors.length ? err.fieldErrors.map((f) => f.message).join(' ') : `Could not create the link: ${err.message}`);
    }
  }

  async function copyURL() {
    const input = $('#new-key-url');
    try {
      await navigator.clipboard.writeText(input.value);
      app.flash('Tablet link copied.');
    } catch {
      input.select();
      app.flash('Select and copy the link by hand (Ctrl+C).', 'warn');
    }
  }

  // --- import and export -------------------------------------------------

  function openImport() {
    if (s.selected !== null) closeEditor();
    $('#import').hidden = false;
    $('#import-text').focus();
  }

  async function importFile() {
    const file = $('#import-file').files[0];
    if (!file) return;
    const text = await file.text();
    s.importText = text;
    // A big file stays out of the textarea; it would only slow the page.
    $('#import-text').value = text.length <= 200000 ? text : '';
    $('#import-text').placeholder = text.length <= 200000 ? '' : `${file.name}: ${(text.length / 1e6).toFixed(1)} MB loaded`;
  }

  async function doImport(e) {
    e.preventDefault();
    const text = s.importText ?? $('#import-text').value;
    const errEl = $('#import-error');
    say(errEl, '');
    say($('#import-result'), '');
    $('#import-features').hidden = true;
    if (!text.trim()) {
      say(errEl, 'Choose a GeoJSON file or paste one.');
      return;
    }
    const btn = $('#import-form button[type=submit]');
    btn.disabled = true;
    try {
      const res = await app.call('POST', '/v1/stores/import', {body: text});
      say($('#import-result'), `Imported: ${res.created} created, ${res.updated} updated.`);
      app.flash(`Imported ${res.created + res.updated} stores.`);
      await loadStores(false);
      fitAll();
    } catch (err) {
      if (err instanceof ApiError && err.status === 413) say(errEl, 'The file is larger than the 32 MiB the server accepts.');
      else if (err instanceof ApiError && err.status === 400) showImportErrors(text, err);
      else say(errEl, `Could not import: ${err.message}`);
    } finally {
      btn.disabled = false;
    }
  }

  // showImportErrors lists the file's features with each error next to
  // the feature it names (features[3].geometry → feature 3).
  function showImportErrors(text, err) {
    let features = [];
    try {
      const fc = JSON.parse(text);
      if (fc && Array.isArray(fc.features)) features = fc.features;
    } catch {
      // Not JSON: only the server's message can help.
    }
    const byIndex = new Map();
    const other = [];
    for (const fe of err.fieldErrors) {
      const m = /^features\[(\d+)\]\.?(.*)$/.exec(fe.field);
      if (!m) {
        other.push(`${fe.field}: ${fe.message}`);
        continue;
      }
      const i = Number(m[1]);
      if (!byIndex.has(i)) byIndex.set(i, []);
      byIndex.get(i).push({field: m[2], message: fe.message});
    }
    const bad = byIndex.size;
    const summary = bad
      ? `${bad} of ${features.length || '?'} features ${bad === 1 ? 'has' : 'have'} errors; nothing was imported.`
      : err.message;
    say($('#import-error'), [summary, ...other].join(' '));
    if (!bad) return;
    const count = Math.max(features.length, ...[...byIndex.keys()].map((i) => i + 1));
    const indexes = [];
    for (let i = 0; i < count; i++) if (count <= IMPORT_LIST_MAX || byIndex.has(i)) indexes.push(i);
    const ol = $('#import-features');
    ol.replaceChildren(...indexes.map((i) => {
      const f = features[i];
      const p = (f && f.properties) || {};
      const errs = byIndex.get(i);
      const label = [`#${i}`, typeof p.id === 'string' ? p.id : null, typeof p.name === 'string' ? p.name : null].filter(Boolean).join(' · ');
      return h('li', {class: 'feature' + (errs ? ' bad' : ''), id: `feature-${i}`, dataset: {index: String(i)}},
        h('span', {class: 'feat-name'}, label, errs ? '' : ' — ok'),
        errs ? h('ul', {class: 'feat-errors'}, errs.map((x) => h('li', {}, x.field ? `${x.field}: ${x.message}` : x.message))) : null);
    }));
    ol.hidden = false;
    const first = ol.querySelector('.bad');
    if (first) first.scrollIntoView({block: 'nearest'});
  }

  async function exportGeoJSON() {
    try {
      const fc = await app.call('GET', '/v1/stores.geojson');
      const blob = new Blob([JSON.stringify(fc, null, 2)], {type: 'application/geo+json'});
      const a = h('a', {href: URL.createObjectURL(blob), download: `${app.me.brand.name.replace(/[^\w.-]+/g, '-') || 'stores'}.geojson`});
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      app.flash(`Could not download: ${err.message}`, 'warn');
    }
  }

  // --- wiring ----------------------------------------------------------

  function timezones() {
    const list = $('#tz-list');
    if (list.childElementCount || !Intl.supportedValuesOf) return;
    list.append(...Intl.supportedValuesOf('timeZone').map((z) => h('option', {value: z})));
  }

  $('#store-search').addEventListener('input', renderList);
  $('#tag-form').addEventListener('submit', (e) => {
    e.preventDefault();
    s.tag = $('#tag-filter').value.trim();
    loadStores(false);
  });
  $('#stores-more').addEventListener('click', () => loadStores(true));
  $('#new-store').addEventListener('click', newStore);
  $('#open-import').addEventListener('click', openImport);
  $('#import-close').addEventListener('click', () => {
    $('#import').hidden = true;
  });
  $('#export').addEventListener('click', exportGeoJSON);
  $('#editor-close').addEventListener('click', closeEditor);
  form.addEventListener('submit', save);
  for (const r of [$('#fk-circle'), $('#fk-polygon')]) r.addEventListener('change', kindChanged);
  $('#f-radius').addEventListener('input', () => {
    $('#f-radius-range').value = String(Math.min(Number($('#f-radius').value) || 10, 5000));
    drawEdit();
  });
  $('#f-radius-range').addEventListener('input', () => setRadius(Number($('#f-radius-range').value)));
  for (const id of ['#f-lat', '#f-lon']) {
    $(id).addEventListener('change', () => {
      const lat = Number($('#f-lat').value);
      const lon = Number($('#f-lon').value);
      if ($('#f-lat').value !== '' && $('#f-lon').value !== '' && Number.isFinite(lat) && Number.isFinite(lon)) {
        s.centre = {lat, lon};
        drawEdit();
        s.map.panTo([lat, lon]);
      }
    });
  }
  $('#f-geojson').addEventListener('input', drawEdit);
  $('#f-geojson-file').addEventListener('change', async () => {
    const file = $('#f-geojson-file').files[0];
    if (!file) return;
    $('#f-geojson').value = await file.text();
    drawEdit();
    const g = readPolygon(true);
    if (g) fitTo(L.geoJSON(g).getBounds().pad(0.2), 18);
  });
  $('#delete-store').addEventListener('click', () => askDelete(true));
  $('#delete-no').addEventListener('click', () => askDelete(false));
  $('#delete-yes').addEventListener('click', remove);
  $('#key-form').addEventListener('submit', createKey);
  $('#copy-url').addEventListener('click', copyURL);
  $('#import-file').addEventListener('change', importFile);
  $('#import-text').addEventListener('input', () => {
    s.importText = null;
  });
  $('#import-form').addEventListener('submit', doImport);

  return {
    enter() {
      ensureMap();
      timezones();
      if (!s.loaded) loadStores(false);
      loadLive();
      clearInterval(s.timer);
      s.timer = setInterval(loadLive, LIVE_REFRESH_MS);
    },
    leave() {
      clearInterval(s.timer);
    },
    reset() {
      clearInterval(s.timer);
      s.stores = [];
      s.byID.clear();
      s.live.clear();
      s.loaded = false;
      s.tag = '';
      s.next = '';
      $('#tag-filter').value = '';
      $('#store-search').value = '';
      $('#new-key-url').value = '';
      $('#qr').replaceChildren();
      $('#new-key').hidden = true;
      $('#import').hidden = true;
      $('#import-text').value = '';
      s.importText = null;
      if (s.map) closeEditor();
      $('#store-list').replaceChildren();
    },
    storeName(id) {
      const st = s.byID.get(id);
      return st ? st.name : id;
    },
  };
}
