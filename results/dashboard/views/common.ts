// Helpers every view script shares (served in one /views.js, inside one function scope): DOM
// building with textContent only, JSON fetches, HTML escaping for the strings handed to Plotly
// (which reads a few tags in labels), number formatting and the route of the URL's hash.
export const COMMON_SCRIPT = String.raw`
  var POLL_MS = 2000;

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function link(href, text, className) {
    var a = el('a', className, text);
    a.href = href;
    return a;
  }

  function getJson(path) {
    return fetch(path, { cache: 'no-store', credentials: 'omit' }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.error ? body.error : path + ' answered ' + r.status);
        return body;
      });
    });
  }

  var ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  /** For Plotly's labels, legends, ticks and hovers: markup in a name must show as text. */
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; });
  }

  function fmt(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return isFinite(v) ? String(Number(v.toPrecision(4))) : 'non-finite';
    return String(v);
  }

  function section(id) {
    var s = document.getElementById(id);
    if (!s) {
      s = el('section', 'view');
      s.id = id;
      document.querySelector('main').appendChild(s);
    }
    return s;
  }

  function showError(text) {
    var e = document.getElementById('views-error');
    if (!e) {
      e = el('p', 'alert');
      e.id = 'views-error';
      e.setAttribute('role', 'alert');
      document.querySelector('main').appendChild(e);
    }
    e.textContent = text || '';
    e.hidden = !text;
  }

  /** The view the hash names: #/sweep/ID[?query], #/trial/ID, #/compare[?ids=a,b], else home. */
  function route() {
    var h = location.hash;
    var q = '';
    var at = h.indexOf('?');
    if (at >= 0) { q = h.slice(at + 1); h = h.slice(0, at); }
    var params = new URLSearchParams(q);
    var m = /^#\/(sweep|trial)\/([^/]+)$/.exec(h) || /^#(sweep)=([^/]+)$/.exec(h);
    if (m) {
      var id;
      try { id = decodeURIComponent(m[2]); } catch (e) { id = ''; }
      return { view: m[1], id: id, params: params };
    }
    if (h === '#/compare') return { view: 'compare', id: null, params: params };
    return { view: 'home', id: null, params: params };
  }

  function annotationBlock(a) {
    var d = el('div', 'annotations');
    var tags = el('p', 'tags');
    Object.keys(a.tags).sort().forEach(function (k) {
      tags.appendChild(el('span', 'tag', k + '=' + a.tags[k]));
    });
    if (tags.children.length > 0) d.appendChild(tags);
    if (a.notes.length > 0) {
      var ul = el('ul', 'notes');
      a.notes.forEach(function (n) {
        var li = el('li', 'note');
        li.appendChild(el('span', 'note-time', n.at.replace('T', ' ').slice(0, 19) + ' UTC: '));
        li.appendChild(el('span', 'note-text', n.text));
        ul.appendChild(li);
      });
      d.appendChild(ul);
    }
    return d;
  }

  function keyedReact(div, data, layout) {
    var key = JSON.stringify([data, layout]);
    if (div.dataset.drawn === key || !window.Plotly) return;
    Plotly.react(div, data, layout, { displaylogo: false, responsive: true });
    div.dataset.drawn = key;
  }
`;
