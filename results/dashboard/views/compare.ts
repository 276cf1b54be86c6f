// Cross-sweep comparison (#/compare?ids=a,b): pick sweeps from a list (filterable by name or tag),
// then their trade-off points and Pareto fronts in one plot and their KL-vs-eps medians in another,
// one colour per sweep. Every trace carries its sweep's ID in `meta`.
export const COMPARE_SCRIPT = String.raw`
  var PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  var DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];
  var compareKey = null;

  function buildCompareSection() {
    var s = section('views-compare');
    if (s.dataset.built) return s;
    s.dataset.built = '1';
    s.appendChild(el('h2', null, 'Compare sweeps'));
    var p = el('p', 'controls');
    var f = el('input');
    f.type = 'search';
    f.id = 'compare-filter';
    f.size = 40;
    f.placeholder = 'filter: name or tag (key=value)';
    f.addEventListener('input', function () { compareKey = null; refreshCompare(); });
    p.appendChild(f);
    s.appendChild(p);
    var picker = el('ul', 'picker');
    picker.id = 'compare-picker';
    s.appendChild(picker);
    s.appendChild(el('p', 'meta')).id = 'compare-meta';
    var a = el('div', 'plot');
    a.id = 'compare-tradeoff';
    s.appendChild(a);
    var b = el('div', 'plot');
    b.id = 'compare-kl';
    s.appendChild(b);
    return s;
  }

  function chosenIds(r) {
    return (r.params.get('ids') || '').split(',').filter(Boolean);
  }

  function renderPicker(sweeps, ids) {
    var want = document.getElementById('compare-filter').value.trim().toLowerCase();
    var items = [];
    sweeps.forEach(function (s) {
      var tags = Object.keys(s.tags || {}).map(function (k) { return k + '=' + s.tags[k]; });
      var on = ids.indexOf(s.id) >= 0;
      if (!on && want && (s.name + ' ' + tags.join(' ')).toLowerCase().indexOf(want) < 0) return;
      var li = el('li', 'pick');
      li.dataset.sweepId = s.id;
      var box = el('input');
      box.type = 'checkbox';
      box.checked = on;
      box.addEventListener('change', function () {
        var next = chosenIds(route()).filter(function (x) { return x !== s.id; });
        if (box.checked) next.push(s.id);
        location.hash = '#/compare' + (next.length ? '?ids=' + next.map(encodeURIComponent).join(',') : '');
      });
      var label = el('label');
      label.appendChild(box);
      label.appendChild(el('span', 'name', ' ' + s.name + ' '));
      label.appendChild(el('span', 'id', s.id.slice(0, 12)));
      if (tags.length) label.appendChild(el('span', 'tags', ' ' + tags.join(' ')));
      li.appendChild(label);
      items.push(li);
    });
    var ul = document.getElementById('compare-picker');
    ul.replaceChildren.apply(ul, items);
  }

  function overlay(d) {
    var tradeoff = [];
    var kl = [];
    var axes = { x: 'mean KL under attack', y: 'test NLL' };
    d.sweeps.forEach(function (s, si) {
      var color = PALETTE[si % PALETTE.length];
      s.curves.forEach(function (c) {
        var label = esc(s.name) + ' · ' + esc(c.task);
        if (c.kind === 'tradeoff') {
          axes.x = 'mean ' + esc(c.objective) + ' under ' + esc(c.attack) + ' at eps ' + c.eps;
          tradeoff.push({
            type: 'scatter', mode: 'markers', name: label + ' trials', meta: s.id,
            marker: { color: color, size: 8, opacity: 0.6 },
            x: c.points.map(function (p) { return p.x; }), y: c.points.map(function (p) { return p.y; }),
            text: c.points.map(function (p) { return esc(p.defense) + ' beta ' + p.beta + ' seed ' + p.seed; }),
          });
          var front = c.front.map(function (id) { return c.points.filter(function (p) { return p.trialId === id; })[0]; }).filter(Boolean);
          tradeoff.push({
            type: 'scatter', mode: 'lines+markers', name: label + ' front', meta: s.id,
            line: { color: color, width: 2 }, marker: { color: color, size: 11, symbol: 'diamond-open' },
            x: front.map(function (p) { return p.x; }), y: front.map(function (p) { return p.y; }),
          });
        } else if (c.kind === 'kl_vs_eps') {
          c.series.forEach(function (se, k) {
            kl.push({
              type: 'scatter', mode: 'lines+markers', meta: s.id,
              name: label + ' · ' + esc(se.attack) + '/' + esc(se.objective) + ' · ' + esc(se.defense) + ' ' + se.beta,
              line: { color: color, dash: DASHES[k % DASHES.length] },
              x: se.eps, y: se.median,
            });
          });
        }
      });
    });
    var base = { height: 420, margin: { l: 60, r: 20, t: 40, b: 45 }, legend: { font: { size: 10 } } };
    return {
      tradeoff: { data: tradeoff, layout: Object.assign({ title: { text: 'Trade-off fronts' }, xaxis: { title: { text: axes.x } }, yaxis: { title: { text: axes.y } } }, base) },
      kl: { data: kl, layout: Object.assign({ title: { text: 'KL against eps (median over test points)' }, xaxis: { title: { text: 'eps (relative)' } }, yaxis: { title: { text: 'KL' }, type: 'log' } }, base) },
    };
  }

  function refreshCompare() {
    var r = route();
    if (r.view !== 'compare') return Promise.resolve();
    buildCompareSection();
    var ids = chosenIds(r);
    return getJson('/api/sweeps').then(function (list) {
      renderPicker(list.sweeps, ids);
      var meta = document.getElementById('compare-meta');
      var a = document.getElementById('compare-tradeoff');
      var b = document.getElementById('compare-kl');
      if (ids.length === 0) {
        meta.textContent = 'Tick two or more sweeps to overlay their curves.';
        [a, b].forEach(function (div) { if (window.Plotly) Plotly.purge(div); div.dataset.drawn = ''; });
        document.body.dataset.drawnCompare = '';
        return;
      }
      return getJson('/api/compare?ids=' + ids.map(encodeURIComponent).join(',')).then(function (d) {
        var key = JSON.stringify(d);
        if (key === compareKey) return;
        compareKey = key;
        meta.textContent = 'Comparing ' + d.sweeps.map(function (s) { return s.name + ' (' + s.status + ')'; }).join(', ') + '.';
        var f = overlay(d);
        keyedReact(a, f.tradeoff.data, f.tradeoff.layout);
        keyedReact(b, f.kl.data, f.kl.layout);
        document.body.dataset.drawnCompare = ids.join(',');
      });
    });
  }
`;
