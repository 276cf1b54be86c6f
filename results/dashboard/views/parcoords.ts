// Parallel coordinates over a sweep's completed trials (those passing the table's filters): one
// axis per config field that varies (text fields as categories), then the test NLL and the mean KL
// at each attack x objective x eps, lines coloured by test NLL. Plotly's parcoords trace.
export const PARCOORDS_SCRIPT = String.raw`
  var PARCOORDS_MAX = 5000;

  function parcoordsFigure(d) {
    var rows = d.rows;
    var dims = [];
    d.columns.forEach(function (c) {
      var k = c.key;
      var metric = k === 'testNll' || k.indexOf('kl.') === 0;
      if (!metric && !((k.indexOf('config.') === 0 || k.indexOf('tag.') === 0) && c.varies)) return;
      if (c.numeric) {
        var vals = rows.map(function (r) { return typeof r[k] === 'number' ? r[k] : null; });
        if (!vals.some(function (v) { return v !== null; })) return;
        dims.push({ label: esc(k.replace(/^config\./, '')), values: vals });
      } else {
        var cats = [];
        rows.forEach(function (r) { var v = fmt(r[k]); if (cats.indexOf(v) < 0) cats.push(v); });
        cats.sort();
        dims.push({
          label: esc(k.replace(/^config\./, '')),
          values: rows.map(function (r) { return cats.indexOf(fmt(r[k])); }),
          tickvals: cats.map(function (_, i) { return i; }),
          ticktext: cats.map(esc),
        });
      }
    });
    var color = rows.map(function (r) { return typeof r.testNll === 'number' ? r.testNll : 0; });
    return {
      dims: dims,
      data: [{
        type: 'parcoords',
        meta: 'parcoords',
        line: { color: color, colorscale: 'Viridis', showscale: true, colorbar: { title: { text: 'test NLL' } } },
        dimensions: dims,
      }],
      layout: { height: 420, margin: { l: 70, r: 70, t: 60, b: 30 } },
    };
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
      if (d.rows.length === 0) {
        if (window.Plotly) Plotly.purge(div);
        div.dataset.drawn = '';
        div.dataset.lines = '0';
        meta.textContent = 'No completed trials pass the filters yet.';
        return;
      }
      var f = parcoordsFigure(d);
      div.dataset.lines = String(d.rows.length);
      div.dataset.axes = String(f.dims.length);
      keyedReact(div, f.data, f.layout);
      meta.textContent = d.rows.length + ' completed trials' + (d.matched > d.rows.length ? ' (the first ' + d.rows.length + ' of ' + d.matched + ')' : '') + '; drag along an axis to select a range.';
    });
  }
`;
