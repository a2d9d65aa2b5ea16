// admin-presets.js: the brand's saved message templates and audiences,
// which store tablets offer instead of free typing (PUT, GET and DELETE
// /v1/templates/{id} and /v1/audiences/{id}).

import {seg} from './api.js';
import {$, clearErrors, h, showErrors} from './dom.js';

const tags = (sel) => $(sel).value.split(',').map((t) => t.trim()).filter(Boolean);

export function presetsView(app) {
  const kinds = {
    templates: {
      form: $('#tpl-form'), list: '#tpl-list', empty: '#tpl-empty', id: '#t-id', word: 'template',
      body: () => {
        const b = {name: $('#t-name').value.trim(), title: $('#t-title').value, body: $('#t-body').value};
        if ($('#t-duration').value) b.duration_s = Number($('#t-duration').value);
        return b;
      },
      fill: (p) => {
        $('#t-name').value = p.name;
        $('#t-title').value = p.title;
        $('#t-body').value = p.body;
        $('#t-duration').value = p.duration_s ? String(p.duration_s) : '';
      },
      line: (p) => `${p.title} — ${p.body}`,
    },
    audiences: {
      form: $('#aud-form'), list: '#aud-list', empty: '#aud-empty', id: '#a-id', word: 'audience',
      body: () => ({name: $('#a-name').value.trim(), any: tags('#a-any'), all: tags('#a-all'), none: tags('#a-none')}),
      fill: (p) => {
        $('#a-name').value = p.name;
        $('#a-any').value = p.any.join(', ');
        $('#a-all').value = p.all.join(', ');
        $('#a-none').value = p.none.join(', ');
      },
      line: (p) => [['any of', p.any], ['all of', p.all], ['none of', p.none]]
        .filter(([, l]) => l.length).map(([w, l]) => `${w} ${l.join(', ')}`).join('; '),
    },
  };

  async function load(path) {
    const k = kinds[path];
    try {
      const {items} = await app.list(`/v1/${path}`, {maxPages: 10});
      $(k.list).replaceChildren(...items.map((p) => h('li', {class: 'preset', 'data-id': p.id},
        h('span', {class: 'preset-name'}, p.name), ' ', h('code', {class: 'small'}, p.id),
        h('span', {class: 'help block'}, k.line(p)),
        h('span', {class: 'row-actions'},
          h('button', {type: 'button', class: 'btn secondary small', onclick: () => edit(path, p)}, 'Edit'),
          h('button', {type: 'button', class: 'btn secondary small', onclick: () => remove(path, p)}, 'Delete')))));
      $(k.empty).hidden = items.length > 0;
    } catch (err) {
      showErrors(k.form, err);
    }
  }

  function edit(path, p) {
    const k = kinds[path];
    clearErrors(k.form);
    $(k.id).value = p.id;
    k.fill(p);
  }

  async function remove(path, p) {
    try {
      await app.call('DELETE', `/v1/${path}/${seg(p.id)}`);
      app.flash(`Deleted ${kinds[path].word} “${p.name}”.`);
    } catch (err) {
      app.flash(`Could not delete it: ${err.message}`, 'warn');
    }
    load(path);
  }

  async function save(path, e) {
    e.preventDefault();
    const k = kinds[path];
    clearErrors(k.form);
    const id = $(k.id).value.trim();
    if (!id) {
      showErrors(k.form, {message: '', fieldErrors: [{field: `${k.word}_id`, message: 'Give it an id (letters, digits, . _ : -).'}]});
      return;
    }
    const btn = k.form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const p = await app.call('PUT', `/v1/${path}/${seg(id)}`, {body: k.body()});
      app.flash(`Saved ${k.word} “${p.name}”.`);
      load(path);
    } catch (err) {
      showErrors(k.form, err);
    } finally {
      btn.disabled = false;
    }
  }

  for (const path of Object.keys(kinds)) kinds[path].form.addEventListener('submit', (e) => save(path, e));
  return {enter: () => Promise.all(Object.keys(kinds).map(load))};
}
