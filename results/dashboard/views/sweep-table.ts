// The sweep view's trial table (under the sweep's plots): one page of the server's filtered and
// sorted rows (results/trial-table.ts), column headers that sort, a filter box taking
// COLUMN OP VALUE conditions separated by ';', pages, and the sweep's tags and notes. The query
// lives in the hash (#/sweep/ID?f=..&sort=..), so a URL names the filtered table.
export const SWEEP_TABLE_SCRIPT = String.raw`
  var table = { id: null, key: null, columns: [], parcoordsAt: 0 };
  var PARCOORDS_EVERY_MS = 10000;

  var ALWAYS = { id: 1, status: 1, attempt: 1, duration: 1, testNll: 1 };

  function tableParams(r) {
    var p = new URLSearchParams();
    r.params.getAll('f').forEach(function (f) { p.append('f', f); });
    ['sort', 'dir', 'page', 'size'].forEach(function (k) { if (r.params.get(k)) p.set(k, r.params.get(k)); });
    return p;
  }

  function setQuery(change) {
    var r = route();
    var p = tableParams(r);
    change(p);
    var q = p.toString();
    location.hash = '#/sweep/' + encodeURIComponent(r.id) + (q ? '?' + q : '');
  }

  function buildSweepSection() {
    var s = section('views-sweep');
    if (s.dataset.built) return s;
    s.dataset.built = '1';
    s.appendChild(el('div', null)).id = 'sweep-annotations';
    s.appendChild(el('h3', null, 'Trials'));
    var controls = el('p', 'controls');
    var filter = el('input');
    filter.id = 'trial-filter';
    filter.type = 'search';
    filter.size = 60;
    filter.placeholder = 'filter: config.defense=fim; testNll<3; tag.group~base (Enter)';
    filter.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter') return;
      var parts = filter.value.split(';').map(function (x) { return x.trim(); }).filter(Boolean);
      setQuery(function (p) { p.delete('f'); p.delete('page'); parts.forEach(function (f) { p.append('f', f); }); });
    });
    controls.appendChild(filter);
    var all = el('label', null, ' all columns ');
    var box = el('input');
    box.type = 'checkbox';
    box.id = 'trial-all-columns';
    box.addEventListener('change', function () { table.key = null; refreshTable(); });
    all.appendChild(box);
    controls.appendChild(all);
    var prev = el('button', null, '<');
    prev.id = 'trial-prev';
    var next = el('button', null, '>');
    next.id = 'trial-next';
    prev.addEventListener('click', function () { movePage(-1); });
    next.addEventListener('click', function () { movePage(1); });
    controls.appendChild(prev);
    controls.appendChild(el('span', null)).id = 'trial-page';
    controls.appendChild(next);
    s.appendChild(controls);
    var t = el('table', null);
    t.id = 'trial-table';
    t.appendChild(el('thead'));
    t.appendChild(el('tbody'));
    s.appendChild(t);
    s.appendChild(el('h3', null, 'Parallel coordinates (completed trials)'));
    var pc = el('div', 'plot');
    pc.id = 'parcoords';
    s.appendChild(pc);
    s.appendChild(el('p', 'meta')).id = 'parcoords-meta';
    return s;
  }

  var lastPage = { page: 1, pages: 1 };
  function movePage(d) {
    var to = Math.min(lastPage.pages, Math.max(1, lastPage.page + d));
    if (to !== lastPage.page) setQuery(function (p) { p.set('page', String(to)); });
  }

  function shownColumns(columns) {
    var all = document.getElementById('trial-all-columns').checked;
    return columns.filter(function (c) {
      if (all || ALWAYS[c.key]) return true;
      if (c.key === 'index' || c.key === 'error') return false;
      // Content IDs (modelId, simulationId, ...) vary with every trial and say little; all columns shows them.
      if (/Id$/.test(c.key)) return false;
      if (c.key.indexOf('config.') === 0 || c.key.indexOf('tag.') === 0) return c.varies;
      return true;
    });
  }

  function renderTable(d, r) {
    var s = buildSweepSection();
    var ann = document.getElementById('sweep-annotations');
    ann.replaceChildren(annotationBlock(d.annotation));
    var filter = document.getElementById('trial-filter');
    if (document.activeElement !== filter) filter.value = r.params.getAll('f').join('; ');
    lastPage = d;
    document.getElementById('trial-page').textContent =
      ' page ' + d.page + ' of ' + d.pages + ' · ' + d.matched + ' of ' + d.total + ' trials ';
    var cols = shownColumns(d.columns);
    var head = el('tr');
    cols.forEach(function (c) {
      var th = el('th', c.numeric ? 'num' : '', c.key.replace(/^config\./, ''));
      th.dataset.column = c.key;
      th.title = c.key;
      if (d.query.sort === c.key) th.className += d.query.dir === 'desc' ? ' sorted-desc' : ' sorted-asc';
      th.addEventListener('click', function () {
        setQuery(function (p) {
          var desc = p.get('sort') === c.key && p.get('dir') !== 'desc';
          p.set('sort', c.key);
          p.set('dir', desc ? 'desc' : 'asc');
          p.delete('page');
        });
      });
      head.appendChild(th);
    });
    var thead = document.querySelector('#trial-table thead');
    thead.replaceChildren(head);
    var rows = d.rows.map(function (row) {
      var tr = el('tr', 'trial status-row-' + String(row.status).replace(/[^a-z]/g, ''));
      tr.dataset.trialId = String(row.id);
      cols.forEach(function (c) {
        var td = el('td', (c.numeric ? 'num ' : '') + 'col');
        td.dataset.column = c.key;
        if (c.key === 'id') td.appendChild(link('#/trial/' + encodeURIComponent(row.id), String(row.id).slice(0, 16), 'trial-link'));
        else td.textContent = fmt(row[c.key]);
        if (c.key === 'status' && row.error) td.title = row.error;
        tr.appendChild(td);
      });
      return tr;
    });
    var body = document.querySelector('#trial-table tbody');
    body.replaceChildren.apply(body, rows);
    s.dataset.sweepId = d.sweep.id;
    document.body.dataset.tableKey = r.params.toString() + '|' + d.matched;
  }

  function refreshTable() {
    var r = route();
    if (r.view !== 'sweep') return Promise.resolve();
    buildSweepSection();
    var q = tableParams(r).toString();
    var base = '/api/sweeps/' + encodeURIComponent(r.id) + '/table';
    return getJson(base + '?' + q).then(function (d) {
      var key = JSON.stringify(d) + '|' + document.getElementById('trial-all-columns').checked;
      var now = route();
      if (now.view !== 'sweep' || now.id !== r.id) return;
      var changed = table.key !== key;
      if (changed) { table.key = key; renderTable(d, r); }
      // The parallel coordinates take every matching row: fetched again only when the page moved
      // or every PARCOORDS_EVERY_MS, not at every poll.
      if (!changed && Date.now() - table.parcoordsAt < PARCOORDS_EVERY_MS) return;
      table.parcoordsAt = Date.now();
      return refreshParcoords(r, base);
    });
  }
`;
