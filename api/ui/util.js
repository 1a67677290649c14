// Shared helpers: DOM building (text is always set via text nodes, never as HTML),
// API fetching with Prometheus-style error handling, and formatting.

/** Escape a string for safe inclusion in HTML. */
export function esc(s) {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Create an element: h('div', {class: 'x', onclick: fn}, 'text', child, [more]).
 * Strings become text nodes (never parsed as HTML). null/undefined/false children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Same as h() but in the SVG namespace. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'style' && typeof v === 'object') {
      Object.assign(el.style, v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'open') {
      el[k] = !!v;
      if (v === true && k !== 'checked') el.setAttribute(k, '');
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Remove all children of el and append the given ones. */
export function replaceChildren(el, ...children) {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
  return el;
}

/** Error thrown by api helpers; .message is the API's error text. */
export class ApiError extends Error {
  constructor(message, status, errorType) {
    super(message);
    this.status = status;
    this.errorType = errorType;
  }
}

/** Build a query string from an object; array values repeat the key. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, String(v));
  }
  const str = u.toString();
  return str ? '?' + str : '';
}

/**
 * Fetch JSON from the API. For v1 responses returns `data`; for other (v2) responses the
 * parsed body. Throws ApiError with the server's message on HTTP or API errors, and on
 * network errors.
 */
export async function fetchJSON(path, opts = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method: opts.method || 'GET',
      headers: opts.body !== undefined ? { 'Content-Type': 'application/json' } : undefined,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
      credentials: 'same-origin',
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError('Network error: ' + (e && e.message ? e.message : 'request failed'), 0, 'network');
  }
  const text = await resp.text().catch(() => '');
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!resp.ok) {
    let msg;
    if (body && typeof body === 'object' && body.error) msg = String(body.error);
    else if (typeof body === 'string') msg = body;
    else if (body && typeof body === 'object' && body.message) msg = String(body.message);
    else msg = (text || '').trim() || `HTTP ${resp.status} ${resp.statusText}`;
    throw new ApiError(msg, resp.status, body && body.errorType);
  }
  if (body && typeof body === 'object' && !Array.isArray(body) && 'status' in body && typeof body.status === 'string') {
    if (body.status === 'error') throw new ApiError(String(body.error || 'unknown error'), resp.status, body.errorType);
    const d = body.data;
    if (body.warnings && d && typeof d === 'object') {
      try {
        Object.defineProperty(d, '__warnings', { value: body.warnings, enumerable: false });
      } catch {
        /* ignore */
      }
    }
    if (body.infos && d && typeof d === 'object') {
      try {
        Object.defineProperty(d, '__infos', { value: body.infos, enumerable: false });
      } catch {
        /* ignore */
      }
    }
    return d;
  }
  if (body === null && text) throw new ApiError('Invalid JSON response from server', resp.status);
  return body;
}

/** GET /api/v1/<path> with params → data. */
export function api(path, params, opts) {
  return fetchJSON('/api/v1/' + path + qs(params), opts);
}

// ---------- Formatting ----------

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Escape a label value the way PromQL string literals need it. */
export function escapeLabelValue(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Format a label set like Prometheus: name{a="b", c="d"}. */
export function formatSeries(metric) {
  metric = metric || {};
  const name = metric.__name__ || '';
  const parts = [];
  for (const k of Object.keys(metric).sort()) {
    if (k === '__name__') continue;
    const key = LABEL_NAME_RE.test(k) ? k : '"' + escapeLabelValue(k) + '"';
    parts.push(`${key}="${escapeLabelValue(metric[k])}"`);
  }
  if (name && !METRIC_NAME_RE.test(name)) {
    return '{"' + escapeLabelValue(name) + '"' + (parts.length ? ', ' + parts.join(', ') : '') + '}';
  }
  if (!parts.length) return name || '{}';
  return name + '{' + parts.join(', ') + '}';
}

/** Build a DOM rendering of a series, name bold-ish, labels styled. */
export function seriesNode(metric) {
  metric = metric || {};
  const name = metric.__name__ || '';
  const keys = Object.keys(metric).filter((k) => k !== '__name__').sort();
  const out = h('span', { class: 'series-name' });
  if (name) out.appendChild(h('span', { class: 'metric-name' }, name));
  if (keys.length || !name) {
    out.appendChild(document.createTextNode('{'));
    keys.forEach((k, i) => {
      if (i) out.appendChild(document.createTextNode(', '));
      out.appendChild(h('span', { class: 'label-name' }, k));
      out.appendChild(document.createTextNode('='));
      out.appendChild(h('span', { class: 'label-value' }, '"' + escapeLabelValue(metric[k]) + '"'));
    });
    out.appendChild(document.createTextNode('}'));
  }
  return out;
}

/** Labels as small chips. */
export function labelBadges(labels, cls = 'label-badge') {
  const keys = Object.keys(labels || {}).sort();
  return h(
    'span',
    { class: 'label-badges' },
    keys.map((k) => h('span', { class: cls, title: `${k}="${labels[k]}"` }, `${k}="${labels[k]}"`))
  );
}

const DURATION_UNITS = [
  ['y', 365 * 24 * 3600 * 1000],
  ['w', 7 * 24 * 3600 * 1000],
  ['d', 24 * 3600 * 1000],
  ['h', 3600 * 1000],
  ['m', 60 * 1000],
  ['s', 1000],
  ['ms', 1],
];

/** Parse a Prometheus duration ("1h30m", "2d", "15s", "500ms", or a plain number of seconds) to milliseconds; null if invalid. */
export function parseDuration(str) {
  if (str === null || str === undefined) return null;
  str = String(str).trim();
  if (!str) return null;
  if (/^\d+(\.\d+)?$/.test(str)) return Math.round(parseFloat(str) * 1000);
  const re = /^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$/;
  const m = str.match(re);
  if (!m) return null;
  const mult = [365 * 86400000, 7 * 86400000, 86400000, 3600000, 60000, 1000, 1];
  let total = 0;
  let any = false;
  for (let i = 0; i < 7; i++) {
    const v = m[2 + i * 2];
    if (v !== undefined) {
      total += parseInt(v, 10) * mult[i];
      any = true;
    }
  }
  return any ? total : null;
}

/** Format milliseconds as a Prometheus duration, e.g. 5400000 → "1h30m". */
export function formatDuration(ms) {
  if (!isFinite(ms)) return '';
  if (ms === 0) return '0s';
  let r = Math.round(Math.abs(ms));
  let out = ms < 0 ? '-' : '';
  for (const [u, m] of DURATION_UNITS) {
    if (r >= m) {
      const n = Math.floor(r / m);
      r -= n * m;
      out += n + u;
    }
  }
  return out;
}

/** Human "x ago"-style duration from seconds, e.g. 3.2 → "3.200s", 125 → "2m 5s". */
export function humanizeDuration(seconds) {
  if (!isFinite(seconds)) return '';
  const neg = seconds < 0;
  seconds = Math.abs(seconds);
  let out;
  if (seconds < 1) out = (seconds * 1000).toFixed(3).replace(/\.?0+$/, '') + 'ms';
  else if (seconds < 60) out = seconds.toFixed(3).replace(/\.?0+$/, '') + 's';
  else {
    const d = Math.floor(seconds / 86400);
    const hh = Math.floor((seconds % 86400) / 3600);
    const mm = Math.floor((seconds % 3600) / 60);
    const ss = Math.floor(seconds % 60);
    const parts = [];
    if (d) parts.push(d + 'd');
    if (hh) parts.push(hh + 'h');
    if (mm) parts.push(mm + 'm');
    if (ss) parts.push(ss + 's');
    out = parts.join(' ');
  }
  return (neg ? '-' : '') + out;
}

/** "12.345s ago" style relative time for an ISO timestamp (or Date). */
export function ago(ts) {
  const t = ts instanceof Date ? ts.getTime() : Date.parse(ts);
  if (!isFinite(t) || t <= 0 || new Date(t).getUTCFullYear() < 1971) return 'never';
  const secs = (Date.now() - t) / 1000;
  if (secs < 0) return 'in ' + humanizeDuration(-secs);
  return humanizeDuration(secs) + ' ago';
}

/** Format seconds as a compact duration string: 0.0123 → "12.300ms". */
export function formatSeconds(sec) {
  if (sec === null || sec === undefined || !isFinite(sec)) return '';
  if (sec < 1) return (sec * 1000).toFixed(3) + 'ms';
  return sec.toFixed(3) + 's';
}

// Local-time preference (Prometheus default is UTC).
export function useLocalTime() {
  try {
    return localStorage.getItem('strata.useLocalTime') === '1';
  } catch {
    return false;
  }
}
export function setUseLocalTime(v) {
  try {
    localStorage.setItem('strata.useLocalTime', v ? '1' : '0');
  } catch {
    /* ignore */
  }
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Format ms timestamp as "YYYY-MM-DD HH:MM:SS" (UTC unless local time is chosen). */
export function formatTime(ms, withMs = false) {
  if (!isFinite(ms)) return '';
  const d = new Date(ms);
  const local = useLocalTime();
  const Y = local ? d.getFullYear() : d.getUTCFullYear();
  const M = (local ? d.getMonth() : d.getUTCMonth()) + 1;
  const D = local ? d.getDate() : d.getUTCDate();
  const hh = local ? d.getHours() : d.getUTCHours();
  const mm = local ? d.getMinutes() : d.getUTCMinutes();
  const ss = local ? d.getSeconds() : d.getUTCSeconds();
  const msp = local ? d.getMilliseconds() : d.getUTCMilliseconds();
  let out = `${Y}-${pad(M)}-${pad(D)} ${pad(hh)}:${pad(mm)}:${pad(ss)}`;
  if (withMs && msp) out += '.' + pad(msp, 3);
  return out;
}

/** Format an ISO timestamp string for display. */
export function formatISO(ts) {
  const t = Date.parse(ts);
  if (!isFinite(t)) return String(ts ?? '');
  return formatTime(t) + (useLocalTime() ? '' : ' UTC');
}

/** Parse "YYYY-MM-DD HH:MM[:SS]" (UTC unless local time), ISO strings or unix seconds → ms; null if invalid/empty. */
export function parseTime(str) {
  if (str === null || str === undefined) return null;
  str = String(str).trim();
  if (!str) return null;
  if (/^\d+(\.\d+)?$/.test(str)) {
    const n = parseFloat(str);
    return n > 1e11 ? Math.round(n) : Math.round(n * 1000);
  }
  const m = str.match(/^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?\s*(Z|UTC)?$/i);
  if (m) {
    const [, Y, M, D, hh = '0', mm = '0', ss = '0', frac = '0', z] = m;
    const msv = parseInt(frac.padEnd(3, '0'), 10);
    if (useLocalTime() && !z) return new Date(+Y, +M - 1, +D, +hh, +mm, +ss, msv).getTime();
    return Date.UTC(+Y, +M - 1, +D, +hh, +mm, +ss, msv);
  }
  const t = Date.parse(str);
  return isFinite(t) ? t : null;
}

const SI_PREFIXES = [
  [1e24, 'Y'],
  [1e21, 'Z'],
  [1e18, 'E'],
  [1e15, 'P'],
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
  [1, ''],
  [1e-3, 'm'],
  [1e-6, 'µ'],
  [1e-9, 'n'],
  [1e-12, 'p'],
  [1e-15, 'f'],
];

/** SI-format a number: 1234567 → "1.23M", 0.005 → "5m". */
export function formatSI(v, precision = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const abs = Math.abs(v);
  for (const [f, p] of SI_PREFIXES) {
    if (abs >= f * 0.9999999) {
      const n = v / f;
      return trimNum(n.toPrecision(precision)) + p;
    }
  }
  return v.toExponential(2);
}

function trimNum(str) {
  if (str.includes('e')) return str;
  return str.includes('.') ? str.replace(/\.?0+$/, '') : str;
}

/** Parse a Prometheus sample value string ("1e+00", "NaN", "+Inf"). */
export function parseValue(v) {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return parseFloat(v);
}

/** Debounce helper. */
export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

/** Link to the graph page for an expression (table tab by default). */
export function graphLink(expr, tab = 1) {
  return '/graph' + qs({ 'g0.expr': expr, 'g0.tab': String(tab) });
}

/** Small helper for a loading indicator. */
export function loading(text = 'Loading…') {
  return h('div', { class: 'loading' }, text);
}

/** Error box with the given message. */
export function errorBox(msg, extraClass = '') {
  return h('div', { class: ('error ' + extraClass).trim(), role: 'alert' }, String(msg));
}

/** Health/state badge. */
export function badge(text, kind) {
  return h('span', { class: 'badge badge-' + kind }, text);
}

/** Navigate client-side (set by app.js). */
export function navigate(url) {
  window.dispatchEvent(new CustomEvent('strata:navigate', { detail: url }));
}
