// App shell: client-side router, navigation highlighting, history handling.
import { h, replaceChildren, errorBox } from './util.js';
import { renderGraph } from './graph.js';
import {
  renderAlerts, renderRules, renderTargets, renderSilences, renderStatus, renderFlags, renderConfig,
  renderTSDB, renderServiceDiscovery,
} from './pages.js';

const ROUTES = {
  '/graph': { nav: 'graph', title: 'Graph', render: renderGraph },
  '/alerts': { nav: 'alerts', title: 'Alerts', render: renderAlerts },
  '/rules': { nav: 'rules', title: 'Rules', render: renderRules },
  '/targets': { nav: 'targets', title: 'Targets', render: renderTargets },
  '/silences': { nav: 'silences', title: 'Silences', render: renderSilences },
  '/status': { nav: 'status', title: 'Status', render: renderStatus },
  '/flags': { nav: 'status', sub: 'flags', title: 'Command-line flags', render: renderFlags },
  '/config': { nav: 'status', sub: 'config', title: 'Configuration', render: renderConfig },
  '/tsdb-status': { nav: 'status', sub: 'tsdb-status', title: 'TSDB status', render: renderTSDB },
  '/service-discovery': { nav: 'targets', sub: 'service-discovery', title: 'Service discovery', render: renderServiceDiscovery },
};

let cleanup = null;
let currentPath = null;

function normalize(path) {
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (path === '/' || path === '' || path === '/index.html') return '/graph';
  return path;
}

function highlight(route) {
  document.querySelectorAll('#navbar a[data-nav]').forEach((a) => {
    const key = a.getAttribute('data-nav');
    const on = a.classList.contains('brand') ? false : key === route.nav || key === route.sub;
    a.classList.toggle('active', on);
    if (on && (key === route.sub || !route.sub)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

function render() {
  const path = normalize(location.pathname);
  if (path !== location.pathname) history.replaceState(history.state, '', path + location.search + location.hash);
  const root = document.getElementById('app');
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* ignore */
    }
    cleanup = null;
  }
  currentPath = path;
  const route = ROUTES[path];
  if (!route) {
    document.title = 'Not found - Strata';
    replaceChildren(root, h('div', { class: 'page' }, h('h1', null, 'Page not found'), errorBox('No such page: ' + path)));
    highlight({});
    return;
  }
  document.title = route.title + ' - Strata';
  document.body.setAttribute('data-page', path.slice(1));
  highlight(route);
  try {
    const c = route.render(root);
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    replaceChildren(root, errorBox('Error rendering page: ' + (e && e.message ? e.message : e)));
  }
  window.scrollTo(0, 0);
}

export function navigate(url, replace = false) {
  const u = new URL(url, location.href);
  if (u.origin !== location.origin) {
    location.href = u.href;
    return;
  }
  const path = normalize(u.pathname);
  if (!ROUTES[path]) {
    location.href = u.href;
    return;
  }
  const target = path + u.search + u.hash;
  if (replace) history.replaceState(null, '', target);
  else if (target !== location.pathname + location.search + location.hash) history.pushState(null, '', target);
  render();
}

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.target === '_blank' || a.hasAttribute('download') || a.hasAttribute('data-external')) return;
  const u = new URL(a.getAttribute('href'), location.href);
  if (u.origin !== location.origin || !ROUTES[normalize(u.pathname)]) return;
  ev.preventDefault();
  navigate(u.href);
});

window.addEventListener('popstate', () => render());
window.addEventListener('strata:navigate', (ev) => navigate(ev.detail));

window.addEventListener('unhandledrejection', (ev) => {
  // Aborted requests are expected when switching pages; don't let them surface as errors.
  if (ev.reason && ev.reason.name === 'AbortError') ev.preventDefault();
});

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', render);
else render();

export { currentPath };
