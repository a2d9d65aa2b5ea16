// dom.js builds elements. Server-provided strings only ever become text
// nodes or attribute values, never HTML.

// h makes an element: h('p', {class: 'x', onclick: f}, 'text', child).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// show sets an element's text (or hides it when text is empty).
export function say(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

// fmtTime is a server time in the reader's local time, short: the
// month and day, the time to the second, and the year only when it is
// not this one.
export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  const opts = {month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit'};
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleString(undefined, opts);
}

// timeEl is a server time as a <time> element that never wraps (tables
// keep a time on one line), the full date and time in its tooltip;
// prefix, if given, goes on the same line ("ends …").
export function timeEl(s, prefix = '') {
  if (!s) return h('span', {}, '—');
  const d = new Date(s);
  const full = Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString(undefined, {dateStyle: 'full', timeStyle: 'long'});
  return h('time', {class: 'nowrap', datetime: s, title: full}, prefix + fmtTime(s));
}

// clearErrors and showErrors put a problem's errors[] next to the inputs
// they name. An element [data-error-for="field"] receives the message
// for field or for any path under it (fence.polygon gets
// fence.polygon.coordinates[0][3]); the form's [data-error-for="*"]
// gets the rest and the detail.
export function clearErrors(form) {
  for (const el of $$('[data-error-for]', form)) say(el, '');
  for (const el of $$('[aria-invalid]', form)) el.removeAttribute('aria-invalid');
}

export function showErrors(form, err) {
  clearErrors(form);
  const slots = $$('[data-error-for]', form);
  const general = slots.find((s) => s.dataset.errorFor === '*');
  const rest = [];
  for (const fe of err.fieldErrors || []) {
    let best = null;
    for (const s of slots) {
      const f = s.dataset.errorFor;
      if (f === '*') continue;
      if (fe.field === f || fe.field.startsWith(f + '.') || fe.field.startsWith(f + '[')) {
        if (!best || f.length > best.dataset.errorFor.length) best = s;
      }
    }
    if (best) {
      const prev = best.hidden ? '' : best.textContent + ' ';
      say(best, prev + fieldLabel(fe, best.dataset.errorFor));
      const input = form.querySelector(`[aria-describedby~="${best.id}"]`);
      if (input) input.setAttribute('aria-invalid', 'true');
    } else {
      rest.push(`${fe.field}: ${fe.message}`);
    }
  }
  if (general) {
    const parts = [];
    if (!(err.fieldErrors || []).length) parts.push(err.message);
    else if (rest.length === 0) parts.push('Please fix the marked fields.');
    parts.push(...rest);
    say(general, parts.join(' '));
  }
}

function fieldLabel(fe, slot) {
  const sub = fe.field.slice(slot.length).replace(/^\./, '');
  return sub ? `${sub}: ${fe.message}` : fe.message;
}
