// Browser checks of Strata's web UI, run by tests/ui.rs: headless Debian Chromium through
// playwright-core against STRATA_URL (a server loaded with `ui_demo{instance=a|b|c}` over
// the last hour, the native histogram `ui_hist`, `ui_exemplar` with four exemplars, the
// rules UiAlwaysFiring / UiPending / job:ui_demo:sum, an unreachable scrape target and the
// built-in notifier). Screenshots go to UI_ARTIFACTS. Any console
// error or uncaught exception fails the run, except the HTTP 400 the browser logs for
// the query this script makes fail on purpose. Prints "N passed, M failed".

import { chromium } from 'playwright-core';
import path from 'node:path';

const base = process.env.STRATA_URL;
const out = process.env.UI_ARTIFACTS || '.';
let passed = 0;
let failed = 0;

function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name} ${detail}`);
  }
}

async function attempt(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, String(e && e.message ? e.message.split('\n')[0] : e));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const errors = [];
let expectBadRequest = false;
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (expectBadRequest && /status of 400/.test(m.text())) return;
  errors.push(`${m.text()} @ ${(m.location() || {}).url || ''}`);
});
page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
page.on('dialog', (d) => d.accept());
const shot = (name) => page.screenshot({ path: path.join(out, name), fullPage: true });
const count = (sel) => page.locator(sel).count();

// 1. A shared graph URL runs its query and draws one line per series.
await attempt('graph from a shared URL', async () => {
  await page.goto(`${base}/graph?g0.expr=${encodeURIComponent('ui_demo')}&g0.tab=0&g0.range_input=1h`);
  await page.waitForSelector('#panel-0 .chart[data-series-count]', { timeout: 20000 });
  const n = await page.getAttribute('#panel-0 .chart', 'data-series-count');
  check('graph: data-series-count is 3', n === '3', `got ${n}`);
  check('graph: 3 series lines drawn', (await count('#panel-0 path.series-line')) === 3);
  check('graph: legend lists the 3 series', (await count('#panel-0 .legend-item')) === 3);
  const legend = await page.locator('#panel-0 .legend-item').first().textContent();
  check('graph: legend shows labels', /instance="a"/.test(legend || ''), legend);
  const box = await page.locator('#panel-0 .chart svg').first().boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
    await page.waitForSelector('#panel-0 .chart-tooltip', { state: 'visible', timeout: 5000 });
    const tip = await page.locator('#panel-0 .chart-tooltip').textContent();
    check('graph: hover shows the values', /instance="?a/.test(tip || '') || /a/.test(tip || ''), tip);
  }
  await shot('graph.png');
});

// 2. The table tab shows one row per series and updates the URL (g0.tab=1).
await attempt('table view', async () => {
  await page.click('#panel-0 button.tab[data-tab="table"]');
  await page.waitForSelector('#panel-0 tr.series-row', { timeout: 10000 });
  check('table: 3 rows', (await count('#panel-0 tr.series-row')) === 3);
  const row = await page.locator('#panel-0 tr.series-row').first().textContent();
  check('table: row shows metric and labels', /ui_demo\{/.test(row || ''), row);
  await page.waitForFunction(() => location.search.includes('g0.tab=1'), null, { timeout: 5000 });
  check('table: URL has g0.tab=1', true);
  await shot('table.png');
});

// 1b. A native histogram: a bucket chart in the table tab, a heatmap in the graph tab.
await attempt('native histogram', async () => {
  await page.goto(`${base}/graph?g0.expr=${encodeURIComponent('ui_hist')}&g0.tab=1`);
  await page.waitForSelector('#panel-0 .histogram', { timeout: 20000 });
  check('histogram: bucket bars drawn in the table', (await count('#panel-0 .histogram svg rect.hist-bucket')) === 3);
  const summary = await page.locator('#panel-0 .hist-summary').first().textContent();
  check('histogram: count and sum shown', /count: \d+/.test(summary || ''), summary);
  await page.goto(`${base}/graph?g0.expr=${encodeURIComponent('ui_hist')}&g0.tab=0&g0.range_input=1h`);
  await page.waitForSelector('#panel-0 .histogram-heatmap', { timeout: 20000 });
  check('histogram: heatmap cells drawn in the graph', (await count('#panel-0 .histogram-heatmap rect.heat-cell')) > 10);
  await shot('histogram.png');
});

// 1c. Exemplars (tests/ui.rs writes four on `ui_exemplar`, trace ids ui-trace-1..4, the
// third at 3.5, above the series' values): diamonds on the graph with a tooltip each, and
// the "Show exemplars" checkbox as Prometheus's `g0.show_exemplars`.
await attempt('exemplars', async () => {
  const q = encodeURIComponent('ui_exemplar');
  await page.goto(`${base}/graph?g0.expr=${q}&g0.tab=0&g0.range_input=1h&g0.show_exemplars=1`);
  await page.waitForSelector('#panel-0 .chart .exemplar-point', { timeout: 20000 });
  check('exemplars: checkbox checked from the URL', await page.isChecked('#panel-0 .show-exemplars input'));
  check('exemplars: one marker per exemplar', (await count('#panel-0 .exemplar-point')) === 4,
    `got ${await count('#panel-0 .exemplar-point')}`);
  const traces = await page.$$eval('#panel-0 .exemplar-point', (els) => els.map((e) => e.getAttribute('data-trace-id')).sort());
  check('exemplars: the written trace ids', traces.join(',') === 'ui-trace-1,ui-trace-2,ui-trace-3,ui-trace-4', traces.join(','));
  const lineColor = await page.getAttribute('#panel-0 path.series-line', 'stroke');
  const fills = await page.$$eval('#panel-0 .exemplar-point', (els) => els.map((e) => e.getAttribute('fill')));
  check('exemplars: colored like their series', fills.every((f) => f === lineColor), `${fills} vs ${lineColor}`);
  const plot = await page.locator('#panel-0 .chart rect.plot-border').boundingBox();
  const high = page.locator('#panel-0 .exemplar-point[data-trace-id="ui-trace-3"]');
  const hb = await high.boundingBox();
  const cy = hb ? hb.y + hb.height / 2 : -1;
  check('exemplars: y axis extended to the highest exemplar', plot && hb && cy >= plot.y - 1 && cy <= plot.y + plot.height + 1,
    JSON.stringify({ plot, hb }));
  const others = await page.locator('#panel-0 .exemplar-point[data-trace-id="ui-trace-1"]').boundingBox();
  check('exemplars: the 3.5 exemplar drawn above the others', hb && others && hb.y < others.y);
  await high.hover();
  await page.waitForSelector('#panel-0 .chart-tooltip.exemplar-tooltip', { state: 'visible', timeout: 5000 });
  const tip = (await page.locator('#panel-0 .chart-tooltip').textContent()) || '';
  check('exemplars: tooltip shows the trace id', /trace_id="ui-trace-3"/.test(tip), tip);
  check('exemplars: tooltip shows value and series', /3\.5/.test(tip) && /ui_exemplar\{job="demo"\}/.test(tip), tip);
  await shot('exemplars.png');
  await page.mouse.move(0, 0);
  await page.uncheck('#panel-0 .show-exemplars input');
  await page.waitForFunction(() => document.querySelectorAll('#panel-0 .exemplar-point').length === 0, null, { timeout: 5000 });
  check('exemplars: unchecking removes the markers', (await count('#panel-0 path.series-line')) === 1);
  await page.waitForFunction(() => location.search.includes('g0.show_exemplars=0'), null, { timeout: 5000 });
  check('exemplars: URL has g0.show_exemplars=0', true);
  await page.check('#panel-0 .show-exemplars input');
  await page.waitForFunction(() => document.querySelectorAll('#panel-0 .exemplar-point').length === 4, null, { timeout: 10000 });
  check('exemplars: checking again shows them', true);
  check('exemplars: URL has g0.show_exemplars=1', /g0\.show_exemplars=1/.test(page.url()), page.url());
});

// 3. A URL with two panels (Prometheus's g0/g1 scheme), as Grafana links and generatorURLs.
await attempt('two panels from a URL', async () => {
  const q0 = encodeURIComponent('sum by (job) (ui_demo)');
  const q1 = encodeURIComponent('ui_demo{instance="a"}');
  await page.goto(`${base}/graph?g0.expr=${q0}&g0.tab=1&g1.expr=${q1}&g1.tab=0&g1.range_input=30m`);
  await page.waitForSelector('#panel-0 tr.series-row', { timeout: 20000 });
  await page.waitForSelector('#panel-1 .chart[data-series-count]', { timeout: 20000 });
  check('panels: panel 0 table has 1 row', (await count('#panel-0 tr.series-row')) === 1);
  check('panels: panel 1 graph has 1 series',
    (await page.getAttribute('#panel-1 .chart', 'data-series-count')) === '1');
  check('panels: range input of panel 1 is 30m',
    (await page.inputValue('#panel-1 .range-input')) === '30m');
  await shot('two-panels.png');
});

// 4. An API error is shown next to the query.
await attempt('error next to the query', async () => {
  expectBadRequest = true;
  await page.fill('#panel-0 .expr-input', 'sum(ui_demo');
  await page.click('#panel-0 .execute-btn');
  await page.waitForSelector('#panel-0 .error', { state: 'visible', timeout: 10000 });
  const text = await page.locator('#panel-0 .error').first().textContent();
  check('error: parse error text shown', /parse error|unclosed|expected/i.test(text || ''), text);
  await shot('error.png');
  expectBadRequest = false;
});

// 5. Autocompletion of metric names.
await attempt('autocomplete', async () => {
  await page.fill('#panel-0 .expr-input', '');
  await page.type('#panel-0 .expr-input', 'ui_de');
  await page.waitForSelector('#panel-0 .autocomplete li.ac-item[data-value="ui_demo"]', { timeout: 10000 });
  check('autocomplete: suggests ui_demo', true);
  await page.keyboard.press('Escape');
});

// 6. "Add panel" adds an empty panel.
await attempt('add panel', async () => {
  const before = await count('section.query-panel');
  await page.click('#add-panel');
  check('add panel: one more panel', (await count('section.query-panel')) === before + 1);
});

// 7. Targets: the unreachable target is DOWN with its error.
await attempt('targets page', async () => {
  await page.click('#navbar a.nav-link[href="/targets"]');
  await page.waitForSelector('tr.target-row', { timeout: 30000 });
  for (let i = 0; i < 20 && (await count('tr.target-row[data-health="down"]')) === 0; i++) {
    await page.waitForTimeout(1000);
    await page.reload();
    await page.waitForSelector('tr.target-row', { timeout: 30000 });
  }
  check('targets: unreachable target is down', (await count('tr.target-row[data-health="down"]')) >= 1);
  check('targets: nav link active',
    (await page.getAttribute('#navbar a.nav-link[href="/targets"]', 'aria-current')) === 'page');
  await shot('targets.png');
});

// 8. Alerts: the firing rule with its alert.
await attempt('alerts page', async () => {
  await page.click('#navbar a.nav-link[href="/alerts"]');
  const rule = 'details.alert-rule[data-rule-name="UiAlwaysFiring"]';
  await page.waitForSelector(rule, { timeout: 20000 });
  check('alerts: UiAlwaysFiring is firing', (await page.getAttribute(rule, 'data-state')) === 'firing');
  check('alerts: UiPending listed', (await count('details.alert-rule[data-rule-name="UiPending"]')) === 1);
  await page.click(`${rule} summary`);
  await page.waitForSelector(`${rule} tr.alert-row[data-state="firing"]`, { state: 'visible', timeout: 5000 });
  const row = await page.locator(`${rule} tr.alert-row`).first().textContent();
  check('alerts: alert row shows labels', /severity/.test(row || ''), row);
  await shot('alerts.png');
});

// 9. Rules.
await attempt('rules page', async () => {
  await page.click('#navbar a.nav-link[href="/rules"]');
  await page.waitForSelector('tr.rule-row', { timeout: 20000 });
  check('rules: 3 rules', (await count('tr.rule-row')) === 3);
  check('rules: recording rule healthy',
    (await page.getAttribute('tr.rule-row[data-rule-name="job:ui_demo:sum"]', 'data-health')) === 'ok');
  await shot('rules.png');
});

// 10. Silences: create one from the form, see it active, expire it.
await attempt('silences page', async () => {
  await page.click('#navbar a.nav-link[href="/silences"]');
  await page.waitForSelector('#silence-form', { timeout: 20000 });
  await page.fill('#silence-matchers', '{alertname="UiAlwaysFiring", severity=~"page|ticket"}');
  await page.fill('#silence-duration', '2h');
  await page.fill('#silence-creator', 'ui-test');
  await page.fill('#silence-comment', 'made in the browser test');
  await page.click('#silence-submit');
  await page.waitForSelector('tr.silence-row[data-state="active"]', { timeout: 10000 });
  const row = await page.locator('tr.silence-row[data-state="active"]').first().textContent();
  check('silences: new silence is active', /ui-test/.test(row || '') && /UiAlwaysFiring/.test(row || ''), row);
  await shot('silences.png');
  await page.locator('tr.silence-row[data-state="active"] .expire-btn').first().click();
  await page.waitForSelector('tr.silence-row[data-state="expired"]', { timeout: 10000 });
  check('silences: expired after Expire', (await count('tr.silence-row[data-state="active"]')) === 0);
});

// 10b. Acknowledgements: acknowledge the firing group from the silences page, see it
// acknowledged there and in the API, expire it.
await attempt('acknowledgements', async () => {
  await page.reload();
  const open = 'tr.ack-group-row[data-acked="false"] .ack-btn';
  await page.waitForSelector(open, { timeout: 20000 });
  await page.locator(open).first().click();
  await page.fill('tr.ack-group-row .ack-creator', 'ui-test');
  await page.fill('tr.ack-group-row .ack-comment', 'looking into it');
  await page.fill('tr.ack-group-row .ack-duration', '1h');
  await page.click('tr.ack-group-row .ack-submit');
  await page.waitForSelector('tr.ack-group-row[data-acked="true"]', { timeout: 10000 });
  const row = await page.locator('tr.ack-group-row[data-acked="true"]').first().textContent();
  check('acks: group shows who acknowledged it', /Acknowledged by ui-test/.test(row || ''), row);
  const listed = await page.locator('tr.ack-row').first().textContent();
  check('acks: listed with its comment', /looking into it/.test(listed || ''), listed);
  const api = await page.evaluate(async () => (await fetch('/api/v2/acks?active=true')).json());
  check('acks: the API has it',
    Array.isArray(api) && api.length === 1 && api[0].createdBy === 'ui-test' && api[0].receiver === 'none',
    JSON.stringify(api));
  await shot('acks.png');
  await page.locator('tr.ack-row .ack-expire-btn').first().click();
  await page.waitForSelector('tr.ack-group-row[data-acked="false"]', { timeout: 10000 });
  check('acks: expired after Expire', (await count('tr.ack-row')) === 0);
});

// 11. Status: build, flags, config and TSDB stats.
await attempt('status page', async () => {
  await page.click('#navbar a.nav-link[href="/status"]');
  await page.waitForSelector('#flags tr.flag-row', { timeout: 20000 });
  check('status: build info', ((await page.locator('#build-info').textContent()) || '').length > 0);
  check('status: flags listed', (await count('#flags tr.flag-row')) > 10);
  check('status: config shown', /rule_files/.test((await page.locator('pre.config-yaml').textContent()) || ''));
  await page.waitForSelector('#tsdb td.num-series[data-value]', { timeout: 10000 });
  const n = Number(await page.getAttribute('#tsdb td.num-series', 'data-value'));
  check('status: head series counted', n >= 3, String(n));
  check('status: top metrics by series count', (await count('.top-metrics tr.tsdb-row')) >= 1);
  await shot('status.png');
});

// 12. The back button returns to the previous page.
await attempt('history', async () => {
  await page.goBack();
  await page.waitForFunction(() => location.pathname === '/silences', null, { timeout: 5000 });
  check('history: back goes to /silences', true);
});

check('no console errors or uncaught exceptions', errors.length === 0, JSON.stringify(errors));
await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
