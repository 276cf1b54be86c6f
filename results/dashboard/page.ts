// The dashboard's single page: static HTML, CSS and a script, served from 'self' under a strict
// Content-Security-Policy. The script puts every string that came from the database into the page
// with textContent (never innerHTML), and hands Plotly figures built on the server (results/
// figures.ts), whose strings are already HTML-escaped.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>robustsbi dashboard</title>
<link rel="stylesheet" href="/app.css">
<link rel="stylesheet" href="/views.css">
<script src="/vendor/plotly.min.js" defer></script>
<script src="/app.js" defer></script>
<script src="/views.js" defer></script>
</head>
<body>
<header>
<h1>robustsbi dashboard</h1>
<p class="meta">Read-only view of the results database <span id="source"></span>; refreshed every 2 s. <span id="updated"></span></p>
</header>
<main>
<section id="sweeps-section">
<h2>Sweeps</h2>
<p><input id="sweep-filter" type="search" size="40" placeholder="filter: name or tag (key=value)"> <a href="#/compare">compare sweeps</a></p>
<table id="sweeps">
<thead><tr><th>name</th><th>ID</th><th>status</th><th>progress</th><th>completed</th><th>running</th><th>failed</th><th>created</th><th>tags</th></tr></thead>
<tbody></tbody>
</table>
<p id="no-sweeps" hidden>No sweeps in the database yet.</p>
</section>
<section id="detail" hidden>
<h2 id="detail-title"></h2>
<p class="meta"><span id="detail-meta"></span> · <a id="diagnostics-link" href="#">diagnostics (SBC, C2ST)</a></p>
<div id="plots"></div>
<div id="truth" hidden>
<h3>Against the true posterior</h3>
<p class="meta">Trials of tasks with an analytic posterior (gaussian_linear), on the clean test x: the Bayes-optimal C2ST (0.5: q equals the posterior) and KL(q||p), KL(p||q), means over the test points.</p>
<table id="truth-table">
<thead><tr><th>task</th><th>defense</th><th>beta</th><th>estimator</th><th>N</th><th>seed</th><th>C2ST</th><th>KL(q||p)</th><th>KL(p||q)</th><th>trial</th></tr></thead>
<tbody></tbody>
</table>
</div>
</section>
<p id="error" role="alert" hidden></p>
</main>
</body>
</html>
`;

export const PAGE_CSS = `
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:12px 24px}header h1{margin:0;font-size:1.4em}
header .meta{color:#d8e2ee;margin:4px 0 0}main{padding:8px 24px 40px;max-width:1400px}
table{border-collapse:collapse;background:#fff;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}th{background:#eef1f5}
tr.sweep{cursor:pointer}tr.sweep:hover{background:#f3f7fc}tr.selected{background:#e3edf9}
td.num{text-align:right}td.id{font-family:ui-monospace,monospace;font-size:12px}
progress{width:140px;vertical-align:middle}.status{font-weight:600}
.status-running{color:#1a6fc4}.status-completed{color:#23813a}.status-failed{color:#b3261e}
.status-cancelled,.status-paused{color:#8a6d00}
.plot{background:#fff;border:1px solid #e2e2e2;margin:14px 0}
#truth h3{margin:18px 0 4px;font-size:1.05em}
#error{color:#b3261e;font-weight:600}.meta{color:#555}
`;

export const PAGE_SCRIPT = `'use strict';
(function () {
  var POLL_MS = 2000;
  var selected = null;
  var drawnKey = {};
  var detailFor = null;

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function getJson(path) {
    return fetch(path, { cache: 'no-store', credentials: 'omit' }).then(function (r) {
      if (!r.ok) throw new Error(path + ' answered ' + r.status);
      return r.json();
    });
  }

  function showError(text) {
    var e = document.getElementById('error');
    e.textContent = text || '';
    e.hidden = !text;
  }

  function time(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }

  var lastList = [];
  function renderSweeps(list) {
    lastList = list;
    var body = document.querySelector('#sweeps tbody');
    var rows = [];
    var want = (document.getElementById('sweep-filter').value || '').trim().toLowerCase();
    list.forEach(function (s) {
      var tags = Object.keys(s.tags || {}).map(function (k) { return k + '=' + s.tags[k]; });
      if (want && (String(s.name) + ' ' + tags.join(' ')).toLowerCase().indexOf(want) < 0) return;
      var tr = el('tr', 'sweep' + (s.id === selected ? ' selected' : ''));
      tr.dataset.sweepId = s.id;
      tr.appendChild(el('td', 'name', s.name));
      tr.appendChild(el('td', 'id', s.id.slice(0, 16)));
      tr.appendChild(el('td', 'status status-' + String(s.status).replace(/[^a-z]/g, ''), s.status));
      var p = el('td', 'progress');
      var bar = document.createElement('progress');
      var total = Math.max(s.total || 0, s.counts.trials || 0);
      bar.max = Math.max(1, total);
      bar.value = s.counts.completed + s.counts.failed + s.counts.cancelled;
      p.appendChild(bar);
      p.appendChild(el('span', 'frac', ' ' + (s.counts.completed + s.counts.failed + s.counts.cancelled) + '/' + total));
      tr.appendChild(p);
      tr.appendChild(el('td', 'num completed', s.counts.completed));
      tr.appendChild(el('td', 'num running', s.counts.running));
      tr.appendChild(el('td', 'num failed', s.counts.failed));
      tr.appendChild(el('td', 'created', time(s.createdAt)));
      tr.appendChild(el('td', 'tags', tags.join(' ')));
      tr.addEventListener('click', function () { select(s.id); });
      rows.push(tr);
    });
    body.replaceChildren.apply(body, rows);
    document.getElementById('no-sweeps').hidden = list.length > 0;
  }

  function clearPlots() {
    var plots = document.getElementById('plots');
    Array.prototype.forEach.call(plots.children, function (d) { if (window.Plotly) Plotly.purge(d); });
    plots.replaceChildren();
    drawnKey = {};
  }

  function renderDetail(d) {
    if (detailFor !== d.sweep.id) { clearPlots(); detailFor = d.sweep.id; }
    document.getElementById('detail').hidden = false;
    document.getElementById('detail-title').textContent = 'Sweep ' + d.sweep.name;
    var c = d.sweep.counts;
    document.getElementById('detail-meta').textContent =
      d.sweep.status + ' · ' + c.completed + ' of ' + c.trials + ' trials completed, ' + c.running + ' running, ' +
      c.failed + ' failed · curves ' + (d.source === 'stored' ? 'stored by the sweep' : 'computed from the results so far') +
      (d.figures.length === 0 ? ' · no completed trials yet' : '');
    document.getElementById('diagnostics-link').href =
      '/sweeps/' + encodeURIComponent(d.sweep.id) + '/diagnostics';
    var plots = document.getElementById('plots');
    d.figures.forEach(function (f, i) {
      var div = document.getElementById('plot-' + i);
      if (!div) {
        div = el('div', 'plot');
        div.id = 'plot-' + i;
        plots.appendChild(div);
      }
      div.dataset.kind = f.kind;
      div.dataset.task = f.task;
      div.dataset.points = String(f.points);
      var key = JSON.stringify([f.data, f.layout]);
      if (drawnKey[div.id] !== key && window.Plotly) {
        Plotly.react(div, f.data, f.layout, { displaylogo: false, responsive: true });
        drawnKey[div.id] = key;
      }
    });
    while (plots.children.length > d.figures.length) {
      var last = plots.lastElementChild;
      if (window.Plotly) Plotly.purge(last);
      plots.removeChild(last);
      delete drawnKey[last.id];
    }
    renderTruth(d.tables);
    document.body.dataset.drawnSweep = d.sweep.id;
  }

  function figure(v) {
    return typeof v === 'number' && isFinite(v) ? String(Number(v.toPrecision(4))) : 'non-finite';
  }

  /** The trade-off table's rows that carry ground-truth metrics, as text cells. */
  function renderTruth(tables) {
    var t = (tables || []).filter(function (x) { return x.name === 'tradeoff'; })[0];
    var rows = [];
    if (t) {
      var at = {};
      t.columns.forEach(function (c, i) { at[c] = i; });
      t.rows.forEach(function (r) {
        // null in JSON: no ground truth (other tasks) or a non-finite C2ST.
        if (r[at.c2stTruth] === null && r[at.klQPTruth] === null && r[at.klPQTruth] === null) return;
        var tr = el('tr', 'truth-row');
        tr.dataset.trialId = String(r[at.trialId]);
        ['task', 'defense', 'beta', 'estimator', 'budget', 'seed'].forEach(function (c) {
          tr.appendChild(el('td', c === 'beta' || c === 'budget' || c === 'seed' ? 'num' : '', r[at[c]]));
        });
        tr.appendChild(el('td', 'num c2st', figure(r[at.c2stTruth])));
        tr.appendChild(el('td', 'num klqp', figure(r[at.klQPTruth])));
        tr.appendChild(el('td', 'num klpq', figure(r[at.klPQTruth])));
        tr.appendChild(el('td', 'id', String(r[at.trialId]).slice(0, 12)));
        rows.push(tr);
      });
    }
    var body = document.querySelector('#truth-table tbody');
    body.replaceChildren.apply(body, rows);
    document.getElementById('truth').hidden = rows.length === 0;
  }

  function select(id) {
    selected = id;
    if (fromHash() !== id) location.hash = '#/sweep/' + encodeURIComponent(id);
    Array.prototype.forEach.call(document.querySelectorAll('#sweeps tr.sweep'), function (tr) {
      tr.classList.toggle('selected', tr.dataset.sweepId === id);
    });
    refreshDetail();
  }

  function refreshDetail() {
    if (!selected) return Promise.resolve();
    var id = selected;
    return getJson('/api/sweeps/' + encodeURIComponent(id) + '/figures').then(function (d) {
      if (id === selected) renderDetail(d);
    });
  }

  function tick() {
    getJson('/api/sweeps')
      .then(function (r) {
        document.getElementById('source').textContent = r.source ? '(' + r.source + ')' : '';
        renderSweeps(r.sweeps);
        return refreshDetail();
      })
      .then(function () {
        showError('');
        document.getElementById('updated').textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
        document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
      })
      .catch(function (e) { showError('Cannot refresh: ' + e.message); })
      .then(function () { setTimeout(tick, POLL_MS); });
  }

  // #/sweep/ID names a sweep (#sweep=ID in older links); views.js draws the other routes.
  function fromHash() {
    var m = /^#(?:\\/sweep\\/|sweep=)([^/?]+)(?:\\?.*)?$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }
  window.addEventListener('hashchange', function () {
    var id = fromHash();
    if (id && id !== selected) select(id);
  });
  selected = fromHash();
  document.getElementById('sweep-filter').addEventListener('input', function () { renderSweeps(lastList); });
  tick();
})();
`;
