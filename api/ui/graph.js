// Expression browser: query panels with autocompletion, table and graph views, URL state.
import {
  h, api, qs, replaceChildren, seriesNode, formatSeries, parseDuration, formatDuration, parseTime,
  formatTime, useLocalTime, setUseLocalTime, errorBox, debounce, escapeLabelValue,
} from './util.js';
import { renderChart } from './chart.js';
import { bucketChart, heatmaps } from './histogram.js';

// Prometheus's range steps (seconds) for the −/+ buttons.
const RANGE_STEPS = [
  1, 10, 60, 5 * 60, 15 * 60, 30 * 60, 3600, 2 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
  7 * 86400, 14 * 86400, 28 * 86400, 56 * 86400, 112 * 86400, 182 * 86400, 365 * 86400, 730 * 86400,
];
const MAX_TABLE_ROWS = 10000;
const MAX_EXEMPLARS = 5000;
const TAB_GRAPH = 0;
const TAB_TABLE = 1;

const FUNCTIONS = [
  'abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'avg_over_time',
  'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'count_over_time', 'day_of_month',
  'day_of_week', 'day_of_year', 'days_in_month', 'deg', 'delta', 'deriv', 'double_exponential_smoothing', 'exp',
  'floor', 'histogram_avg', 'histogram_count', 'histogram_fraction', 'histogram_quantile', 'histogram_stddev',
  'histogram_stdvar', 'histogram_sum', 'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join',
  'label_replace', 'last_over_time', 'ln', 'log10', 'log2', 'mad_over_time', 'max_over_time', 'min_over_time',
  'minute', 'month', 'pi', 'predict_linear', 'present_over_time', 'quantile_over_time', 'rad', 'rate', 'resets',
  'round', 'scalar', 'sgn', 'sin', 'sinh', 'sort', 'sort_by_label', 'sort_by_label_desc', 'sort_desc', 'sqrt',
  'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'tan', 'tanh', 'time', 'timestamp', 'vector', 'year',
];
const AGGREGATIONS = [
  'avg', 'bottomk', 'count', 'count_values', 'group', 'limit_ratio', 'limitk', 'max', 'min', 'quantile', 'stddev',
  'stdvar', 'sum', 'topk',
];
const KEYWORDS = ['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'];

// ---------- Autocomplete data (cached per page load) ----------

const cache = new Map();
function cached(key, fn) {
  if (!cache.has(key)) {
    const p = fn().catch(() => {
      cache.delete(key);
      return [];
    });
    cache.set(key, p);
  }
  return cache.get(key);
}
const metricNames = () => cached('metrics', () => api('label/__name__/values').then((d) => d || []));
const metricMeta = () => cached('meta', () => api('metadata').then((d) => d || {}));
function labelNames(metric) {
  return cached('labels:' + (metric || ''), () =>
    api('labels', metric ? { 'match[]': metric } : undefined).then((d) => (d || []).filter((n) => n !== '__name__'))
  );
}
function labelValues(label, metric) {
  return cached('values:' + label + ':' + (metric || ''), () =>
    api('label/' + encodeURIComponent(label) + '/values', metric ? { 'match[]': metric } : undefined).then((d) => d || [])
  );
}

/** Scan text before the cursor: open brackets and whether we are inside a string. */
function scan(text) {
  const stack = [];
  let str = null;
  let strStart = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (str) {
      if (c === '\\' && str !== '`') i++;
      else if (c === str) str = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      str = c;
      strStart = i;
    } else if (c === '#') {
      // comment until end of line
      const nl = text.indexOf('\n', i);
      if (nl < 0) return { stack, str: null, comment: true };
      i = nl;
    } else if (c === '{' || c === '(' || c === '[') stack.push({ c, i });
    else if (c === '}' || c === ')' || c === ']') stack.pop();
  }
  return { stack, str, strStart };
}

/** Identifier (metric name) right before position i (skipping spaces). */
function identBefore(text, i) {
  const m = text.slice(0, i).match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/);
  return m ? m[1] : '';
}

/** Determine the completion context for the text before the cursor. */
function completionContext(pre) {
  const sc = scan(pre);
  if (sc.comment) return null;
  const top = sc.stack[sc.stack.length - 1];
  if (sc.str) {
    if (!top || top.c !== '{') return null;
    const before = pre.slice(0, sc.strStart);
    const m = before.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
    if (!m) return null;
    return {
      kind: 'labelValue', label: m[1], metric: identBefore(pre, top.i), prefix: pre.slice(sc.strStart + 1),
      from: sc.strStart + 1, quote: sc.str,
    };
  }
  if (top && top.c === '{') {
    const inner = pre.slice(top.i + 1);
    const seg = inner.slice(inner.lastIndexOf(',') + 1);
    let m = seg.match(/^\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/);
    if (m) {
      const prefix = m[1] || '';
      return { kind: 'labelName', metric: identBefore(pre, top.i), prefix, from: pre.length - prefix.length };
    }
    m = seg.match(/^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
    if (m) return { kind: 'labelValue', label: m[1], metric: identBefore(pre, top.i), prefix: '', from: pre.length, quote: null };
    return null;
  }
  if (top && top.c === '(') {
    const before = pre.slice(0, top.i);
    if (/\b(by|without|on|ignoring|group_left|group_right)\s*$/.test(before)) {
      const inner = pre.slice(top.i + 1);
      const seg = inner.slice(inner.lastIndexOf(',') + 1);
      const m = seg.match(/^\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/);
      if (!m) return null;
      const prefix = m[1] || '';
      return { kind: 'labelName', metric: '', prefix, from: pre.length - prefix.length };
    }
  }
  if (top && top.c === '[') return null;
  const m = pre.match(/(^|[^a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)$/);
  if (!m) return null;
  return { kind: 'metric', prefix: m[2], from: pre.length - m[2].length };
}

function rankMatches(list, prefix, limit = 200) {
  const p = prefix.toLowerCase();
  const exact = [];
  const starts = [];
  const contains = [];
  for (const item of list) {
    const t = item.text.toLowerCase();
    if (t === p) exact.push(item);
    else if (t.startsWith(p)) starts.push(item);
    else if (p && t.includes(p)) contains.push(item);
  }
  return exact.concat(starts, contains).slice(0, limit);
}

async function candidates(ctx) {
  if (ctx.kind === 'metric') {
    const [names, meta] = await Promise.all([metricNames(), metricMeta()]);
    const items = names.map((n) => {
      const md = meta[n] && meta[n][0];
      return { text: n, type: md && md.type ? md.type : 'metric', help: md ? md.help : '', kind: 'metric' };
    });
    FUNCTIONS.forEach((f) => items.push({ text: f, type: 'function', kind: 'function' }));
    AGGREGATIONS.forEach((f) => items.push({ text: f, type: 'aggregation', kind: 'function' }));
    KEYWORDS.forEach((f) => items.push({ text: f, type: 'keyword', kind: 'keyword' }));
    if (!ctx.prefix) return [];
    return rankMatches(items, ctx.prefix);
  }
  if (ctx.kind === 'labelName') {
    const names = await labelNames(ctx.metric);
    return rankMatches(names.map((n) => ({ text: n, type: 'label', kind: 'label' })), ctx.prefix);
  }
  if (ctx.kind === 'labelValue') {
    const vals = await labelValues(ctx.label, ctx.metric);
    return rankMatches(vals.map((v) => ({ text: v, type: 'value', kind: 'value' })), ctx.prefix);
  }
  return [];
}

/** Attach autocompletion to a textarea. onExecute is called for Shift/Ctrl+Enter (and Enter without a menu open). */
function attachAutocomplete(input, menu, onExecute) {
  let items = [];
  let active = 0;
  let ctx = null;
  let seq = 0;

  const close = () => {
    items = [];
    ctx = null;
    menu.hidden = true;
    replaceChildren(menu);
    input.setAttribute('aria-expanded', 'false');
  };
  const isOpen = () => !menu.hidden && items.length > 0;

  const render = () => {
    replaceChildren(
      menu,
      items.map((it, i) =>
        h(
          'li',
          {
            class: 'ac-item' + (i === active ? ' active' : ''),
            role: 'option',
            'aria-selected': i === active ? 'true' : 'false',
            'data-value': it.text,
            title: it.help || '',
            onmousedown: (ev) => {
              ev.preventDefault();
              active = i;
              accept();
            },
          },
          h('span', { class: 'ac-text' }, it.text),
          h('span', { class: 'ac-type ac-type-' + it.kind }, it.type)
        )
      )
    );
    menu.hidden = items.length === 0;
    input.setAttribute('aria-expanded', items.length ? 'true' : 'false');
    const el = menu.children[active];
    if (el && el.scrollIntoView) el.scrollIntoView({ block: 'nearest' });
  };

  const update = async () => {
    const my = ++seq;
    const pos = input.selectionStart;
    if (pos !== input.selectionEnd) return close();
    const c = completionContext(input.value.slice(0, pos));
    if (!c) return close();
    const list = await candidates(c);
    if (my !== seq) return;
    // Hide a menu that only repeats exactly what was typed.
    if (list.length === 1 && list[0].text === c.prefix && c.kind !== 'labelValue') return close();
    ctx = c;
    items = list;
    active = 0;
    render();
  };

  function accept() {
    if (!ctx || !items[active]) return;
    const it = items[active];
    const pos = input.selectionStart;
    const val = input.value;
    let insert = it.text;
    let caretBack = 0;
    const after = val.slice(pos);
    if (ctx.kind === 'labelValue') {
      const escaped = escapeLabelValue(it.text);
      if (ctx.quote) {
        insert = escaped + (after.startsWith(ctx.quote) ? '' : ctx.quote);
      } else insert = '"' + escaped + '"';
    } else if (it.kind === 'function' && !/^\s*\(/.test(after)) {
      insert = it.text + '()';
      caretBack = 1;
    }
    // Replace the rest of the identifier after the cursor too.
    let end = pos;
    if (ctx.kind !== 'labelValue') {
      const m = after.match(/^[a-zA-Z0-9_:]*/);
      end = pos + (m ? m[0].length : 0);
    } else if (ctx.quote) {
      const m = after.match(/^(?:[^"'`\\]|\\.)*/);
      end = pos + (m ? m[0].length : 0);
      if (val[end] === ctx.quote) {
        insert = escapeLabelValue(it.text);
        end += 0;
        caretBack = -1; // move past the closing quote
      }
    }
    const nv = val.slice(0, ctx.from) + insert + val.slice(end);
    input.value = nv;
    let caret = ctx.from + insert.length - caretBack;
    if (caretBack < 0) caret = ctx.from + insert.length + 1;
    input.setSelectionRange(caret, caret);
    close();
    input.dispatchEvent(new Event('input', { bubbles: true }));
    // Do not immediately re-open for completed items, except inside braces / function calls.
    if (it.kind === 'function' || ctx === null) update();
  }

  const debounced = debounce(update, 80);
  input.addEventListener('input', () => {
    debounced();
  });
  input.addEventListener('click', () => debounced());
  input.addEventListener('blur', () => {
    debounced.cancel();
    seq++;
    setTimeout(close, 0);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.shiftKey || ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      debounced.cancel();
      seq++;
      close();
      onExecute();
      return;
    }
    if (isOpen()) {
      if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        active = (active + 1) % items.length;
        render();
        return;
      }
      if (ev.key === 'ArrowUp') {
        ev.preventDefault();
        active = (active - 1 + items.length) % items.length;
        render();
        return;
      }
      if (ev.key === 'Enter' || ev.key === 'Tab') {
        ev.preventDefault();
        const it = items[active];
        if (ev.key === 'Enter' && ctx && it && it.text === ctx.prefix && ctx.kind !== 'labelValue' && it.kind !== 'function') {
          // Accepting would change nothing: treat Enter as "execute".
          debounced.cancel();
          seq++;
          close();
          onExecute();
          return;
        }
        accept();
        return;
      }
      if (ev.key === 'Escape') {
        ev.preventDefault();
        ev.stopPropagation();
        debounced.cancel();
        seq++;
        close();
        return;
      }
      if (ev.key === 'PageDown' || ev.key === 'PageUp') {
        ev.preventDefault();
        active = Math.max(0, Math.min(items.length - 1, active + (ev.key === 'PageDown' ? 10 : -10)));
        render();
        return;
      }
    } else if (ev.key === 'Enter' && !ev.altKey) {
      // Enter without an open menu executes (as in Prometheus); Alt+Enter inserts a newline.
      ev.preventDefault();
      debounced.cancel();
      seq++;
      onExecute();
      return;
    } else if (ev.key === 'Enter' && ev.altKey) {
      ev.preventDefault();
      const p = input.selectionStart;
      input.setRangeText('\n', p, input.selectionEnd, 'end');
      input.dispatchEvent(new Event('input', { bubbles: true }));
    } else if (ev.key === 'Escape') {
      close();
    } else if (ev.key === ' ' && ev.ctrlKey) {
      ev.preventDefault();
      update();
    }
  });
  input.addEventListener('keyup', (ev) => {
    if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight' || ev.key === 'Home' || ev.key === 'End') debounced();
  });
  return { close, update };
}

// ---------- Panel state & URL ----------

function defaultPanel() {
  return {
    expr: '', tab: TAB_TABLE, range_input: '1h', end_input: '', moment_input: '', step_input: '', stacked: 0, show_exemplars: 0,
  };
}

/** Parse gN.* parameters from a query string into panel option objects. */
export function parsePanels(search) {
  const params = new URLSearchParams(search);
  const byIdx = new Map();
  for (const [k, v] of params) {
    const m = k.match(/^g(\d+)\.(.+)$/);
    if (!m) continue;
    const idx = parseInt(m[1], 10);
    if (!byIdx.has(idx)) byIdx.set(idx, defaultPanel());
    const p = byIdx.get(idx);
    switch (m[2]) {
      case 'expr': p.expr = v; break;
      case 'tab': p.tab = v === '0' || v === 'graph' ? TAB_GRAPH : TAB_TABLE; break;
      case 'range_input': if (parseDuration(v)) p.range_input = v; break;
      case 'end_input': p.end_input = v; break;
      case 'moment_input': p.moment_input = v; break;
      case 'step_input': p.step_input = v; break;
      case 'stacked': p.stacked = v === '1' ? 1 : 0; break;
      case 'show_exemplars': p.show_exemplars = v === '1' ? 1 : 0; break;
      default: break;
    }
  }
  return Array.from(byIdx.keys()).sort((a, b) => a - b).map((k) => byIdx.get(k));
}

function panelsToSearch(panels) {
  const u = new URLSearchParams();
  panels.forEach((p, i) => {
    const o = p.opts;
    u.set(`g${i}.expr`, o.expr);
    u.set(`g${i}.tab`, String(o.tab));
    u.set(`g${i}.stacked`, String(o.stacked));
    u.set(`g${i}.show_exemplars`, o.show_exemplars ? '1' : '0');
    u.set(`g${i}.range_input`, o.range_input);
    if (o.end_input) u.set(`g${i}.end_input`, o.end_input);
    if (o.moment_input) u.set(`g${i}.moment_input`, o.moment_input);
    if (o.step_input) u.set(`g${i}.step_input`, o.step_input);
  });
  return '?' + u.toString().replace(/\+/g, '%20');
}

// ---------- Panel ----------

class Panel {
  constructor(page, opts) {
    this.page = page;
    this.opts = Object.assign(defaultPanel(), opts || {});
    this.abort = null;
    this.lastGraph = null;
    this.el = this.build();
    this.syncTabs();
  }

  build() {
    const o = this.opts;
    this.input = h('textarea', {
      class: 'expr-input',
      rows: '1',
      spellcheck: 'false',
      autocomplete: 'off',
      autocapitalize: 'off',
      placeholder: 'Expression (press Shift+Enter for newlines)',
      'aria-label': 'Expression',
      'aria-autocomplete': 'list',
      'aria-expanded': 'false',
      value: o.expr,
    });
    this.input.placeholder = 'Expression (Enter or Shift+Enter to execute)';
    this.menu = h('ul', { class: 'autocomplete', role: 'listbox', hidden: true });
    this.input.addEventListener('input', () => {
      this.opts.expr = this.input.value;
      this.autosize();
    });
    attachAutocomplete(this.input, this.menu, () => this.execute());

    this.executeBtn = h('button', { class: 'btn btn-primary execute-btn', type: 'button', onclick: () => this.execute() }, 'Execute');
    const formatBtn = h('button', { class: 'btn format-btn', type: 'button', title: 'Format expression', onclick: () => this.format() }, 'Format');
    const explorerBtn = h('button', { class: 'btn metrics-explorer-btn', type: 'button', title: 'Open metrics explorer', onclick: () => this.openExplorer() }, 'Metrics');
    this.errorSlot = h('div', { class: 'error-slot' });

    this.tabBtns = {
      [TAB_TABLE]: h('button', { class: 'tab tab-table', type: 'button', 'data-tab': 'table', 'data-tab-index': '1', role: 'tab', onclick: () => this.setTab(TAB_TABLE) }, 'Table'),
      [TAB_GRAPH]: h('button', { class: 'tab tab-graph', type: 'button', 'data-tab': 'graph', 'data-tab-index': '0', role: 'tab', onclick: () => this.setTab(TAB_GRAPH) }, 'Graph'),
    };

    // Table controls.
    this.momentInput = h('input', { class: 'moment-input', type: 'text', placeholder: 'Evaluation time (empty = now)', value: o.moment_input, 'aria-label': 'Evaluation time' });
    this.momentInput.addEventListener('change', () => {
      const v = this.momentInput.value.trim();
      if (v && parseTime(v) === null) {
        this.momentInput.value = this.opts.moment_input;
        return;
      }
      this.opts.moment_input = v ? formatTime(parseTime(v)) : '';
      this.momentInput.value = this.opts.moment_input;
      this.execute();
    });
    const shiftMoment = (dir) => {
      const base = parseTime(this.opts.moment_input) ?? Date.now();
      const range = parseDuration(this.opts.range_input) || 3600e3;
      this.opts.moment_input = formatTime(base + dir * range);
      this.momentInput.value = this.opts.moment_input;
      this.execute();
    };
    const tableControls = h('div', { class: 'controls table-controls' },
      h('button', { class: 'btn btn-sm moment-minus', type: 'button', title: 'Earlier', onclick: () => shiftMoment(-1) }, '−'),
      this.momentInput,
      h('button', { class: 'btn btn-sm moment-plus', type: 'button', title: 'Later', onclick: () => shiftMoment(1) }, '+'),
      h('button', { class: 'btn btn-sm moment-clear', type: 'button', title: 'Reset to now', onclick: () => { this.opts.moment_input = ''; this.momentInput.value = ''; this.execute(); } }, '×'),
    );
    this.tableStats = h('div', { class: 'stats' });
    this.tableOut = h('div', { class: 'table-out' });
    this.tablePane = h('div', { class: 'tab-pane table-pane' }, tableControls, this.tableStats, this.tableOut);

    // Graph controls.
    this.rangeInput = h('input', { class: 'range-input', type: 'text', value: o.range_input, 'aria-label': 'Range', size: '6' });
    this.rangeInput.addEventListener('change', () => {
      const ms = parseDuration(this.rangeInput.value);
      if (!ms || ms <= 0) this.rangeInput.value = this.opts.range_input;
      else {
        this.opts.range_input = formatDuration(ms);
        this.rangeInput.value = this.opts.range_input;
        this.execute();
      }
    });
    this.endInput = h('input', { class: 'end-input', type: 'text', placeholder: 'End time (empty = now)', value: o.end_input, 'aria-label': 'End time' });
    this.endInput.addEventListener('change', () => {
      const v = this.endInput.value.trim();
      if (v && parseTime(v) === null) {
        this.endInput.value = this.opts.end_input;
        return;
      }
      this.opts.end_input = v ? formatTime(parseTime(v)) : '';
      this.endInput.value = this.opts.end_input;
      this.execute();
    });
    this.stepInput = h('input', { class: 'step-input', type: 'text', placeholder: 'Res. (s)', value: o.step_input, 'aria-label': 'Resolution in seconds', size: '8' });
    this.stepInput.addEventListener('change', () => {
      const v = this.stepInput.value.trim();
      if (v && !(parseDuration(v) > 0)) {
        this.stepInput.value = this.opts.step_input;
        return;
      }
      this.opts.step_input = v;
      this.execute();
    });
    this.unstackedBtn = h('button', { class: 'btn btn-sm unstacked-btn', type: 'button', title: 'Show unstacked line graph', onclick: () => this.setStacked(0) }, 'Lines');
    this.stackedBtn = h('button', { class: 'btn btn-sm stacked-btn', type: 'button', title: 'Show stacked graph', onclick: () => this.setStacked(1) }, 'Stacked');
    this.exemplarsCb = h('input', { type: 'checkbox', class: 'show-exemplars-input', checked: !!o.show_exemplars });
    this.exemplarsCb.addEventListener('change', () => this.setShowExemplars(this.exemplarsCb.checked));
    const graphControls = h('div', { class: 'controls graph-controls' },
      h('div', { class: 'input-group' },
        h('button', { class: 'btn btn-sm range-minus', type: 'button', title: 'Decrease range', onclick: () => this.stepRange(-1) }, '−'),
        this.rangeInput,
        h('button', { class: 'btn btn-sm range-plus', type: 'button', title: 'Increase range', onclick: () => this.stepRange(1) }, '+'),
      ),
      h('div', { class: 'input-group' },
        h('button', { class: 'btn btn-sm end-minus', type: 'button', title: 'Move back', onclick: () => this.shiftEnd(-1) }, '‹'),
        this.endInput,
        h('button', { class: 'btn btn-sm end-plus', type: 'button', title: 'Move forward', onclick: () => this.shiftEnd(1) }, '›'),
        h('button', { class: 'btn btn-sm end-clear', type: 'button', title: 'Reset end time to now', onclick: () => { this.opts.end_input = ''; this.endInput.value = ''; this.execute(); } }, '×'),
      ),
      h('div', { class: 'input-group' }, this.stepInput),
      h('div', { class: 'btn-group stack-toggle', role: 'group' }, this.unstackedBtn, this.stackedBtn),
      h('label', { class: 'checkbox show-exemplars', title: 'Show exemplars of the selected series' }, this.exemplarsCb, ' Show exemplars'),
    );
    this.graphStats = h('div', { class: 'stats' });
    this.exemplarWarning = h('div', { class: 'exemplar-warning-slot' });
    this.graphOut = h('div', { class: 'graph-out' });
    this.graphPane = h('div', { class: 'tab-pane graph-pane' }, graphControls, this.graphStats, this.exemplarWarning, this.graphOut);

    this.removeBtn = h('button', { class: 'btn btn-link remove-panel', type: 'button', onclick: () => this.page.removePanel(this) }, 'Remove panel');

    const el = h('section', { class: 'panel query-panel' },
      h('div', { class: 'expr-row' },
        h('div', { class: 'expr-wrap' }, this.input, this.menu),
        h('div', { class: 'expr-buttons' }, explorerBtn, formatBtn, this.executeBtn),
      ),
      this.errorSlot,
      h('div', { class: 'tabs', role: 'tablist' }, this.tabBtns[TAB_TABLE], this.tabBtns[TAB_GRAPH]),
      h('div', { class: 'tab-content' }, this.tablePane, this.graphPane),
      h('div', { class: 'panel-footer' }, this.removeBtn),
    );
    this.syncTabs();
    this.syncStacked();
    return el;
  }

  setIndex(i) {
    this.el.setAttribute('data-panel-index', String(i));
    this.el.id = 'panel-' + i;
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(300, this.input.scrollHeight + 2) + 'px';
  }

  syncTabs() {
    const t = this.opts.tab;
    for (const k of [TAB_GRAPH, TAB_TABLE]) {
      const b = this.tabBtns[k];
      b.classList.toggle('active', t === k);
      b.setAttribute('aria-selected', t === k ? 'true' : 'false');
    }
    this.el && this.el.setAttribute('data-active-tab', t === TAB_GRAPH ? 'graph' : 'table');
    this.tablePane.hidden = t !== TAB_TABLE;
    this.graphPane.hidden = t !== TAB_GRAPH;
  }

  syncStacked() {
    this.stackedBtn.classList.toggle('active', !!this.opts.stacked);
    this.unstackedBtn.classList.toggle('active', !this.opts.stacked);
    this.stackedBtn.setAttribute('aria-pressed', this.opts.stacked ? 'true' : 'false');
    this.unstackedBtn.setAttribute('aria-pressed', this.opts.stacked ? 'false' : 'true');
  }

  setTab(t) {
    if (this.opts.tab === t) return;
    this.opts.tab = t;
    this.syncTabs();
    this.page.updateURL();
    if (this.opts.expr.trim()) this.execute();
  }

  setStacked(v) {
    this.opts.stacked = v ? 1 : 0;
    this.syncStacked();
    this.page.updateURL();
    if (this.lastGraph) this.drawGraph(this.lastGraph);
  }

  setShowExemplars(v) {
    this.opts.show_exemplars = v ? 1 : 0;
    this.exemplarsCb.checked = !!v;
    this.page.updateURL();
    if (v) {
      if (this.opts.tab === TAB_GRAPH && this.opts.expr.trim()) this.execute();
      return;
    }
    replaceChildren(this.exemplarWarning);
    if (this.lastGraph) {
      this.lastGraph.exemplars = null;
      this.redraw();
    }
  }

  stepRange(dir) {
    const cur = (parseDuration(this.opts.range_input) || 3600e3) / 1000;
    let next;
    if (dir < 0) {
      next = RANGE_STEPS.slice().reverse().find((s) => s < cur) || RANGE_STEPS[0];
    } else {
      next = RANGE_STEPS.find((s) => s > cur) || RANGE_STEPS[RANGE_STEPS.length - 1];
    }
    this.opts.range_input = formatDuration(next * 1000);
    this.rangeInput.value = this.opts.range_input;
    this.execute();
  }

  shiftEnd(dir) {
    const range = parseDuration(this.opts.range_input) || 3600e3;
    const base = parseTime(this.opts.end_input) ?? Date.now();
    this.opts.end_input = formatTime(base + (dir * range) / 2);
    this.endInput.value = this.opts.end_input;
    this.execute();
  }

  showError(msg) {
    replaceChildren(this.errorSlot, msg ? errorBox(msg, 'query-error') : null);
  }

  async format() {
    const expr = this.input.value.trim();
    if (!expr) return;
    try {
      const out = await api('format_query', { query: expr });
      if (typeof out === 'string') {
        this.input.value = out;
        this.opts.expr = out;
        this.autosize();
      }
      this.showError(null);
    } catch (e) {
      this.showError(e.message);
    }
  }

  async openExplorer() {
    const filter = h('input', { class: 'explorer-filter', type: 'search', placeholder: 'Filter metrics…', 'aria-label': 'Filter metrics' });
    const list = h('ul', { class: 'explorer-list' });
    const close = () => overlay.remove();
    const overlay = h('div', { class: 'modal-backdrop', onclick: (ev) => { if (ev.target === overlay) close(); } },
      h('div', { class: 'modal', role: 'dialog', 'aria-label': 'Metrics explorer' },
        h('div', { class: 'modal-header' }, h('h3', null, 'Metrics explorer'), h('button', { class: 'btn btn-link modal-close', type: 'button', onclick: close }, '×')),
        filter, list));
    overlay.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
    document.body.appendChild(overlay);
    filter.focus();
    const names = await metricNames();
    const draw = () => {
      const f = filter.value.toLowerCase();
      const shown = names.filter((n) => n.toLowerCase().includes(f)).slice(0, 2000);
      replaceChildren(list, shown.length ? shown.map((n) => h('li', {
        class: 'explorer-item',
        onclick: () => {
          const p = this.input.selectionStart ?? this.input.value.length;
          this.input.setRangeText(n, p, this.input.selectionEnd ?? p, 'end');
          this.opts.expr = this.input.value;
          close();
          this.input.focus();
        },
      }, n)) : h('li', { class: 'muted' }, 'No metrics found'));
    };
    filter.addEventListener('input', draw);
    draw();
  }

  execute() {
    this.opts.expr = this.input.value;
    this.page.updateURL(true);
    const expr = this.opts.expr.trim();
    if (this.abort) this.abort.abort();
    if (!expr) {
      this.showError(null);
      replaceChildren(this.tableOut, h('div', { class: 'muted' }, 'No data queried yet'));
      replaceChildren(this.graphOut, h('div', { class: 'muted' }, 'No data queried yet'));
      replaceChildren(this.tableStats);
      replaceChildren(this.graphStats);
      replaceChildren(this.exemplarWarning);
      return Promise.resolve();
    }
    const ctrl = new AbortController();
    this.abort = ctrl;
    this.el.classList.add('loading-panel');
    this.executeBtn.disabled = true;
    const done = () => {
      if (this.abort === ctrl) {
        this.el.classList.remove('loading-panel');
        this.executeBtn.disabled = false;
        this.abort = null;
      }
    };
    const p = this.opts.tab === TAB_GRAPH ? this.runGraph(expr, ctrl) : this.runTable(expr, ctrl);
    return p.then(done, (e) => {
      if (e && e.name === 'AbortError') return;
      done();
      this.showError(e && e.message ? e.message : String(e));
    });
  }

  async runTable(expr, ctrl) {
    const t0 = performance.now();
    const timeMs = parseTime(this.opts.moment_input);
    const params = { query: expr };
    if (timeMs !== null) params.time = (timeMs / 1000).toFixed(3);
    let data;
    try {
      data = await api('query', params, { signal: ctrl.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replaceChildren(this.tableOut);
      replaceChildren(this.tableStats);
      throw e;
    }
    if (this.abort !== ctrl) return;
    const ms = Math.round(performance.now() - t0);
    this.showError(null);
    this.renderTable(data, ms);
  }

  renderTable(data, loadMs) {
    const rt = data && data.resultType;
    const res = data && data.result;
    let count = 0;
    let body;
    const rows = [];
    if (rt === 'vector' || rt === 'matrix') {
      count = res.length;
      for (const r of res.slice(0, MAX_TABLE_ROWS)) {
        let valCell;
        if (rt === 'vector') {
          valCell = h('td', { class: 'value' }, r.value ? r.value[1] : r.histogram ? bucketChart(r.histogram[1]) : '');
        } else {
          const vals = (r.values || []).map(([t, v]) => h('div', { class: 'sample' }, `${v} @${t}`));
          (r.histograms || []).forEach(([t, hv]) => vals.push(h('div', { class: 'sample' }, `${histText(hv)} @${t}`)));
          valCell = h('td', { class: 'value' }, vals);
        }
        rows.push(h('tr', { class: 'series-row result-row' }, h('td', { class: 'series' }, seriesNode(r.metric)), valCell));
      }
    } else if (rt === 'scalar' || rt === 'string') {
      count = 1;
      rows.push(h('tr', { class: 'series-row result-row' }, h('td', { class: 'series' }, rt), h('td', { class: 'value' }, String(res[1]))));
    }
    if (!rows.length) {
      body = h('div', { class: 'empty-result' }, 'Empty query result');
    } else {
      body = h('div', null,
        count > MAX_TABLE_ROWS ? h('div', { class: 'truncation-note warning' }, `Warning: Fetched ${count} series, only displaying the first ${MAX_TABLE_ROWS}.`) : null,
        h('table', { class: 'data-table result-table', 'data-result-type': rt }, h('tbody', null, rows)));
    }
    replaceChildren(this.tableStats,
      h('span', { class: 'load-time' }, `Load time: ${loadMs}ms`),
      h('span', { class: 'result-type' }, `Result type: ${rt}`),
      h('span', { class: 'result-count' }, `Result series: ${count}`),
      warningsOf(data));
    replaceChildren(this.tableOut, body);
  }

  async runGraph(expr, ctrl) {
    const t0 = performance.now();
    const rangeMs = parseDuration(this.opts.range_input) || 3600e3;
    const endMs = parseTime(this.opts.end_input) ?? Date.now();
    const startMs = endMs - rangeMs;
    let stepS = this.opts.step_input ? (parseDuration(this.opts.step_input) || 0) / 1000 : 0;
    if (!(stepS > 0)) stepS = Math.max(Math.floor(rangeMs / 1000 / 250), 1);
    this.stepInput.placeholder = `Res. (${stepS}s)`;
    // Start and end on the step's grid, as Grafana aligns them: the steps stay put from
    // one refresh to the next, and a 1h step lands on whole hours (downsampled windows).
    const stepMs = stepS * 1000;
    const start = ((Math.floor(startMs / stepMs) * stepMs) / 1000).toFixed(3);
    const end = ((Math.floor(endMs / stepMs) * stepMs) / 1000).toFixed(3);
    // Exemplars are asked for alongside the range query; their failure is only a warning.
    const exemplarsP = this.opts.show_exemplars
      ? api('query_exemplars', { query: expr, start, end }, { signal: ctrl.signal }).then(
        (d) => ({ data: Array.isArray(d) ? d : [] }),
        (e) => ({ error: e })
      )
      : Promise.resolve(null);
    let data;
    try {
      data = await api('query_range', { query: expr, start, end, step: String(stepS) }, { signal: ctrl.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      this.lastGraph = null;
      replaceChildren(this.graphOut);
      replaceChildren(this.graphStats);
      replaceChildren(this.exemplarWarning);
      throw e;
    }
    const ex = await exemplarsP;
    if (this.abort !== ctrl) return;
    const ms = Math.round(performance.now() - t0);
    this.showError(null);
    const result = data && data.resultType === 'matrix' ? data.result : [];
    replaceChildren(this.graphStats,
      h('span', { class: 'load-time' }, `Load time: ${ms}ms`),
      h('span', { class: 'resolution' }, `Resolution: ${stepS}s`),
      h('span', { class: 'result-count' }, `Result series: ${result.length}`),
      warningsOf(data));
    let exemplars = null;
    let exWarning = null;
    if (ex && this.opts.show_exemplars) {
      if (ex.error) {
        if (ex.error.name !== 'AbortError') exWarning = 'Warning: could not load exemplars: ' + (ex.error.message || String(ex.error));
      } else {
        exemplars = ex.data;
        const n = exemplars.reduce((acc, se) => acc + ((se && se.exemplars) || []).length, 0);
        if (n > MAX_EXEMPLARS) exWarning = `Warning: fetched ${n} exemplars, only displaying the first ${MAX_EXEMPLARS}.`;
      }
    }
    replaceChildren(this.exemplarWarning, exWarning ? h('div', { class: 'warning exemplar-warning' }, exWarning) : null);
    if (data && data.resultType !== 'matrix') {
      this.lastGraph = null;
      replaceChildren(this.graphOut, errorBox(`Query result is of type ${data.resultType}, cannot graph it (use the Table tab).`));
      return;
    }
    this.lastGraph = { result, start: startMs, end: endMs, step: stepS * 1000, exemplars };
    this.drawGraph(this.lastGraph);
  }

  drawGraph(g) {
    const exemplars = this.opts.show_exemplars && g.exemplars ? g.exemplars : null;
    const hasExemplars = !!exemplars && exemplars.some((se) => se && se.exemplars && se.exemplars.length);
    if (!g.result.length && !hasExemplars) {
      replaceChildren(this.graphOut, h('div', { class: 'empty-result' }, 'Empty query result'));
      return;
    }
    // Native histogram series are drawn as heatmaps; float series as lines.
    const floats = g.result.filter((r) => r.values && r.values.length);
    const maps = heatmaps(g.result);
    const parts = [];
    if (floats.length || !maps.length || hasExemplars) {
      parts.push(renderChart({
        result: floats, start: g.start, end: g.end, step: g.step, stacked: !!this.opts.stacked,
        exemplars: hasExemplars ? exemplars : null, maxExemplars: MAX_EXEMPLARS,
      }));
    }
    parts.push(...maps);
    replaceChildren(this.graphOut, ...parts);
  }

  redraw() {
    if (this.lastGraph && this.opts.tab === TAB_GRAPH) this.drawGraph(this.lastGraph);
  }
}

function histText(hv) {
  if (!hv) return '';
  return `{count: ${hv.count}, sum: ${hv.sum}}`;
}

// The query's warnings and infos (an info says, e.g., which downsampled resolution
// answered).
function warningsOf(data) {
  const w = (data && data.__warnings) || [];
  const i = (data && data.__infos) || [];
  if (!w.length && !i.length) return null;
  return h('div', null,
    w.length ? h('div', { class: 'warning' }, w.map((x) => h('div', null, 'Warning: ' + x))) : null,
    i.length ? h('div', { class: 'query-info muted' }, i.map((x) => h('div', null, 'Info: ' + x))) : null);
}

// ---------- Page ----------

class GraphPage {
  constructor(root) {
    this.root = root;
    this.panels = [];
    this.list = h('div', { class: 'panels' });
    const localCb = h('input', { type: 'checkbox', id: 'use-local-time', class: 'use-local-time', checked: useLocalTime() });
    localCb.addEventListener('change', () => {
      setUseLocalTime(localCb.checked);
      for (const p of this.panels) {
        p.redraw();
      }
    });
    this.addBtn = h('button', { class: 'btn add-panel', id: 'add-panel', type: 'button', onclick: () => this.addPanel(null, true) }, 'Add panel');
    replaceChildren(root,
      h('div', { class: 'page graph-page' },
        h('div', { class: 'page-options' }, h('label', { class: 'checkbox' }, localCb, ' Use local time')),
        this.list,
        h('div', { class: 'add-panel-row' }, this.addBtn)));
    this.onResize = debounce(() => this.panels.forEach((p) => p.redraw()), 150);
    window.addEventListener('resize', this.onResize);
  }

  load(search) {
    let opts = parsePanels(search);
    if (!opts.length) opts = [defaultPanel()];
    this.panels.forEach((p) => p.abort && p.abort.abort());
    this.panels = [];
    replaceChildren(this.list);
    opts.forEach((o) => this.addPanel(o, false));
    this.updateURL();
    this.panels.forEach((p) => {
      p.autosize();
      if (p.opts.expr.trim()) p.execute();
    });
    if (this.panels.length === 1 && !this.panels[0].opts.expr) this.panels[0].input.focus();
  }

  addPanel(opts, focus) {
    const p = new Panel(this, opts);
    this.panels.push(p);
    this.list.appendChild(p.el);
    this.reindex();
    if (focus) {
      this.updateURL();
      p.input.focus();
    }
    return p;
  }

  removePanel(p) {
    if (p.abort) p.abort.abort();
    this.panels = this.panels.filter((x) => x !== p);
    p.el.remove();
    if (!this.panels.length) this.addPanel(null, true);
    this.reindex();
    this.updateURL();
  }

  reindex() {
    this.panels.forEach((p, i) => p.setIndex(i));
  }

  updateURL() {
    const search = panelsToSearch(this.panels);
    if (location.pathname === '/graph' && location.search !== search) {
      history.replaceState(history.state, '', '/graph' + search);
    }
  }

  destroy() {
    window.removeEventListener('resize', this.onResize);
    this.panels.forEach((p) => p.abort && p.abort.abort());
    document.querySelectorAll('.modal-backdrop').forEach((m) => m.remove());
  }
}

/** Render the graph page into root; returns a cleanup function. */
export function renderGraph(root) {
  const page = new GraphPage(root);
  page.load(location.search);
  return () => page.destroy();
}

// Exposed for tests/debugging.
export { completionContext, formatSeries };
