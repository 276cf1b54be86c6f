// /views.js and /views.css: the dashboard's views beside the sweeps list of page.ts, one module per
// view, joined into one script under the same CSP rules as page.ts (textContent only; strings
// handed to Plotly escaped). The hash names the view: #/sweep/ID (page.ts draws the sweep's plots,
// this script its trial table and parallel coordinates), #/trial/ID, #/compare?ids=a,b.
import { COMMON_SCRIPT } from './common.js';
import { COMPARE_SCRIPT } from './compare.js';
import { PARCOORDS_SCRIPT } from './parcoords.js';
import { SWEEP_TABLE_SCRIPT } from './sweep-table.js';
import { TRIAL_SCRIPT } from './trial.js';

const ROUTER_SCRIPT = String.raw`
  function refresh() {
    var r = route();
    document.body.dataset.view = r.view;
    var p = r.view === 'sweep' ? refreshTable() : r.view === 'trial' ? refreshTrial() : r.view === 'compare' ? refreshCompare() : Promise.resolve();
    return p.then(function () { showError(''); }, function (e) { showError('Cannot show this view: ' + e.message); });
  }

  var timer = null;
  function loop() {
    clearTimeout(timer);
    refresh().then(function () { timer = setTimeout(loop, POLL_MS); });
  }
  window.addEventListener('hashchange', function () {
    trialKey = null;
    compareKey = null;
    table.key = null;
    // A new page (trial, comparison) opens at its top; sorting or filtering a table stays put.
    if (route().view !== 'sweep') window.scrollTo(0, 0);
    loop();
  });
  loop();
`;

export const VIEWS_SCRIPT = `'use strict';
(function () {
${COMMON_SCRIPT}
${SWEEP_TABLE_SCRIPT}
${PARCOORDS_SCRIPT}
${TRIAL_SCRIPT}
${COMPARE_SCRIPT}
${ROUTER_SCRIPT}
})();
`;

export const VIEWS_CSS = `
section.view{display:none}
body[data-view="sweep"] #views-sweep,body[data-view="trial"] #views-trial,body[data-view="compare"] #views-compare{display:block}
body[data-view="trial"] #sweeps-section,body[data-view="trial"] #detail,body[data-view="compare"] #sweeps-section,body[data-view="compare"] #detail,body[data-view="home"] #detail{display:none !important}
#trial-table th{cursor:pointer;white-space:nowrap}#trial-table th.sorted-asc::after{content:" \\25B2"}#trial-table th.sorted-desc::after{content:" \\25BC"}
#trial-table td.col{font-size:13px;max-width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.status-row-failed{background:#fdf0ef}.status-row-running{background:#eef5fc}
.tag{display:inline-block;background:#e6eefa;border-radius:3px;padding:1px 6px;margin:0 4px 2px 0;font-size:13px}
.notes{margin:4px 0;padding-left:18px}.note-time{color:#666;font-size:12px}
.failure{color:#b3261e;font-weight:600;white-space:pre-wrap}.alert{color:#b3261e;font-weight:600}
table.kv th{width:240px;font-weight:500}.picker{list-style:none;padding:0}.picker li{margin:2px 0}
.controls button{margin:0 2px}
`;
