// Native histograms in the expression browser: a bucket chart for one histogram sample
// (table tab) and a heatmap of a histogram series over time (graph tab), both from the
// `histogram` JSON of the query API: {count, sum, buckets: [[rule, lower, upper, count]]}.
import { h, s, formatSI, formatSeries, formatTime } from './util.js';

const num = (x) => parseFloat(x);

// "(a, b]" style bounds of a bucket from Prometheus's boundary rule.
function bucketLabel([rule, lo, hi]) {
  const open = rule === 1 || rule === 3 ? '[' : '(';
  const close = rule === 0 || rule === 3 ? ']' : ')';
  return `${open}${lo}, ${hi}${close}`;
}

// Bars of one histogram's populated buckets, in bucket order (equal widths), heights by
// count; the bounds and counts as tooltips and in a collapsible table.
export function bucketChart(hv) {
  const buckets = (hv && hv.buckets) || [];
  const width = 320;
  const height = 90;
  const max = Math.max(1e-300, ...buckets.map((b) => Math.abs(num(b[3]))));
  const bw = buckets.length ? width / buckets.length : width;
  const bars = buckets.map((b, i) => {
    const c = num(b[3]);
    const bh = Math.max(1, (Math.abs(c) / max) * (height - 14));
    return s('rect', {
      class: 'hist-bucket',
      x: String(i * bw + 0.5),
      y: String(height - 14 - bh),
      width: String(Math.max(1, bw - 1)),
      height: String(bh),
      fill: c < 0 ? '#d9534f' : '#4a90d9',
    }, s('title', null, `${bucketLabel(b)}: ${b[3]}`));
  });
  const axis = buckets.length
    ? [
      s('text', { x: '0', y: String(height - 2), 'font-size': '10' }, String(buckets[0][1])),
      s('text', { x: String(width), y: String(height - 2), 'font-size': '10', 'text-anchor': 'end' }, String(buckets[buckets.length - 1][2])),
    ]
    : [];
  const svg = s('svg', { class: 'hist-chart', width: String(width), height: String(height), viewBox: `0 0 ${width} ${height}` }, bars, axis);
  const rows = buckets.map((b) => h('tr', null, h('td', null, bucketLabel(b)), h('td', null, b[3])));
  return h('div', { class: 'histogram', 'data-buckets': String(buckets.length) },
    h('div', { class: 'hist-summary' }, `Total count: ${hv.count}, Sum: ${hv.sum}`),
    svg,
    h('details', null, h('summary', null, 'Buckets'), h('table', { class: 'hist-table' }, h('tbody', null, rows))));
}

// Heatmaps of the histogram series of a matrix (at most `limit`): one column per sample,
// one row per bucket (the union of all bounds, ascending), cell colour by the bucket's
// count relative to the largest.
export function heatmaps(result, limit = 4) {
  const series = result.filter((r) => r.histograms && r.histograms.length).slice(0, limit);
  return series.map((r) => heatmap(r));
}

function heatmap(r) {
  const pts = r.histograms;
  const keys = new Map();
  for (const [, hv] of pts) {
    for (const b of hv.buckets || []) {
      const k = `${b[1]}|${b[2]}`;
      if (!keys.has(k)) keys.set(k, { lo: num(b[1]), hi: num(b[2]), label: bucketLabel(b) });
    }
  }
  const rowsList = Array.from(keys.entries()).sort((a, b) => a[1].hi - b[1].hi || a[1].lo - b[1].lo);
  const rowOf = new Map(rowsList.map(([k], i) => [k, i]));
  let max = 1e-300;
  for (const [, hv] of pts) for (const b of hv.buckets || []) max = Math.max(max, Math.abs(num(b[3])));
  const width = 900;
  const rowH = Math.max(3, Math.min(16, Math.floor(300 / Math.max(1, rowsList.length))));
  const left = 110;
  const height = rowsList.length * rowH + 24;
  const cw = (width - left) / Math.max(1, pts.length);
  const cells = [];
  pts.forEach(([t, hv], i) => {
    for (const b of hv.buckets || []) {
      const row = rowOf.get(`${b[1]}|${b[2]}`);
      const c = Math.abs(num(b[3])) / max;
      const y = (rowsList.length - 1 - row) * rowH;
      cells.push(s('rect', {
        class: 'heat-cell', x: String(left + i * cw), y: String(y), width: String(Math.max(1, cw)), height: String(rowH),
        fill: `rgba(74, 144, 217, ${(0.08 + 0.92 * c).toFixed(3)})`,
      }, s('title', null, `${formatTime(t * 1000)} ${bucketLabel(b)}: ${b[3]}`)));
    }
  });
  const ticks = [];
  const every = Math.max(1, Math.ceil(rowsList.length / 12));
  rowsList.forEach(([, v], row) => {
    if (row % every) return;
    const y = (rowsList.length - 1 - row) * rowH + rowH - 1;
    ticks.push(s('text', { x: String(left - 4), y: String(y), 'font-size': '10', 'text-anchor': 'end' }, formatSI(v.hi)));
  });
  const svg = s('svg', { class: 'heatmap', width: String(width), height: String(height), viewBox: `0 0 ${width} ${height}` },
    cells, ticks,
    s('text', { x: String(left), y: String(height - 6), 'font-size': '10' }, formatTime(pts[0][0] * 1000)),
    s('text', { x: String(width), y: String(height - 6), 'font-size': '10', 'text-anchor': 'end' }, formatTime(pts[pts.length - 1][0] * 1000)));
  return h('div', { class: 'histogram-heatmap', 'data-buckets': String(rowsList.length), 'data-points': String(pts.length) },
    h('div', { class: 'heatmap-title' }, formatSeries(r.metric || {})), svg);
}
