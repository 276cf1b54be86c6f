// The page of one trial (#/trial/ID): status, attempts, duration and failure reason, its sweeps,
// tags and notes, every config field, its summary metrics, its learning curve (train and validation
// loss per epoch, redrawn as epochs are stored while it trains) and its evaluations.
export const TRIAL_SCRIPT = String.raw`
  var trialKey = null;

  function kvTable(id, obj) {
    var t = el('table', 'kv');
    t.id = id;
    var body = el('tbody');
    Object.keys(obj).forEach(function (k) {
      var tr = el('tr');
      tr.appendChild(el('th', null, k));
      var v = obj[k];
      tr.appendChild(el('td', typeof v === 'number' ? 'num' : '', typeof v === 'object' && v !== null ? JSON.stringify(v) : fmt(v)));
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  function flat(obj, prefix, out) {
    Object.keys(obj).forEach(function (k) {
      var v = obj[k];
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) flat(v, prefix + k + '.', out);
      else out[prefix + k] = Array.isArray(v) ? JSON.stringify(v) : v;
    });
    return out;
  }

  function seconds(a, b) {
    if (!a || !b) return null;
    return (new Date(b).getTime() - new Date(a).getTime()) / 1000;
  }

  function renderTrial(d) {
    var s = section('views-trial');
    var t = d.trial;
    s.dataset.trialId = t.id;
    var parts = [];
    parts.push(el('h2', null, 'Trial ' + t.id));
    var meta = el('p', 'meta');
    meta.id = 'trial-meta';
    var dur = seconds(t.startedAt, t.endedAt);
    meta.textContent = t.status + ' · attempt ' + t.attempt + (dur !== null ? ' · ' + fmt(dur) + ' s' : '') +
      (t.backend ? ' · backend ' + t.backend : '') + ' · code ' + t.codeVersion;
    parts.push(meta);
    var sweeps = el('p', 'sweeps');
    sweeps.appendChild(el('span', null, 'In sweep' + (t.sweeps.length === 1 ? ' ' : 's ')));
    t.sweeps.forEach(function (sw, i) {
      if (i > 0) sweeps.appendChild(el('span', null, ', '));
      sweeps.appendChild(link('#/sweep/' + encodeURIComponent(sw.id), sw.name, 'sweep-link'));
    });
    parts.push(sweeps);
    parts.push(annotationBlock(d.annotation));
    if (t.error) {
      var err = el('p', 'failure');
      err.id = 'trial-failure';
      err.textContent = 'Failed: ' + t.error.type + ': ' + t.error.message + (t.error.nonRetryable ? ' (not retried)' : '');
      parts.push(err);
    }
    parts.push(el('h3', null, 'Learning curve'));
    var curve = document.getElementById('trial-curve') || el('div', 'plot');
    curve.id = 'trial-curve';
    parts.push(curve);
    var cm = el('p', 'meta', d.curve ? d.curve.epochs.length + ' epochs stored' + (d.curve.trialId !== t.id ? ' (trained by trial ' + d.curve.trialId + ', whose model this trial reuses)' : '') : 'No epochs stored yet.');
    cm.id = 'trial-curve-meta';
    parts.push(cm);
    parts.push(el('h3', null, 'Summary'));
    parts.push(kvTable('trial-summary', t.summary || {}));
    parts.push(el('h3', null, 'Evaluations'));
    var et = el('table', null);
    et.id = 'trial-evaluations';
    var head = el('tr');
    ['attack', 'objective', 'eps', 'eps (abs)', 'test points', 'KL mean', 'KL median', 'NLL clean', 'NLL attacked', 'coverage error clean', 'coverage error attacked'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    et.appendChild(el('thead')).appendChild(head);
    var eb = el('tbody');
    d.evaluations.forEach(function (e) {
      var tr = el('tr', 'evaluation');
      [e.attack, e.objective, e.eps, e.epsAbs, e.nTest, e.klMean, e.klMedian, e.nllClean, e.nllAttacked, e.coverageAbsArea.clean, e.coverageAbsArea.attacked].forEach(function (v) {
        tr.appendChild(el('td', typeof v === 'number' ? 'num' : '', fmt(v)));
      });
      eb.appendChild(tr);
    });
    et.appendChild(eb);
    parts.push(et);
    parts.push(el('h3', null, 'Config'));
    parts.push(kvTable('trial-config', flat(t.config, '', {})));
    parts.push(el('p', 'meta', 'Logs: the worker log lines of this trial carry trialId ' + t.id + ' (the JSON log file of ROBUSTSBI_LOG_FILE on the worker that ran it).'));
    s.replaceChildren.apply(s, parts);
    drawCurve(curve, d.curve);
  }

  function drawCurve(div, c) {
    div.dataset.epochs = String(c ? c.epochs.length : 0);
    if (!c || c.epochs.length === 0) return;
    keyedReact(div, [
      { type: 'scatter', mode: 'lines+markers', name: 'train loss', meta: 'train', x: c.epochs, y: c.trainLoss },
      { type: 'scatter', mode: 'lines+markers', name: 'validation loss', meta: 'val', x: c.epochs, y: c.valLoss },
    ], {
      height: 320,
      margin: { l: 60, r: 20, t: 20, b: 45 },
      xaxis: { title: { text: 'epoch' } },
      yaxis: { title: { text: 'loss (NLL)' } },
    });
  }

  function refreshTrial() {
    var r = route();
    if (r.view !== 'trial') return Promise.resolve();
    return getJson('/api/trials/' + encodeURIComponent(r.id)).then(function (d) {
      if (route().id !== r.id) return;
      var key = JSON.stringify(d);
      if (key !== trialKey) { trialKey = key; renderTrial(d); }
      document.body.dataset.drawnTrial = r.id;
    });
  }
`;
