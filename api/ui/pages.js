// Alerts, rules, targets, silences (with the alert groups' acknowledgements, acks.js),
// status and service-discovery pages.
import {
  h, api, fetchJSON, replaceChildren, errorBox, loading, badge, labelBadges, ago, formatISO, formatSeconds,
  humanizeDuration, graphLink, parseDuration, formatDuration, parseTime, formatTime, formatSeries, useLocalTime,
} from './util.js';
import { ackSection } from './acks.js';

// ---------- shared helpers ----------

/** Page skeleton; returns {root, body, ctx} where ctx tracks timers for cleanup. */
function pageShell(root, cls, title, ...extra) {
  const body = h('div', { class: 'page-body' }, loading());
  const page = h('div', { class: 'page ' + cls }, h('div', { class: 'page-header' }, h('h1', null, title), ...extra), body);
  replaceChildren(root, page);
  const timers = [];
  const ctx = {
    page,
    body,
    alive: true,
    every(fn, ms) {
      timers.push(setInterval(fn, ms));
    },
    cleanup() {
      ctx.alive = false;
      timers.forEach(clearInterval);
    },
  };
  return ctx;
}

function agoNode(ts) {
  return h('span', { class: 'ago', 'data-ts': ts, title: formatISO(ts) }, ago(ts));
}

function tickAgo(ctx) {
  ctx.every(() => {
    ctx.page.querySelectorAll('.ago[data-ts]').forEach((el) => {
      el.textContent = ago(el.getAttribute('data-ts'));
    });
  }, 1000);
}

function healthBadge(health) {
  const h0 = String(health || 'unknown').toLowerCase();
  const kind = h0 === 'up' || h0 === 'ok' ? 'ok' : h0 === 'down' || h0 === 'err' ? 'danger' : 'muted';
  return badge(h0.toUpperCase(), kind);
}

function stateBadge(state) {
  const st = String(state || 'inactive').toLowerCase();
  const kind = st === 'firing' ? 'danger' : st === 'pending' ? 'warning' : st === 'inactive' ? 'ok' : 'muted';
  return badge(st.toUpperCase(), kind);
}

function exprLink(expr) {
  return h('a', { class: 'expr-link', href: graphLink(expr, 1), title: 'Open in expression browser' }, expr);
}

function kvTable(rows, cls = 'kv-table') {
  return h('table', { class: 'table ' + cls }, h('tbody', null, rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))));
}

function refreshButton(fn) {
  return h('button', { class: 'btn btn-sm refresh-btn', type: 'button', onclick: fn }, 'Refresh');
}

function ruleDefinition(rule) {
  // YAML-ish rule definition with the expression linked to the graph page.
  const lines = [];
  const kw = rule.type === 'alerting' ? 'alert' : 'record';
  lines.push(h('div', null, h('span', { class: 'yaml-key' }, kw + ': '), h('span', { class: 'rule-name-text' }, rule.name)));
  lines.push(h('div', null, h('span', { class: 'yaml-key' }, 'expr: '), exprLink(rule.query)));
  if (rule.type === 'alerting' && rule.duration) lines.push(h('div', null, h('span', { class: 'yaml-key' }, 'for: '), formatDuration(rule.duration * 1000)));
  if (rule.type === 'alerting' && rule.keepFiringFor) lines.push(h('div', null, h('span', { class: 'yaml-key' }, 'keep_firing_for: '), formatDuration(rule.keepFiringFor * 1000)));
  const kvBlock = (title, obj) => {
    const keys = Object.keys(obj || {}).sort();
    if (!keys.length) return;
    lines.push(h('div', null, h('span', { class: 'yaml-key' }, title + ':')));
    keys.forEach((k) => lines.push(h('div', { class: 'yaml-indent' }, h('span', { class: 'yaml-key' }, k + ': '), String(obj[k]))));
  };
  kvBlock('labels', rule.labels);
  kvBlock('annotations', rule.annotations);
  return h('div', { class: 'rule-def mono' }, lines);
}

// ---------- Alerts ----------

export function renderAlerts(root) {
  const states = ['inactive', 'pending', 'firing'];
  const filter = { inactive: true, pending: true, firing: true };
  let showAnnotations = true;
  let search = '';
  let groups = [];
  const open = new Set();

  const ctx = pageShell(root, 'alerts-page', 'Alerts', refreshButton(() => load()));
  tickAgo(ctx);
  const controls = h('div', { class: 'filters' });
  const list = h('div', { class: 'alert-groups' });

  function counts() {
    const c = { inactive: 0, pending: 0, firing: 0 };
    groups.forEach((g) => g.rules.forEach((r) => { if (r.type === 'alerting') c[r.state in c ? r.state : 'inactive']++; }));
    return c;
  }

  function drawControls() {
    const c = counts();
    replaceChildren(controls,
      states.map((s) => {
        const cb = h('input', { type: 'checkbox', class: 'state-filter', value: s, id: 'filter-' + s, checked: filter[s] });
        cb.addEventListener('change', () => {
          filter[s] = cb.checked;
          drawList();
        });
        return h('label', { class: 'checkbox filter-' + s, for: 'filter-' + s }, cb, ' ', stateBadge(s), ` (${c[s]})`);
      }),
      (() => {
        const inp = h('input', { type: 'search', class: 'search-input', id: 'alerts-search', placeholder: 'Filter by name or labels', value: search });
        inp.addEventListener('input', () => { search = inp.value; drawList(); });
        return inp;
      })(),
      (() => {
        const cb = h('input', { type: 'checkbox', id: 'show-annotations', checked: showAnnotations });
        cb.addEventListener('change', () => { showAnnotations = cb.checked; drawList(); });
        return h('label', { class: 'checkbox', for: 'show-annotations' }, cb, ' Show annotations');
      })());
  }

  function matchesSearch(rule) {
    if (!search) return true;
    const q = search.toLowerCase();
    if (rule.name.toLowerCase().includes(q)) return true;
    const hay = [formatSeries(rule.labels || {})].concat((rule.alerts || []).map((a) => formatSeries(a.labels))).join(' ').toLowerCase();
    return hay.includes(q);
  }

  function alertTable(rule) {
    const alerts = rule.alerts || [];
    if (!alerts.length) return h('div', { class: 'muted no-active' }, 'No active alerts.');
    return h('table', { class: 'table alerts-table' },
      h('thead', null, h('tr', null, h('th', null, 'Labels'), h('th', null, 'State'), h('th', null, 'Active Since'), h('th', null, 'Value'), showAnnotations ? h('th', null, 'Annotations') : null, h('th', null, ''))),
      h('tbody', null, alerts.map((a) => {
        const silenceMatchers = '{' + Object.keys(a.labels || {}).sort().map((k) => `${k}="${String(a.labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(', ') + '}';
        return h('tr', { class: 'alert-row', 'data-state': a.state },
          h('td', null, labelBadges(a.labels)),
          h('td', null, stateBadge(a.state)),
          h('td', { class: 'active-since' }, a.activeAt ? [formatISO(a.activeAt), ' (', agoNode(a.activeAt), ')'] : ''),
          h('td', { class: 'alert-value mono' }, String(a.value ?? '')),
          showAnnotations ? h('td', { class: 'annotations' }, Object.keys(a.annotations || {}).sort().map((k) => h('div', { class: 'annotation' }, h('strong', null, k + ': '), String(a.annotations[k])))) : null,
          h('td', null, h('a', { class: 'btn btn-sm silence-link', href: '/silences?' + new URLSearchParams({ matchers: silenceMatchers }).toString() }, 'Silence')),
        );
      })));
  }

  function drawList() {
    drawControls();
    if (!groups.length) {
      replaceChildren(list, h('div', { class: 'empty' }, 'No alerting rules defined.'));
      return;
    }
    const byFile = new Map();
    groups.forEach((g) => {
      if (!byFile.has(g.file)) byFile.set(g.file, []);
      byFile.get(g.file).push(g);
    });
    const out = [];
    for (const [file, gs] of byFile) {
      for (const g of gs) {
        const rules = g.rules.filter((r) => r.type === 'alerting');
        const c = { inactive: 0, pending: 0, firing: 0 };
        rules.forEach((r) => c[r.state in c ? r.state : 'inactive']++);
        const shown = rules.filter((r) => filter[r.state in c ? r.state : 'inactive'] && matchesSearch(r));
        if (!shown.length) continue;
        out.push(h('section', { class: 'card alert-group', 'data-group': g.name, 'data-file': file },
          h('div', { class: 'card-header' },
            h('span', { class: 'group-file mono' }, file), h('span', { class: 'sep' }, ' > '), h('span', { class: 'group-name' }, g.name),
            h('span', { class: 'group-counts' },
              c.firing ? h('span', { class: 'count count-firing' }, `firing (${c.firing})`) : null,
              c.pending ? h('span', { class: 'count count-pending' }, `pending (${c.pending})`) : null,
              c.inactive ? h('span', { class: 'count count-inactive' }, `inactive (${c.inactive})`) : null)),
          shown.map((r) => {
            const key = file + '\u0000' + g.name + '\u0000' + r.name;
            const n = (r.alerts || []).length;
            const det = h('details', { class: 'alert-rule rule-state-' + r.state, 'data-state': r.state, 'data-rule-name': r.name, open: open.has(key) },
              h('summary', { class: 'alert-rule-summary' },
                h('span', { class: 'rule-name' }, r.name),
                ' ', stateBadge(r.state),
                h('span', { class: 'muted active-count' }, ` (${n} active)`),
                r.health && r.health !== 'ok' ? h('span', { class: 'rule-health' }, ' ', healthBadge(r.health)) : null),
              h('div', { class: 'alert-rule-body' },
                ruleDefinition(r),
                r.lastError ? errorBox(r.lastError, 'rule-error') : null,
                alertTable(r)));
            det.addEventListener('toggle', () => { if (det.open) open.add(key); else open.delete(key); });
            return det;
          })));
      }
    }
    replaceChildren(list, out.length ? out : h('div', { class: 'empty' }, 'No alerting rules match the current filters.'));
  }

  async function load() {
    try {
      const data = await api('rules', { type: 'alert' });
      if (!ctx.alive) return;
      groups = (data && data.groups) || [];
      replaceChildren(ctx.body, controls, list);
      drawList();
    } catch (e) {
      if (!ctx.alive) return;
      replaceChildren(ctx.body, errorBox('Error fetching alerting rules: ' + e.message));
    }
  }
  load();
  return () => ctx.cleanup();
}

// ---------- Rules ----------

export function renderRules(root) {
  const ctx = pageShell(root, 'rules-page', 'Rules', refreshButton(() => load()));
  tickAgo(ctx);
  async function load() {
    try {
      const data = await api('rules');
      if (!ctx.alive) return;
      const groups = (data && data.groups) || [];
      if (!groups.length) {
        replaceChildren(ctx.body, h('div', { class: 'empty' }, 'No rule groups configured.'));
        return;
      }
      replaceChildren(ctx.body, groups.map((g) =>
        h('section', { class: 'card rule-group', 'data-group': g.name },
          h('div', { class: 'card-header' },
            h('h2', { class: 'group-title' }, g.name),
            h('div', { class: 'group-meta' },
              h('span', null, 'File: ', h('span', { class: 'mono group-file' }, g.file)),
              h('span', null, 'Interval: ', formatDuration((g.interval || 0) * 1000)),
              h('span', null, 'Last evaluation: ', g.lastEvaluation ? agoNode(g.lastEvaluation) : 'never'),
              h('span', null, 'Evaluation time: ', formatSeconds(g.evaluationTime)),
              g.limit ? h('span', null, 'Limit: ', String(g.limit)) : null)),
          h('table', { class: 'table rules-table' },
            h('thead', null, h('tr', null, h('th', null, 'Rule'), h('th', null, 'State'), h('th', null, 'Error'), h('th', null, 'Last evaluation'), h('th', null, 'Evaluation time'))),
            h('tbody', null, (g.rules || []).map((r) =>
              h('tr', { class: 'rule-row', 'data-rule-name': r.name, 'data-rule-type': r.type, 'data-health': r.health },
                h('td', { class: 'rule-cell' }, ruleDefinition(r)),
                h('td', null, healthBadge(r.health), r.type === 'alerting' ? [' ', stateBadge(r.state)] : null),
                h('td', { class: 'rule-error-cell' }, r.lastError ? h('span', { class: 'error-text' }, r.lastError) : ''),
                h('td', null, r.lastEvaluation ? agoNode(r.lastEvaluation) : 'never'),
                h('td', null, formatSeconds(r.evaluationTime)))))))));
    } catch (e) {
      if (!ctx.alive) return;
      replaceChildren(ctx.body, errorBox('Error fetching rules: ' + e.message));
    }
  }
  load();
  return () => ctx.cleanup();
}

// ---------- Targets ----------

export function renderTargets(root) {
  const ctx = pageShell(root, 'targets-page', 'Targets', refreshButton(() => load()));
  tickAgo(ctx);
  let unhealthyOnly = false;
  let search = '';
  let targets = [];
  const collapsed = new Set();
  const list = h('div', { class: 'target-pools' });

  const unhealthyCb = h('input', { type: 'checkbox', id: 'unhealthy-only', class: 'unhealthy-only' });
  unhealthyCb.addEventListener('change', () => { unhealthyOnly = unhealthyCb.checked; draw(); });
  const searchInput = h('input', { type: 'search', class: 'search-input', id: 'targets-search', placeholder: 'Filter by endpoint or labels' });
  searchInput.addEventListener('input', () => { search = searchInput.value.toLowerCase(); draw(); });
  const pools = () => Array.from(new Set(targets.map((t) => t.scrapePool)));
  const controls = h('div', { class: 'filters' },
    h('label', { class: 'checkbox', for: 'unhealthy-only' }, unhealthyCb, ' Unhealthy only'),
    searchInput,
    h('button', { class: 'btn btn-sm collapse-all', type: 'button', onclick: () => { pools().forEach((p) => collapsed.add(p)); draw(); } }, 'Collapse all'),
    h('button', { class: 'btn btn-sm expand-all', type: 'button', onclick: () => { collapsed.clear(); draw(); } }, 'Expand all'));

  function draw() {
    const byPool = new Map();
    targets.forEach((t) => {
      if (!byPool.has(t.scrapePool)) byPool.set(t.scrapePool, []);
      byPool.get(t.scrapePool).push(t);
    });
    const out = [];
    for (const [pool, ts] of byPool) {
      const up = ts.filter((t) => t.health === 'up').length;
      const shown = ts.filter((t) => (!unhealthyOnly || t.health !== 'up') &&
        (!search || (t.scrapeUrl + ' ' + formatSeries(t.labels)).toLowerCase().includes(search)));
      if (!shown.length && (unhealthyOnly || search)) continue;
      const isCollapsed = collapsed.has(pool);
      out.push(h('section', { class: 'card target-pool' + (isCollapsed ? ' collapsed' : ''), 'data-pool': pool },
        h('div', { class: 'card-header' },
          h('button', {
            class: 'btn btn-link pool-toggle', type: 'button', 'aria-expanded': isCollapsed ? 'false' : 'true',
            onclick: () => { if (collapsed.has(pool)) collapsed.delete(pool); else collapsed.add(pool); draw(); },
          }, h('span', { class: 'caret' }, isCollapsed ? '▸' : '▾'), ' ', h('span', { class: 'pool-name' }, pool)),
          h('span', { class: 'pool-health ' + (up === ts.length ? 'all-up' : 'some-down') }, ` (${up}/${ts.length} up)`)),
        isCollapsed ? null : h('table', { class: 'table targets-table' },
          h('thead', null, h('tr', null, h('th', null, 'Endpoint'), h('th', null, 'State'), h('th', null, 'Labels'), h('th', null, 'Last Scrape'), h('th', null, 'Scrape Duration'), h('th', null, 'Error'))),
          h('tbody', null, shown.map((t) =>
            h('tr', { class: 'target-row', 'data-health': t.health, 'data-pool': pool },
              h('td', { class: 'endpoint' }, h('a', { href: t.scrapeUrl, target: '_blank', rel: 'noopener noreferrer', 'data-external': '' }, t.scrapeUrl)),
              h('td', { class: 'health' }, healthBadge(t.health)),
              h('td', { class: 'labels', title: 'Before relabeling: ' + formatSeries(t.discoveredLabels) }, labelBadges(t.labels)),
              h('td', { class: 'last-scrape' }, t.lastScrape ? agoNode(t.lastScrape) : 'never'),
              h('td', { class: 'scrape-duration' }, formatSeconds(t.lastScrapeDuration)),
              h('td', { class: 'last-error' }, t.lastError ? h('span', { class: 'error-text' }, t.lastError) : '')))))));
    }
    replaceChildren(list, out.length ? out : h('div', { class: 'empty' }, targets.length ? 'No targets match the current filters.' : 'No targets configured.'));
  }

  async function load() {
    try {
      const data = await api('targets', { state: 'active' });
      if (!ctx.alive) return;
      targets = (data && data.activeTargets) || [];
      replaceChildren(ctx.body, controls, list);
      draw();
    } catch (e) {
      if (!ctx.alive) return;
      replaceChildren(ctx.body, errorBox('Error fetching targets: ' + e.message));
    }
  }
  load();
  return () => ctx.cleanup();
}

// ---------- Service discovery ----------

export function renderServiceDiscovery(root) {
  const ctx = pageShell(root, 'sd-page', 'Service Discovery');
  (async () => {
    try {
      const data = await api('targets');
      if (!ctx.alive) return;
      const active = (data && data.activeTargets) || [];
      const dropped = (data && data.droppedTargets) || [];
      const pools = new Map();
      active.forEach((t) => { if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, { a: [], d: [] }); pools.get(t.scrapePool).a.push(t); });
      dropped.forEach((t) => {
        const p = t.scrapePool || (t.discoveredLabels && t.discoveredLabels.job) || 'unknown';
        if (!pools.has(p)) pools.set(p, { a: [], d: [] });
        pools.get(p).d.push(t);
      });
      if (!pools.size) {
        replaceChildren(ctx.body, h('div', { class: 'empty' }, 'No targets discovered.'));
        return;
      }
      replaceChildren(ctx.body,
        h('ul', { class: 'sd-summary' }, Array.from(pools).map(([p, v]) => h('li', null, h('a', { href: '#sd-' + encodeURIComponent(p), 'data-external': '' }, p), ` (${v.a.length} / ${v.a.length + v.d.length} active targets)`))),
        Array.from(pools).map(([p, v]) => h('section', { class: 'card sd-pool', id: 'sd-' + encodeURIComponent(p) },
          h('div', { class: 'card-header' }, h('h2', null, p)),
          h('table', { class: 'table sd-table' },
            h('thead', null, h('tr', null, h('th', null, 'Discovered Labels'), h('th', null, 'Target Labels'))),
            h('tbody', null,
              v.a.map((t) => h('tr', { class: 'sd-row' }, h('td', null, labelBadges(t.discoveredLabels)), h('td', null, labelBadges(t.labels)))),
              v.d.map((t) => h('tr', { class: 'sd-row dropped' }, h('td', null, labelBadges(t.discoveredLabels)), h('td', null, badge('Dropped', 'muted')))))))));
    } catch (e) {
      if (ctx.alive) replaceChildren(ctx.body, errorBox('Error fetching targets: ' + e.message));
    }
  })();
  return () => ctx.cleanup();
}

// ---------- Silences ----------

/** Parse `{a="b", c=~"d|e"}` into Alertmanager API matcher objects. Throws Error on bad syntax. */
export function parseMatchers(text) {
  let s = String(text || '').trim();
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new Error('missing closing "}"');
    s = s.slice(1, -1);
  } else if (s.endsWith('}')) throw new Error('missing opening "{"');
  const out = [];
  let i = 0;
  const ws = () => { while (i < s.length && /\s/.test(s[i])) i++; };
  const readQuoted = () => {
    const q = s[i++];
    let v = '';
    while (i < s.length && s[i] !== q) {
      if (s[i] === '\\' && i + 1 < s.length) {
        const n = s[i + 1];
        v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
        i += 2;
      } else v += s[i++];
    }
    if (s[i] !== q) throw new Error('unterminated quoted string');
    i++;
    return v;
  };
  while (true) {
    ws();
    if (i >= s.length) break;
    let name;
    if (s[i] === '"' || s[i] === "'") name = readQuoted();
    else {
      const m = s.slice(i).match(/^[a-zA-Z_][a-zA-Z0-9_]*/);
      if (!m) throw new Error(`invalid label name at "${s.slice(i, i + 10)}"`);
      name = m[0];
      i += name.length;
    }
    ws();
    const om = s.slice(i).match(/^(=~|!~|!=|==|=)/);
    if (!om) throw new Error(`expected an operator (=, !=, =~, !~) after "${name}"`);
    const op = om[0] === '==' ? '=' : om[0];
    i += om[0].length;
    ws();
    let value;
    if (s[i] === '"' || s[i] === "'" || s[i] === '`') value = readQuoted();
    else {
      const m = s.slice(i).match(/^[^,]*/);
      value = m[0].trim();
      i += m[0].length;
      if (/["'{}]/.test(value)) throw new Error(`invalid value for "${name}"`);
    }
    out.push({ name, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' });
    ws();
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`expected "," after matcher for "${name}"`);
      i++;
    }
  }
  if (!out.length) throw new Error('at least one matcher is required');
  return out;
}

function matcherText(m) {
  const op = m.isRegex ? (m.isEqual === false ? '!~' : '=~') : (m.isEqual === false ? '!=' : '=');
  return `${m.name}${op}"${String(m.value).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function matchersText(ms) {
  return '{' + (ms || []).map(matcherText).join(', ') + '}';
}

export function renderSilences(root) {
  const ctx = pageShell(root, 'silences-page', 'Silences', refreshButton(() => load()));
  const params = new URLSearchParams(location.search);
  const formMsg = h('div', { class: 'form-msg' });
  const listEl = h('div', { class: 'silence-list' });
  const acks = ackSection();
  const lsGet = (k) => { try { return localStorage.getItem(k) || ''; } catch { return ''; } };

  const fMatchers = h('input', { type: 'text', id: 'silence-matchers', name: 'matchers', class: 'mono', placeholder: '{alertname="Down", env=~"prod|staging"}', value: params.get('matchers') || params.get('filter') || '', required: true });
  const fStart = h('input', { type: 'text', id: 'silence-start', name: 'start', placeholder: 'now', value: '' });
  const fDuration = h('input', { type: 'text', id: 'silence-duration', name: 'duration', value: '2h', size: '8', required: true });
  const fCreator = h('input', { type: 'text', id: 'silence-creator', name: 'createdBy', value: lsGet('strata.silenceCreator'), required: true });
  const fComment = h('textarea', { id: 'silence-comment', name: 'comment', rows: '2', required: true });
  const preview = h('div', { class: 'matcher-preview mono muted' });
  const updatePreview = () => {
    if (!fMatchers.value.trim()) { replaceChildren(preview); return; }
    try {
      const ms = parseMatchers(fMatchers.value);
      replaceChildren(preview, ms.map((m) => h('span', { class: 'matcher-badge' }, matcherText(m))));
    } catch (e) {
      replaceChildren(preview, h('span', { class: 'error-text' }, 'Invalid matchers: ' + e.message));
    }
  };
  fMatchers.addEventListener('input', updatePreview);
  const endPreview = h('span', { class: 'muted end-preview' });
  const updateEnd = () => {
    const d = parseDuration(fDuration.value);
    const st = fStart.value.trim() ? parseTime(fStart.value) : Date.now();
    endPreview.textContent = d && st !== null ? 'Ends: ' + formatTime(st + d) + (useLocalTime() ? '' : ' UTC') : '';
  };
  fDuration.addEventListener('input', updateEnd);
  fStart.addEventListener('input', updateEnd);
  const submitBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'silence-submit' }, 'Create silence');
  const form = h('form', { class: 'card silence-form', id: 'silence-form', novalidate: true },
    h('div', { class: 'card-header' }, h('h2', null, 'New silence')),
    h('div', { class: 'form-grid' },
      h('label', { for: 'silence-matchers' }, 'Matchers'), h('div', null, fMatchers, preview),
      h('label', { for: 'silence-start' }, 'Start'), h('div', null, fStart, h('span', { class: 'muted hint' }, ' empty = now; YYYY-MM-DD HH:MM:SS')),
      h('label', { for: 'silence-duration' }, 'Duration'), h('div', null, fDuration, ' ', endPreview),
      h('label', { for: 'silence-creator' }, 'Creator'), h('div', null, fCreator),
      h('label', { for: 'silence-comment' }, 'Comment'), h('div', null, fComment),
      h('span', null), h('div', null, submitBtn, formMsg)));
  updatePreview();
  updateEnd();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replaceChildren(formMsg);
    let matchers;
    try {
      matchers = parseMatchers(fMatchers.value);
    } catch (e) {
      replaceChildren(formMsg, errorBox('Invalid matchers: ' + e.message));
      return;
    }
    const dur = parseDuration(fDuration.value);
    if (!dur || dur <= 0) {
      replaceChildren(formMsg, errorBox('Invalid duration: ' + fDuration.value));
      return;
    }
    const startMs = fStart.value.trim() ? parseTime(fStart.value) : Date.now();
    if (startMs === null) {
      replaceChildren(formMsg, errorBox('Invalid start time: ' + fStart.value));
      return;
    }
    if (!fCreator.value.trim()) {
      replaceChildren(formMsg, errorBox('Creator is required'));
      return;
    }
    if (!fComment.value.trim()) {
      replaceChildren(formMsg, errorBox('Comment is required'));
      return;
    }
    submitBtn.disabled = true;
    try {
      const res = await fetchJSON('/api/v2/silences', {
        method: 'POST',
        body: {
          matchers,
          startsAt: new Date(startMs).toISOString(),
          endsAt: new Date(startMs + dur).toISOString(),
          createdBy: fCreator.value.trim(),
          comment: fComment.value.trim(),
        },
      });
      try { localStorage.setItem('strata.silenceCreator', fCreator.value.trim()); } catch { /* ignore */ }
      replaceChildren(formMsg, h('div', { class: 'success' }, 'Silence created: ', h('span', { class: 'mono silence-id' }, String(res && res.silenceID))));
      fMatchers.value = '';
      fComment.value = '';
      updatePreview();
      load();
    } catch (e) {
      replaceChildren(formMsg, errorBox('Error creating silence: ' + e.message));
    } finally {
      submitBtn.disabled = false;
    }
  });

  async function expire(id, btn) {
    btn.disabled = true;
    try {
      await fetchJSON('/api/v2/silence/' + encodeURIComponent(id), { method: 'DELETE' });
      load();
    } catch (e) {
      btn.disabled = false;
      listEl.prepend(errorBox('Error expiring silence: ' + e.message));
    }
  }

  function silenceTable(list, state) {
    if (!list.length) return h('div', { class: 'muted empty' }, `No ${state} silences.`);
    return h('table', { class: 'table silences-table' },
      h('thead', null, h('tr', null, h('th', null, 'Matchers'), h('th', null, 'Created by'), h('th', null, 'Comment'), h('th', null, 'Start'), h('th', null, 'End'), h('th', null, ''))),
      h('tbody', null, list.map((sl) => h('tr', { class: 'silence-row', 'data-silence-id': sl.id, 'data-state': state },
        h('td', { class: 'matchers' }, (sl.matchers || []).map((m) => h('span', { class: 'matcher-badge mono' }, matcherText(m)))),
        h('td', { class: 'created-by' }, sl.createdBy || ''),
        h('td', { class: 'comment' }, sl.comment || ''),
        h('td', { class: 'starts-at' }, formatISO(sl.startsAt)),
        h('td', { class: 'ends-at' }, formatISO(sl.endsAt)),
        h('td', { class: 'actions' },
          state !== 'expired'
            ? h('button', { class: 'btn btn-sm btn-danger expire-btn', type: 'button', onclick: (ev) => expire(sl.id, ev.currentTarget) }, 'Expire')
            : h('button', { class: 'btn btn-sm recreate-btn', type: 'button', onclick: () => {
              fMatchers.value = matchersText(sl.matchers);
              fCreator.value = sl.createdBy || fCreator.value;
              fComment.value = sl.comment || '';
              updatePreview();
              fMatchers.focus();
              form.scrollIntoView({ block: 'start' });
            } }, 'Recreate'))))));
  }

  async function load() {
    try {
      const data = await fetchJSON('/api/v2/silences');
      if (!ctx.alive) return;
      const all = Array.isArray(data) ? data : [];
      const groups = { active: [], pending: [], expired: [] };
      all.forEach((sl) => {
        const st = (sl.status && sl.status.state) || 'active';
        (groups[st] || groups.active).push(sl);
      });
      groups.active.sort((a, b) => Date.parse(a.endsAt) - Date.parse(b.endsAt));
      groups.pending.sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
      groups.expired.sort((a, b) => Date.parse(b.endsAt) - Date.parse(a.endsAt));
      if (!form.isConnected) replaceChildren(ctx.body, form, listEl, acks.el);
      acks.load();
      replaceChildren(listEl, ['active', 'pending', 'expired'].map((st) =>
        h('section', { class: 'card silence-group', 'data-state': st },
          h('div', { class: 'card-header' }, h('h2', null, st[0].toUpperCase() + st.slice(1) + ' ', h('span', { class: 'count' }, `(${groups[st].length})`))),
          silenceTable(groups[st], st))));
    } catch (e) {
      if (!ctx.alive) return;
      if (e.status === 503) {
        replaceChildren(ctx.body, h('div', { class: 'error notifier-off', role: 'alert' },
          h('strong', null, 'Silences are unavailable: the notifier (Alertmanager) is not enabled. '), h('span', { class: 'server-message' }, e.message)));
      } else {
        replaceChildren(ctx.body, errorBox('Error fetching silences: ' + e.message));
      }
    }
  }
  load();
  return () => ctx.cleanup();
}

// ---------- Status ----------

const RUNTIME_NAMES = {
  startTime: 'Start time',
  CWD: 'Working directory',
  reloadConfigSuccess: 'Configuration reload',
  lastConfigTime: 'Last successful configuration reload',
  corruptionCount: 'WAL corruptions',
  goroutineCount: 'Goroutines',
  GOMAXPROCS: 'GOMAXPROCS',
  GOMEMLIMIT: 'GOMEMLIMIT',
  GOGC: 'GOGC',
  GODEBUG: 'GODEBUG',
  storageRetention: 'Storage retention',
};
const BUILD_NAMES = {
  version: 'Version', revision: 'Revision', branch: 'Branch', buildUser: 'BuildUser', buildDate: 'BuildDate', goVersion: 'Toolchain',
};

function orderedKeys(obj, names) {
  const keys = Object.keys(obj || {});
  const known = Object.keys(names).filter((k) => keys.includes(k));
  return known.concat(keys.filter((k) => !(k in names)));
}

function section(id, title, body) {
  return h('section', { class: 'card status-section', id }, h('div', { class: 'card-header' }, h('h2', null, title)), body);
}

async function loadSection(el, fn) {
  try {
    const content = await fn();
    replaceChildren(el, content);
  } catch (e) {
    replaceChildren(el, errorBox(e.message));
  }
}

function buildSection() {
  const body = h('div', null, loading());
  loadSection(body, async () => {
    const d = await api('status/buildinfo');
    return kvTable(orderedKeys(d, BUILD_NAMES).map((k) => [BUILD_NAMES[k] || k, String(d[k])]), 'kv-table build-info-table');
  });
  return section('build-info', 'Build Information', body);
}

function runtimeSection() {
  const body = h('div', null, loading());
  loadSection(body, async () => {
    const d = await api('status/runtimeinfo');
    return kvTable(orderedKeys(d, RUNTIME_NAMES).map((k) => {
      let v = d[k];
      if (k === 'reloadConfigSuccess') v = v ? 'Successful' : 'Unsuccessful';
      else if ((k === 'startTime' || k === 'lastConfigTime') && v) v = formatISO(v);
      else if (k === 'GOMEMLIMIT' && v >= 9.2e18) v = 'unlimited';
      return [RUNTIME_NAMES[k] || k, String(v)];
    }), 'kv-table runtime-info-table');
  });
  return section('runtime-info', 'Runtime Information', body);
}

function flagsSection() {
  const body = h('div', null, loading());
  loadSection(body, async () => {
    const d = await api('status/flags');
    const filter = h('input', { type: 'search', id: 'flags-filter', class: 'search-input', placeholder: 'Filter flags', 'aria-label': 'Filter flags' });
    const tbody = h('tbody');
    const keys = Object.keys(d || {}).sort();
    const draw = () => {
      const q = filter.value.toLowerCase();
      const rows = keys.filter((k) => !q || k.toLowerCase().includes(q) || String(d[k]).toLowerCase().includes(q));
      replaceChildren(tbody, rows.length
        ? rows.map((k) => h('tr', { class: 'flag-row', 'data-flag': k }, h('td', { class: 'mono flag-name' }, '--' + k), h('td', { class: 'mono flag-value' }, String(d[k]))))
        : h('tr', null, h('td', { colspan: '2', class: 'muted' }, 'No flags match.')));
    };
    filter.addEventListener('input', draw);
    draw();
    return h('div', null, filter, h('table', { class: 'table flags-table' }, h('thead', null, h('tr', null, h('th', null, 'Flag'), h('th', null, 'Value'))), tbody));
  });
  return section('flags', 'Command-Line Flags', body);
}

function configSection() {
  const body = h('div', null, loading());
  loadSection(body, async () => {
    const d = await api('status/config');
    const yaml = (d && d.yaml) || '';
    const msg = h('span', { class: 'muted copy-msg' });
    const copy = h('button', { class: 'btn btn-sm copy-config', type: 'button', onclick: async () => {
      try {
        await navigator.clipboard.writeText(yaml);
        msg.textContent = ' Copied.';
      } catch {
        msg.textContent = ' Copy failed (clipboard not available).';
      }
    } }, 'Copy to clipboard');
    return h('div', null, h('div', { class: 'toolbar' }, copy, msg), h('pre', { class: 'config-yaml mono' }, yaml));
  });
  return section('config', 'Configuration', body);
}

function topTable(title, rows, nameHdr, valHdr, cls, fmt = String) {
  return h('div', { class: 'tsdb-top ' + cls },
    h('h3', null, title),
    (rows && rows.length)
      ? h('table', { class: 'table tsdb-table' },
        h('thead', null, h('tr', null, h('th', null, nameHdr), h('th', null, valHdr))),
        h('tbody', null, rows.map((r) => h('tr', { class: 'tsdb-row' }, h('td', { class: 'mono' }, r.name), h('td', null, fmt(r.value))))))
      : h('div', { class: 'muted' }, 'No data.'));
}

function tsdbSection() {
  const body = h('div', null, loading());
  loadSection(body, async () => {
    const d = await api('status/tsdb');
    const hs = (d && d.headStats) || {};
    const tsFmt = (ms) => (isFinite(ms) && ms > 0 && ms < 9e15 ? formatTime(ms) + (useLocalTime() ? '' : ' UTC') : 'n/a');
    return h('div', null,
      h('h3', null, 'Head Stats'),
      h('table', { class: 'table head-stats' },
        h('thead', null, h('tr', null, h('th', null, 'Number of Series'), h('th', null, 'Number of Chunks'), h('th', null, 'Number of Label Pairs'), h('th', null, 'Current Min Time'), h('th', null, 'Current Max Time'))),
        h('tbody', null, h('tr', null,
          h('td', { class: 'num-series', 'data-value': String(hs.numSeries ?? '') }, String(hs.numSeries ?? '')),
          h('td', null, String(hs.chunkCount ?? '')),
          h('td', null, String(hs.numLabelPairs ?? '')),
          h('td', null, tsFmt(hs.minTime)),
          h('td', null, tsFmt(hs.maxTime))))),
      h('div', { class: 'tsdb-grid' },
        topTable('Top metrics by series count', d.seriesCountByMetricName, 'Metric name', 'Series count', 'top-metrics'),
        topTable('Top label names by value count', d.labelValueCountByLabelName, 'Label name', 'Value count', 'top-label-values'),
        topTable('Top label names by memory usage', d.memoryInBytesByLabelName, 'Label name', 'Bytes', 'top-label-memory'),
        topTable('Top label pairs by series count', d.seriesCountByLabelValuePair, 'Label pair', 'Series count', 'top-label-pairs')));
  });
  return section('tsdb', 'TSDB Status', body);
}

export function renderStatus(root) {
  replaceChildren(root, h('div', { class: 'page status-page' },
    h('div', { class: 'page-header' }, h('h1', null, 'Status'),
      h('nav', { class: 'subnav' },
        [['#build-info', 'Build'], ['#runtime-info', 'Runtime'], ['#flags', 'Flags'], ['#config', 'Configuration'], ['#tsdb', 'TSDB']]
          .map(([href, t]) => h('a', { href, 'data-external': '', onclick: (ev) => {
            ev.preventDefault();
            const el = document.querySelector(href);
            if (el) el.scrollIntoView({ block: 'start' });
          } }, t)))),
    buildSection(), runtimeSection(), flagsSection(), configSection(), tsdbSection()));
}

export function renderFlags(root) {
  replaceChildren(root, h('div', { class: 'page status-page flags-page' }, h('div', { class: 'page-header' }, h('h1', null, 'Command-Line Flags')), flagsSection()));
}

export function renderConfig(root) {
  replaceChildren(root, h('div', { class: 'page status-page config-page' }, h('div', { class: 'page-header' }, h('h1', null, 'Configuration')), configSection()));
}

export function renderTSDB(root) {
  replaceChildren(root, h('div', { class: 'page status-page tsdb-page' }, h('div', { class: 'page-header' }, h('h1', null, 'TSDB Status')), tsdbSection()));
}

// Unused-import guard for bundlers/linters.
void humanizeDuration;
