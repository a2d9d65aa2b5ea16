// tiles.js is the map's tile setting, kept in this browser only. An
// empty URL means no tile layer: fences on a plain background (and no
// request leaves for a tile server, as in the tests).

const URL_KEY = 'hotzone.admin.tileURL';
const ATTR_KEY = 'hotzone.admin.tileAttribution';

export const DEFAULT_TILES = {
  url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
  attribution: '© OpenStreetMap contributors',
};

export function getTiles() {
  const url = localStorage.getItem(URL_KEY);
  if (url === null) return {...DEFAULT_TILES};
  return {url, attribution: localStorage.getItem(ATTR_KEY) || ''};
}

export function setTiles({url, attribution}) {
  localStorage.setItem(URL_KEY, url);
  localStorage.setItem(ATTR_KEY, attribution);
  window.dispatchEvent(new Event('hotzone:tiles'));
}

// escapeHTML: Leaflet renders attributions as HTML; ours is text.
export function escapeHTML(s) {
  return s.replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
}
