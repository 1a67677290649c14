// SVG time-series chart for range query (matrix) results.
import { h, s, formatSI, formatSeries, seriesNode, parseValue, useLocalTime, formatTime, escapeLabelValue } from './util.js';

const PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#3366cc', '#dc3912', '#109618', '#990099', '#0099c6', '#dd4477',
  '#66aa00', '#b82e2e', '#316395', '#994499',
];

/** Distinct color for series index i. */
export function seriesColor(i) {
  if (i < PALETTE.length) return PALETTE[i];
  const hue = (i * 137.508) % 360;
  return `hsl(${hue.toFixed(0)}, 65%, 45%)`;
}

// Exemplars whose series is not among the graphed ones.
const EXEMPLAR_COLOR = '#495057';
const EXEMPLAR_RADIUS = 5;

/**
 * Index of the graphed series an exemplar belongs to: the one with the same labels, else the
 * only one whose labels all appear in the exemplar's series labels (e.g. `rate(x[5m])` drops
 * the metric name); -1 when none or several match.
 */
function exemplarSeriesIndex(series, seriesLabels) {
  const keys = Object.keys(seriesLabels);
  const exact = series.find((sr) => {
    const mk = Object.keys(sr.metric);
    return mk.length === keys.length && mk.every((k) => seriesLabels[k] === sr.metric[k]);
  });
  if (exact) return exact.index;
  const subset = series.filter((sr) => Object.keys(sr.metric).every((k) => seriesLabels[k] === sr.metric[k]));
  return subset.length === 1 ? subset[0].index : -1;
}

const X_INTERVALS = [
  1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3,
  3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3,
  14 * 86400e3, 30 * 86400e3, 90 * 86400e3, 180 * 86400e3, 365 * 86400e3,
];

function niceNum(range, round) {
  const exp = Math.floor(Math.log10(range));
  const f = range / Math.pow(10, exp);
  let nf;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * Math.pow(10, exp);
}

/** Nice y-axis ticks covering [min, max]. */
export function niceTicks(min, max, count = 5) {
  if (!isFinite(min) || !isFinite(max)) return { min: 0, max: 1, ticks: [0, 1] };
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const range = niceNum(max - min, false);
  const step = niceNum(range / Math.max(1, count - 1), true);
  const nmin = Math.floor(min / step) * step;
  const nmax = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = nmin; v <= nmax + step / 2; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : parseFloat(v.toPrecision(12)));
  return { min: nmin, max: nmax, ticks, step };
}

function tzOffsetMs(t) {
  return useLocalTime() ? -new Date(t).getTimezoneOffset() * 60000 : 0;
}

function xTicks(start, end, approx) {
  const span = end - start;
  let interval = X_INTERVALS[X_INTERVALS.length - 1];
  for (const iv of X_INTERVALS) {
    if (span / iv <= approx) {
      interval = iv;
      break;
    }
  }
  const ticks = [];
  const off = tzOffsetMs(start);
  let t = Math.ceil((start + off) / interval) * interval - off;
  for (; t <= end && ticks.length < 200; t += interval) ticks.push(t);
  return { interval, ticks };
}

function fmtXTick(t, interval, span) {
  const full = formatTime(t); // YYYY-MM-DD HH:MM:SS
  if (interval >= 86400e3) return full.slice(0, 10);
  const time = interval < 60e3 ? full.slice(11, 19) : full.slice(11, 16);
  if (span > 86400e3) return full.slice(5, 10) + ' ' + time;
  return time;
}

function lowerBound(arr, x, key) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((key ? arr[mid][key] : arr[mid]) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Render a chart. opts: {result: matrix result, start, end, step (ms), stacked, height,
 * exemplars: query_exemplars data ([{seriesLabels, exemplars: [{labels, value, timestamp}]}]),
 * maxExemplars}. Returns the root element (div.chart[data-series-count]).
 */
export function renderChart(opts) {
  const { result = [], start, end, step, stacked = false } = opts;
  const height = opts.height || 360;
  const series = result.map((r, i) => {
    const pts = (r.values || []).map(([t, v]) => ({ t: Math.round(t * 1000), v: parseValue(v) }));
    const map = new Map();
    pts.forEach((p) => map.set(p.t, p.v));
    return { metric: r.metric || {}, pts, map, color: seriesColor(i), index: i, label: formatSeries(r.metric) };
  });
  const exemplars = [];
  const maxExemplars = opts.maxExemplars || Infinity;
  for (const se of opts.exemplars || []) {
    const seriesLabels = (se && se.seriesLabels) || {};
    const index = exemplarSeriesIndex(series, seriesLabels);
    for (const e of (se && se.exemplars) || []) {
      if (exemplars.length >= maxExemplars) break;
      const v = parseValue(e.value);
      const t = Math.round(Number(e.timestamp) * 1000);
      if (!isFinite(v) || !isFinite(t)) continue;
      exemplars.push({
        t, v, raw: String(e.value), labels: e.labels || {}, seriesLabels, index,
        color: index >= 0 ? series[index].color : EXEMPLAR_COLOR,
      });
    }
  }

  const root = h('div', { class: 'chart', 'data-series-count': String(series.length) });
  const plotWrap = h('div', { class: 'chart-plot' });
  const tooltip = h('div', { class: 'chart-tooltip', hidden: true });
  const legend = h('div', { class: 'legend' });
  root.append(plotWrap, legend);

  let visible = null; // null = all; else Set of indices
  const isVisible = (i) => visible === null || visible.has(i);

  function draw() {
    const shown = series.filter((sr) => isVisible(sr.index));
    root.setAttribute('data-series-count', String(shown.length));
    root.setAttribute('data-stacked', stacked ? '1' : '0');
    const width = Math.max(300, Math.floor(plotWrap.clientWidth || root.clientWidth || opts.width || 1000));
    const margin = { left: 62, right: 16, top: 10, bottom: 26 };
    const pw = width - margin.left - margin.right;
    const ph = height - margin.top - margin.bottom;

    // Union of timestamps.
    const tsSet = new Set();
    shown.forEach((sr) => sr.pts.forEach((p) => tsSet.add(p.t)));
    const allTs = Array.from(tsSet).sort((a, b) => a - b);

    // Compute drawn values (stacked tops and bases).
    // Exemplars of shown series (and of series not graphed) within the time range.
    const tEnd = end > start ? end : start + 1;
    const shownEx = exemplars.filter((ex) => (ex.index < 0 || isVisible(ex.index)) && ex.t >= start && ex.t <= tEnd);
    root.setAttribute('data-exemplar-count', String(shownEx.length));

    const drawn = new Map(); // index -> [{t, y0, y1}] only finite points
    let ymin = Infinity;
    let ymax = -Infinity;
    if (stacked) {
      const base = new Map();
      for (const sr of shown) {
        const arr = [];
        for (const p of sr.pts) {
          if (!isFinite(p.v)) continue;
          const b = base.get(p.t) || 0;
          const top = b + p.v;
          base.set(p.t, top);
          arr.push({ t: p.t, y0: b, y1: top, v: p.v });
          ymin = Math.min(ymin, b, top);
          ymax = Math.max(ymax, b, top);
        }
        drawn.set(sr.index, arr);
      }
      if (ymin > 0) ymin = 0;
    } else {
      for (const sr of shown) {
        const arr = [];
        for (const p of sr.pts) {
          if (!isFinite(p.v)) continue;
          arr.push({ t: p.t, y0: 0, y1: p.v, v: p.v });
          ymin = Math.min(ymin, p.v);
          ymax = Math.max(ymax, p.v);
        }
        drawn.set(sr.index, arr);
      }
    }
    for (const ex of shownEx) {
      ymin = Math.min(ymin, ex.v);
      ymax = Math.max(ymax, ex.v);
    }
    if (!isFinite(ymin)) {
      ymin = 0;
      ymax = 1;
    }
    const yt = niceTicks(ymin, ymax, Math.max(3, Math.floor(ph / 45)));
    const x0 = start;
    const x1 = end > start ? end : start + 1;
    const X = (t) => margin.left + ((t - x0) / (x1 - x0)) * pw;
    const Y = (v) => margin.top + ph - ((v - yt.min) / (yt.max - yt.min || 1)) * ph;

    const svg = s('svg', {
      class: 'chart-svg',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': 'Time series graph',
    });
    const clipId = 'clip-' + Math.random().toString(36).slice(2);
    svg.appendChild(s('defs', null, s('clipPath', { id: clipId }, s('rect', { x: margin.left, y: margin.top - 1, width: pw, height: ph + 2 }))));

    // Y grid + labels.
    const gy = s('g', { class: 'axis y-axis' });
    const mag = Math.max(Math.abs(yt.min), Math.abs(yt.max));
    const prec = yt.step > 0 && mag > 0 ? Math.min(12, Math.max(3, Math.ceil(Math.log10(mag / yt.step)) + 1)) : 3;
    for (const v of yt.ticks) {
      const y = Y(v);
      gy.appendChild(s('line', { class: 'grid', x1: margin.left, x2: margin.left + pw, y1: y, y2: y }));
      gy.appendChild(s('text', { class: 'tick-label', x: margin.left - 6, y: y + 4, 'text-anchor': 'end' }, formatSI(v, prec)));
    }
    svg.appendChild(gy);

    // X grid + labels.
    const xt = xTicks(x0, x1, Math.max(2, Math.floor(pw / 110)));
    const gx = s('g', { class: 'axis x-axis' });
    for (const t of xt.ticks) {
      const x = X(t);
      gx.appendChild(s('line', { class: 'grid', x1: x, x2: x, y1: margin.top, y2: margin.top + ph }));
      gx.appendChild(s('text', { class: 'tick-label', x, y: margin.top + ph + 17, 'text-anchor': 'middle' }, fmtXTick(t, xt.interval, x1 - x0)));
    }
    svg.appendChild(gx);
    svg.appendChild(s('rect', { class: 'plot-border', x: margin.left, y: margin.top, width: pw, height: ph, fill: 'none' }));

    // Series.
    const maxGap = (step || 0) * 1.5;
    const gs = s('g', { class: 'series', 'clip-path': `url(#${clipId})` });
    const segmentsOf = (arr) => {
      const segs = [];
      let cur = [];
      for (let i = 0; i < arr.length; i++) {
        if (cur.length && step && arr[i].t - cur[cur.length - 1].t > maxGap) {
          segs.push(cur);
          cur = [];
        }
        cur.push(arr[i]);
      }
      if (cur.length) segs.push(cur);
      return segs;
    };
    for (const sr of shown) {
      const arr = drawn.get(sr.index) || [];
      const segs = segmentsOf(arr);
      let d = '';
      let area = '';
      for (const seg of segs) {
        d += seg.map((p, i) => (i ? 'L' : 'M') + X(p.t).toFixed(1) + ',' + Y(p.y1).toFixed(1)).join('');
        if (seg.length === 1) {
          // Single isolated point: draw a short dash so it is visible.
          const x = X(seg[0].t);
          d += 'M' + (x - 1.5).toFixed(1) + ',' + Y(seg[0].y1).toFixed(1) + 'L' + (x + 1.5).toFixed(1) + ',' + Y(seg[0].y1).toFixed(1);
        }
        if (stacked) {
          area += seg.map((p, i) => (i ? 'L' : 'M') + X(p.t).toFixed(1) + ',' + Y(p.y1).toFixed(1)).join('');
          for (let i = seg.length - 1; i >= 0; i--) area += 'L' + X(seg[i].t).toFixed(1) + ',' + Y(seg[i].y0).toFixed(1);
          area += 'Z';
        }
      }
      if (stacked && area) {
        gs.appendChild(s('path', { class: 'series-area', d: area, fill: sr.color, 'fill-opacity': '0.35', stroke: 'none', 'data-series-index': sr.index }));
      }
      gs.appendChild(
        s('path', {
          class: 'series-line',
          d: d || 'M0,0',
          stroke: sr.color,
          fill: 'none',
          'stroke-width': '1.5',
          'stroke-linejoin': 'round',
          'data-series-index': sr.index,
          'data-series': sr.label,
        })
      );
    }
    svg.appendChild(gs);

    // Hover elements.
    const hoverLine = s('line', { class: 'hover-line', y1: margin.top, y2: margin.top + ph, x1: -10, x2: -10, visibility: 'hidden' });
    const hoverDots = s('g', { class: 'hover-dots' });
    svg.appendChild(hoverLine);
    svg.appendChild(hoverDots);
    const overlay = s('rect', { class: 'hover-overlay', x: margin.left, y: margin.top, width: pw, height: ph, fill: 'transparent' });
    svg.appendChild(overlay);

    const hide = () => {
      hoverLine.setAttribute('visibility', 'hidden');
      while (hoverDots.firstChild) hoverDots.removeChild(hoverDots.firstChild);
      tooltip.hidden = true;
      tooltip.classList.remove('exemplar-tooltip');
    };
    const placeTooltip = (clientX, clientY) => {
      tooltip.hidden = false;
      const wrapRect = plotWrap.getBoundingClientRect();
      const tw = tooltip.offsetWidth;
      let left = clientX - wrapRect.left + 16;
      if (left + tw > wrapRect.width) left = Math.max(0, clientX - wrapRect.left - tw - 16);
      tooltip.style.left = left + 'px';
      tooltip.style.top = Math.max(0, clientY - wrapRect.top + 10) + 'px';
    };
    overlay.addEventListener('mouseleave', hide);
    overlay.addEventListener('mousemove', (ev) => {
      if (!allTs.length) return;
      const rect = svg.getBoundingClientRect();
      const mx = ev.clientX - rect.left;
      const t = x0 + ((mx - margin.left) / pw) * (x1 - x0);
      let i = lowerBound(allTs, t);
      if (i >= allTs.length) i = allTs.length - 1;
      if (i > 0 && Math.abs(allTs[i - 1] - t) < Math.abs(allTs[i] - t)) i--;
      const ts = allTs[i];
      const x = X(ts);
      hoverLine.setAttribute('x1', x);
      hoverLine.setAttribute('x2', x);
      hoverLine.setAttribute('visibility', 'visible');
      while (hoverDots.firstChild) hoverDots.removeChild(hoverDots.firstChild);
      const rows = [];
      for (const sr of shown) {
        const arr = drawn.get(sr.index) || [];
        const j = lowerBound(arr, ts, 't');
        const raw = sr.map.get(ts);
        if (raw === undefined) continue;
        if (arr[j] && arr[j].t === ts) {
          hoverDots.appendChild(s('circle', { cx: x, cy: Y(arr[j].y1), r: 3, fill: sr.color }));
        }
        rows.push({ sr, v: raw });
      }
      rows.sort((a, b) => (isFinite(b.v) ? b.v : -Infinity) - (isFinite(a.v) ? a.v : -Infinity));
      const limit = 25;
      const body = h('div', { class: 'tt-body' });
      rows.slice(0, limit).forEach(({ sr, v }) =>
        body.appendChild(
          h('div', { class: 'tt-row' },
            h('span', { class: 'swatch', style: { background: sr.color } }),
            h('span', { class: 'tt-labels' }, seriesNode(sr.metric)),
            h('span', { class: 'tt-value' }, String(v))
          )
        )
      );
      if (rows.length > limit) body.appendChild(h('div', { class: 'tt-more' }, `… and ${rows.length - limit} more`));
      tooltip.replaceChildren(h('div', { class: 'tt-time' }, formatTime(ts, true) + (useLocalTime() ? '' : ' UTC')), body);
      placeTooltip(ev.clientX, ev.clientY);
    });

    // Exemplars: diamonds above the hover overlay, each with its own tooltip.
    if (shownEx.length) {
      const ge = s('g', { class: 'exemplars' });
      const r = EXEMPLAR_RADIUS;
      for (const ex of shownEx) {
        const x = X(ex.t);
        const y = Y(ex.v);
        const marker = s('path', {
          class: 'exemplar-point',
          d: `M${x.toFixed(1)},${(y - r).toFixed(1)}l${r},${r}l${-r},${r}l${-r},${-r}Z`,
          fill: ex.color,
          tabindex: '0',
          role: 'img',
          'aria-label': 'Exemplar ' + formatSeries(ex.labels) + ' ' + ex.raw,
          'data-series-index': ex.index,
          'data-trace-id': ex.labels.trace_id,
        });
        const show = (clientX, clientY) => {
          hide();
          tooltip.replaceChildren(exemplarTooltip(ex));
          tooltip.classList.add('exemplar-tooltip');
          placeTooltip(clientX, clientY);
        };
        marker.addEventListener('mouseenter', (ev) => show(ev.clientX, ev.clientY));
        marker.addEventListener('mouseleave', hide);
        marker.addEventListener('focus', () => {
          const b = marker.getBoundingClientRect();
          show(b.right, b.bottom);
        });
        marker.addEventListener('blur', hide);
        ge.appendChild(marker);
      }
      svg.appendChild(ge);
    }

    plotWrap.replaceChildren(svg, tooltip);
    drawLegend();
  }

  function exemplarTooltip(ex) {
    const keys = Object.keys(ex.labels).sort();
    return h('div', { class: 'tt-exemplar' },
      h('div', { class: 'tt-time' }, formatTime(ex.t, true) + (useLocalTime() ? '' : ' UTC')),
      h('div', { class: 'tt-heading' }, 'Trace exemplar:'),
      h('div', { class: 'tt-exemplar-labels' },
        keys.length
          ? keys.map((k) => h('div', { class: 'tt-exemplar-label' },
            h('span', { class: 'label-name' }, k), '=',
            h('span', { class: 'label-value' }, '"' + escapeLabelValue(ex.labels[k]) + '"')))
          : h('div', { class: 'muted' }, 'no labels')),
      h('div', { class: 'tt-row' },
        h('span', { class: 'swatch', style: { background: ex.color } }),
        h('span', { class: 'tt-labels' }, 'Value:'),
        h('span', { class: 'tt-value exemplar-value' }, ex.raw)),
      h('div', { class: 'tt-heading' }, 'Associated series:'),
      h('div', { class: 'tt-row' }, h('span', { class: 'tt-labels' }, seriesNode(ex.seriesLabels))));
  }

  function drawLegend() {
    legend.replaceChildren(
      ...series.map((sr) =>
        h(
          'div',
          {
            class: 'legend-item' + (isVisible(sr.index) ? '' : ' legend-hidden'),
            'data-series-index': sr.index,
            title: 'Click to show only this series, Ctrl/Cmd-click to toggle',
            onclick: (ev) => {
              if (ev.ctrlKey || ev.metaKey) {
                const set = visible === null ? new Set(series.map((x) => x.index)) : new Set(visible);
                if (set.has(sr.index)) set.delete(sr.index);
                else set.add(sr.index);
                visible = set.size === series.length ? null : set;
              } else if (visible && visible.size === 1 && visible.has(sr.index)) {
                visible = null;
              } else {
                visible = new Set([sr.index]);
              }
              draw();
            },
          },
          h('span', { class: 'swatch', style: { background: sr.color } }),
          h('span', { class: 'legend-label' }, seriesNode(sr.metric))
        )
      )
    );
  }

  root.redraw = draw;
  // Draw once attached (needs layout width); draw immediately too with fallback width.
  draw();
  requestAnimationFrame(() => {
    if (root.isConnected) draw();
  });
  return root;
}
