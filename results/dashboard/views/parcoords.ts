// Parallel coordinates over a sweep's completed trials (those passing the table's filters): one
// axis per config field or tag that varies (text as categories), then the test NLL and the mean KL
// at each attack x objective x eps; one line per trial, coloured by test NLL, linking to its page.
// Drawn as SVG here rather than with Plotly's parcoords, whose WebGL code generation needs
// 'unsafe-eval', which the dashboard's Content-Security-Policy does not allow.
export const PARCOORDS_SCRIPT = String.raw`
  var PARCOORDS_MAX = 5000;
  var SVG = 'http://www.w3.org/2000/svg';
  var VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function viridis(t) {
    var x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    var i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    var f = x - i;
    var c = VIRIDIS[i].map(function (a, k) { return Math.round(a + f * (VIRIDIS[i + 1][k] - a)); });
    return 'rgb(' + c.join(',') + ')';
  }

  /** The axes: label, each row's value in [0, 1] (null: none) and tick labels at 0 and 1 or per category. */
  function parcoordsAxes(d) {
    var rows = d.rows;
    var axes = [];
    d.columns.forEach(function (c) {
      var k = c.key;
      var metric = k === 'testNll' || k.indexOf('kl.') === 0;
      if (!metric && !((k.indexOf('config.') === 0 || k.indexOf('tag.') === 0) && c.varies)) return;
      if (/Id$/.test(k)) return;
      var label = k.replace(/^config\./, '');
      if (c.numeric) {
        var vals = rows.map(function (r) { return typeof r[k] === 'number' ? r[k] : null; });
        var got = vals.filter(function (v) { return v !== null; });
        if (got.length === 0) return;
        var lo = Math.min.apply(null, got);
        var hi = Math.max.apply(null, got);
        axes.push({
          label: label,
          pos: vals.map(function (v) { return v === null ? null : hi > lo ? (v - lo) / (hi - lo) : 0.5; }),
          ticks: hi > lo ? [[0, fmt(lo)], [1, fmt(hi)]] : [[0.5, fmt(lo)]],
        });
      } else {
        var cats = [];
        rows.forEach(function (r) { var v = fmt(r[k]); if (cats.indexOf(v) < 0) cats.push(v); });
        cats.sort();
        var at = function (i) { return cats.length > 1 ? i / (cats.length - 1) : 0.5; };
        axes.push({
          label: label,
          pos: rows.map(function (r) { return at(cats.indexOf(fmt(r[k]))); }),
          ticks: cats.map(function (v, i) { return [at(i), v]; }),
        });
      }
    });
    return axes;
  }

  function drawParcoords(div, d) {
    var axes = parcoordsAxes(d);
    var W = Math.max(600, Math.min(1400, 130 * axes.length));
    var H = 380;
    var top = 50;
    var bottom = 30;
    var left = 70;
    var step = axes.length > 1 ? (W - 2 * left) / (axes.length - 1) : 0;
    var x = function (i) { return left + i * step; };
    var y = function (p) { return top + (1 - p) * (H - top - bottom); };
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'parcoords-svg' });
    var nll = d.rows.map(function (r) { return typeof r.testNll === 'number' ? r.testNll : null; });
    var have = nll.filter(function (v) { return v !== null; });
    var lo = Math.min.apply(null, have);
    var hi = Math.max.apply(null, have);
    var lines = svg('g', { class: 'lines' });
    d.rows.forEach(function (r, j) {
      var pts = [];
      axes.forEach(function (a, i) { if (a.pos[j] !== null) pts.push(x(i) + ',' + y(a.pos[j])); });
      var t = nll[j] === null || !(hi > lo) ? 0.5 : (nll[j] - lo) / (hi - lo);
      var line = svg('polyline', { points: pts.join(' '), fill: 'none', stroke: viridis(t), 'stroke-width': 1.5, 'stroke-opacity': 0.8, class: 'trial-line' });
      line.dataset.trialId = String(r.id);
      line.appendChild(svg('title', {}, String(r.id).slice(0, 16) + ' · test NLL ' + fmt(r.testNll)));
      line.addEventListener('click', function () { location.hash = '#/trial/' + encodeURIComponent(r.id); });
      lines.appendChild(line);
    });
    root.appendChild(lines);
    axes.forEach(function (a, i) {
      var g = svg('g', { class: 'axis' });
      g.appendChild(svg('line', { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: '#444' }));
      g.appendChild(svg('text', { x: x(i), y: top - 22, 'text-anchor': 'middle', class: 'axis-title', 'font-size': 12 }, a.label));
      a.ticks.forEach(function (t) {
        g.appendChild(svg('text', { x: x(i) + 5, y: y(t[0]) + 4, class: 'tick', 'font-size': 10, fill: '#333' }, t[1]));
      });
      root.appendChild(g);
    });
    div.replaceChildren(root);
    return axes;
  }

  function refreshParcoords(r, base) {
    var p = tableParams(r);
    p.delete('page');
    p.delete('sort');
    p.delete('dir');
    p.set('size', String(PARCOORDS_MAX));
    p.append('f', 'status=completed');
    return getJson(base + '?' + p.toString()).then(function (d) {
      var div = document.getElementById('parcoords');
      var meta = document.getElementById('parcoords-meta');
      var key = JSON.stringify([d.rows, d.columns]);
      if (div.dataset.drawn === key) return;
      div.dataset.drawn = key;
      div.dataset.lines = String(d.rows.length);
      if (d.rows.length === 0) {
        div.replaceChildren();
        meta.textContent = 'No completed trials pass the filters yet.';
        return;
      }
      var axes = drawParcoords(div, d);
      div.dataset.axes = String(axes.length);
      meta.textContent = d.rows.length + ' completed trials' + (d.matched > d.rows.length ? ' (the first ' + d.rows.length + ' of ' + d.matched + ')' : '') +
        ', coloured by test NLL (dark: low, yellow: high); click a line for its trial.';
    });
  }
`;
