import { DIAGRAMS } from './diagrams.js';

const esc = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An SVG from visualizations/ without its XML prolog and doctype, to inline in HTML. */
const inlineSvg = (svg: string) => svg.slice(svg.indexOf('<svg'));

/** The page's styles and script run under this CSP (nonce per response); nothing loads from elsewhere. */
export function pageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

// Browser code, sent as text. Plain ES2020; no template literals so it can sit in one.
const CLIENT = String.raw`
(function () {
  var token = new URLSearchParams(location.search).get('token') || '';
  var statusEl = document.getElementById('status');
  var logEl = document.getElementById('log');
  var actorsEl = document.getElementById('actors');
  var MAX_ROWS = 400;
  var actors = {};

  /** Leaf states only, for the headline: the active ids no other active id nests under. */
  function leaves(active) {
    return active.filter(function (p) {
      return !active.some(function (q) { return q.indexOf(p + '.') === 0; });
    }).map(function (p) { return p.slice(p.indexOf(':') + 1); });
  }

  /** The actor a machine's diagram shows: the root, else the newest running actor of that machine. */
  function shownActor(machine) {
    var shown = null;
    Object.keys(actors).forEach(function (key) {
      var a = actors[key];
      if (a.machine === machine && (!a.parent || a.status === 'active')) shown = a;
    });
    return shown;
  }

  function draw(machine) {
    var figure = document.querySelector('[data-machine="' + machine + '"]');
    if (!figure) return;
    var view = shownActor(machine);
    var context = document.querySelector('[data-machine-context="' + machine + '"]');
    // A child machine's diagram shows while one of its actors runs.
    if (figure.getAttribute('data-child') === 'true') {
      figure.hidden = !view;
      if (context) context.hidden = !view;
    }
    figure.querySelectorAll('.active').forEach(function (el) { el.classList.remove('active'); });
    if (!view) {
      figure.querySelector('.state-value').textContent = '(not running)';
      figure.querySelector('.status').textContent = '';
      return;
    }
    (view.active || []).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && figure.contains(el)) el.classList.add('active');
    });
    figure.querySelector('.state-value').textContent = leaves(view.active || []).join(', ') || '(none)';
    figure.querySelector('.status').textContent = view.status + (view.parent ? ' · actor ' + view.id : '');
    if (context) context.querySelector('pre').textContent = JSON.stringify(view.context, null, 2);
  }

  function renderActors() {
    actorsEl.textContent = '';
    Object.keys(actors).forEach(function (key) {
      var a = actors[key];
      var li = document.createElement('li');
      li.textContent = a.actor + '  ' + a.id + (a.machine ? ' (' + a.machine + ')' : '') + '  ' + a.status +
        (a.value !== null && a.value !== undefined ? '  ' + JSON.stringify(a.value) : '');
      actorsEl.appendChild(li);
    });
  }

  function snapshot(view) {
    if (view.status === 'active' || !view.parent) actors[view.actor] = view; else delete actors[view.actor];
    if (view.machine) draw(view.machine);
    renderActors();
  }

  function describe(entry) {
    switch (entry.kind) {
      case 'rpc':
        var r = entry.rpc;
        if (r.kind === 'request') return ['rpc-in', '→ ' + r.method + '  id ' + r.id];
        if (r.kind === 'response')
          return ['rpc-out', '← ' + r.method + '  id ' + r.id + '  ' + r.ms.toFixed(1) + ' ms' + (r.errorCode === null ? '  ok' : '  error ' + r.errorCode)];
        return ['rpc-note', '← ' + r.method + '  (notification)'];
      case 'event':
        return ['event', entry.actor + ' ⇐ ' + (entry.event && entry.event.type) + '  ' + JSON.stringify(entry.event)];
      case 'emitted':
        return ['emitted', entry.actor + ' emits ' + (entry.event && entry.event.type) + '  ' + JSON.stringify(entry.event)];
      case 'actor':
        return ['actor', 'actor ' + entry.actor + ' ' + entry.id + ' started' + (entry.parent ? ' by ' + entry.parent : '')];
      case 'note':
        return ['note', entry.text];
      default:
        return ['note', JSON.stringify(entry)];
    }
  }

  function log(entry, note) {
    var row = document.createElement('li');
    var d = note ? ['note', note] : describe(entry);
    row.className = d[0];
    var time = document.createElement('time');
    time.textContent = new Date(entry ? entry.at : Date.now()).toISOString().slice(11, 23);
    row.appendChild(time);
    row.appendChild(document.createTextNode(' ' + d[1]));
    logEl.insertBefore(row, logEl.firstChild);
    while (logEl.childNodes.length > MAX_ROWS) logEl.removeChild(logEl.lastChild);
    document.getElementById('count').textContent = String(Number(document.getElementById('count').textContent) + 1);
  }

  var source = new EventSource('/events?token=' + encodeURIComponent(token));
  source.onopen = function () { statusEl.textContent = 'live'; statusEl.className = 'live'; };
  source.onerror = function () { statusEl.textContent = 'disconnected (retrying)'; statusEl.className = 'down'; };
  source.addEventListener('dropped', function (e) {
    var n = JSON.parse(e.data).dropped;
    log(null, n + ' events dropped while this page was not reading');
  });
  source.onmessage = function (e) {
    var msg = JSON.parse(e.data);
    if (msg.type === 'init') {
      actors = {};
      logEl.textContent = '';
      msg.actors.forEach(snapshot);
      document.querySelectorAll('[data-machine]').forEach(function (f) { draw(f.getAttribute('data-machine')); });
      msg.log.forEach(function (entry) { log(entry); });
    } else if (msg.type === 'snapshot') snapshot(msg.snapshot);
    else if (msg.type === 'log') log(msg.entry);
  };
})();
`;

const STYLE = `
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #0f172a; background: #f1f5f9; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 16px; background: #0f172a; color: #f8fafc; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  #status { padding: 2px 8px; border-radius: 10px; background: #64748b; font-size: 12px; }
  #status.live { background: #16a34a; } #status.down { background: #dc2626; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 1fr); gap: 12px; padding: 12px 16px; }
  section { background: white; border: 1px solid #cbd5e1; border-radius: 6px; padding: 8px 12px; min-width: 0; }
  h2 { font-size: 13px; margin: 0 0 6px; color: #334155; }
  .diagram { overflow: auto; max-height: 60vh; }
  .diagram svg { max-width: 100%; height: auto; }
  .active > polygon, .active > path:first-of-type, .active > ellipse { fill: #fde68a; stroke: #b45309; stroke-width: 2.5; }
  g.cluster.active > path { fill: #fffbeb; }
  .state-value { font-weight: 600; color: #b45309; }
  pre { margin: 0; font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; max-height: 40vh; overflow: auto; }
  #log, #actors { list-style: none; margin: 0; padding: 0; font: 12px/1.5 ui-monospace, Menlo, Consolas, monospace; }
  #log { max-height: 34vh; overflow: auto; }
  #log li { border-bottom: 1px solid #f1f5f9; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #log time { color: #94a3b8; }
  .rpc-in { color: #1d4ed8; } .rpc-out { color: #047857; } .rpc-note { color: #7c3aed; }
  .event { color: #0f172a; } .emitted { color: #c2410c; } .actor { color: #64748b; } .note { color: #dc2626; }
  .wide { grid-column: 1 / -1; }
  [hidden] { display: none !important; }
`;

/**
 * The self-contained live page: every machine's diagram with its active
 * state nodes highlighted from the feed (the root's always; a child
 * machine's, such as the session or a login attempt, while one runs), each
 * shown actor's redacted context, the running actors and a log of events,
 * emitted events and JSON-RPC traffic. Inline styles and script under a
 * nonce CSP; the feed comes from `/events` on the same origin. The first
 * diagram is the root machine's.
 */
export function renderLivePage(nonce: string, diagrams: Readonly<Record<string, string>> = DIAGRAMS): string {
  const figures = Object.entries(diagrams)
    .map(([machine, svg], i) => {
      const child = i > 0 ? ' data-child="true" hidden' : '';
      return `
  <section class="wide" data-machine="${esc(machine)}"${child}>
    <h2>${esc(machine)} · state: <span class="state-value">(waiting)</span> · <span class="status"></span></h2>
    <div class="diagram">${inlineSvg(svg)}</div>
  </section>
  <section data-machine-context="${esc(machine)}"${child}>
    <h2>${esc(machine)} context (redacted)</h2>
    <pre class="context-holder"></pre>
  </section>`;
    })
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>codex-account-server · live state</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header><h1>codex-account-server · live state</h1><span id="status">connecting…</span><span><span id="count">0</span> log rows</span></header>
<main>${figures}
  <section>
    <h2>Actors</h2>
    <ul id="actors"></ul>
  </section>
  <section class="wide">
    <h2>Log: events, emitted events, JSON-RPC traffic (newest first; params never shown)</h2>
    <ul id="log"></ul>
  </section>
</main>
<script nonce="${nonce}">${CLIENT}</script>
</body>
</html>
`;
}
