import { createHash } from 'node:crypto';

/**
 * The live status page the admin listener serves at `GET /`: one HTML
 * document with its CSS and script inline, no build step and nothing fetched
 * but `status.json` beside it (relative, so the page also works behind a
 * proxy under a sub-path). It polls once a second and draws its charts
 * itself in inline SVG from `history` (closed 5-second buckets over 10
 * minutes, each stamped with its end) and, for the bucket still filling,
 * the rate between two successive polls.
 *
 * Every string that comes from the daemon (error messages, check details,
 * paths) is put in the page with `textContent` or as an SVG attribute value,
 * never parsed as HTML. The document carries a Content-Security-Policy that
 * allows only its own inline style and script (by hash) and requests to its
 * own origin; {@link STATUS_PAGE_CSP} is the same policy for a response
 * header, where `frame-ancestors` also takes effect.
 */

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1a1a1a; --muted: #595959; --line: #d4d4d4; --tile: #f4f4f5;
  --ok: #166534; --bad: #b91c1c; --warn: #92400e;
  --c-socket: #1d4ed8; --c-table: #c2410c; --c-replay: #15803d; --c-api: #7e22ce; --c-daemon: #57534e;
  --c-deliveries: #0f766e; --c-connections: #1d4ed8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111113; --fg: #ececec; --muted: #a3a3a3; --line: #3f3f46; --tile: #1c1c20;
    --ok: #4ade80; --bad: #f87171; --warn: #fbbf24;
    --c-socket: #60a5fa; --c-table: #fb923c; --c-replay: #4ade80; --c-api: #c084fc; --c-daemon: #d6d3d1;
    --c-deliveries: #2dd4bf; --c-connections: #60a5fa;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 0 0 .25rem; }
section { border-top: 1px solid var(--line); padding: .9rem 0; }
.meta { color: var(--muted); margin: 0 0 .75rem; }
.num { font-variant-numeric: tabular-nums; }
#state { margin: 0 0 .5rem; padding: .35rem .6rem; border-radius: .3rem; display: inline-block; font-weight: 600; }
#state.live { color: var(--ok); border: 1px solid currentColor; }
#state.down { background: #b91c1c; color: #ffffff; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr)); gap: .6rem; margin: 0; }
.tiles div { background: var(--tile); border-radius: .4rem; padding: .5rem .7rem; }
.tiles dt { color: var(--muted); font-size: .85rem; }
.tiles dd { margin: 0; font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.pairs { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
.pairs dt { color: var(--muted); }
.pairs dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: 0 2rem; }
svg.chart { display: block; width: 100%; height: 180px; }
svg.chart.small { height: 120px; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart text { fill: var(--muted); font-size: 11px; font-family: inherit; }
svg.chart polyline { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .start { stroke-dasharray: 3 3; stroke: var(--muted); }
.d-socket { fill: var(--c-socket); } .d-table { fill: var(--c-table); } .d-replay { fill: var(--c-replay); }
.d-api { fill: var(--c-api); } .d-daemon { fill: var(--c-daemon); } .d-deliveries { fill: var(--c-deliveries); } .d-connections { fill: var(--c-connections); }
.s-socket { stroke: var(--c-socket); }
.s-table { stroke: var(--c-table); stroke-dasharray: 7 3; }
.s-replay { stroke: var(--c-replay); stroke-dasharray: 2 3; }
.s-api { stroke: var(--c-api); stroke-dasharray: 9 3 2 3; }
.s-daemon { stroke: var(--c-daemon); stroke-dasharray: 4 4; }
.s-deliveries { stroke: var(--c-deliveries); }
.s-connections { stroke: var(--c-connections); }
table { border-collapse: collapse; width: 100%; }
#h-events + svg + table { max-width: 36rem; }
th, td { text-align: left; padding: .2rem .6rem .2rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { width: 2rem; height: .8rem; vertical-align: middle; }
.swatch line { stroke-width: 3; }
.ok { color: var(--ok); } .bad { color: var(--bad); font-weight: 600; } .warn { color: var(--warn); font-weight: 600; }
ul.checks { list-style: none; padding: 0; margin: .4rem 0 0; }
ul.checks li { padding: .1rem 0; overflow-wrap: anywhere; }
.msg { overflow-wrap: anywhere; }
.empty { color: var(--muted); }
body.stale main .tiles dd, body.stale main .pairs dd, body.stale main td, body.stale main li, body.stale #uptime { color: var(--muted); }
body.stale main svg.chart { opacity: .45; filter: grayscale(1); }
footer { max-width: 72rem; margin: 0 auto; padding: .5rem 1rem 1.5rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 30rem) {
  .tiles dd { font-size: 1.3rem; }
  .pairs { grid-template-columns: 1fr; }
  .pairs dd { margin-bottom: .35rem; }
}
`;

const SCRIPT = `
(function () {
  'use strict';
  var SOURCES = ['socket', 'table', 'replay', 'api', 'daemon'];
  var WINDOW_MS = 10 * 60 * 1000;
  var POLL_MS = 1000;
  var TIMEOUT_MS = 3000;
  var SVGNS = 'http://www.w3.org/2000/svg';
  var DASH = '\\u2014';
  var prev = null;
  var last = null;
  var live = null;
  var downSince = 0;

  function $(id) { return document.getElementById(id); }
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function obj(v) { return v !== null && typeof v === 'object' ? v : {}; }
  function int(v) { return isNum(v) ? Math.round(v).toLocaleString('en-US') : DASH; }
  function rate(v) {
    if (!isNum(v)) return DASH;
    return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  }
  function ms(v) {
    if (!isNum(v)) return DASH;
    return (v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')) + ' ms';
  }
  function dur(s) {
    if (!isNum(s)) return DASH;
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + x + ' s';
    return x + ' s';
  }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function clock(t) {
    if (!isNum(t)) return DASH;
    var d = new Date(t), today = new Date();
    var time = pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
    if (d.toDateString() === today.toDateString()) return time;
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + time;
  }
  function str(v) { return v === null || v === undefined ? DASH : String(v); }

  /** Sets an element's text, and its raw value in data-value (for tests and scrapers). */
  function set(id, text, value, cls) {
    var e = $(id);
    if (!e) return;
    e.textContent = text;
    if (value !== undefined) e.setAttribute('data-value', value === null || value === undefined ? '' : String(value));
    if (cls !== undefined) e.className = cls;
  }

  /** Builds an element; string children become text nodes, never markup. */
  function el(tag, cls, children) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    for (var i = 0; i < (children || []).length; i++) {
      var c = children[i];
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clear(e) { while (e.lastChild) e.removeChild(e.lastChild); }

  function sum(o) {
    var t = 0;
    for (var i = 0; i < SOURCES.length; i++) { var v = o[SOURCES[i]]; if (isNum(v)) t += v; }
    return t;
  }

  /** Per-second rates between two polls of the same daemon run, or null. */
  function rates(a, b) {
    if (!a || !b || a.started_at !== b.started_at) return null;
    var dt = (b.now - a.now) / 1000;
    if (!(dt > 0)) return null;
    var ea = obj(a.events), eb = obj(b.events), r = {};
    for (var i = 0; i < SOURCES.length; i++) {
      var k = SOURCES[i];
      r[k] = isNum(ea[k]) && isNum(eb[k]) && eb[k] >= ea[k] ? (eb[k] - ea[k]) / dt : null;
    }
    r.total = sum(r);
    r.deliveries = isNum(a.deliveries) && isNum(b.deliveries) && b.deliveries >= a.deliveries ? (b.deliveries - a.deliveries) / dt : null;
    return r;
  }

  /** A round upper bound for a y axis: 1, 2 or 5 times a power of ten. */
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v))), f = v / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }
  function tick(v) { return v >= 1000 ? (v / 1000) + 'k' : v < 1 ? String(Math.round(v * 100) / 100) : String(v); }

  /**
   * Draws series ([{name, points: [[t, v], ...]}]) over the last WINDOW_MS
   * ending at 'now', with a y axis from 0 to a round maximum.
   */
  function chart(node, now, series, startedAt) {
    var box = node.getBoundingClientRect();
    var w = Math.max(220, Math.round(box.width) || 600), h = Math.max(80, Math.round(box.height) || 180);
    var L = 40, R = 8, T = 8, B = 20;
    node.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    clear(node);
    var max = 0;
    for (var i = 0; i < series.length; i++) {
      for (var j = 0; j < series[i].points.length; j++) max = Math.max(max, series[i].points[j][1]);
    }
    max = niceMax(max);
    var t0 = now - WINDOW_MS;
    function x(t) { return L + (t - t0) / WINDOW_MS * (w - L - R); }
    function y(v) { return T + (1 - v / max) * (h - T - B); }
    var g = svg('g', { 'aria-hidden': 'true' });
    [0, max / 2, max].forEach(function (v) {
      g.appendChild(svg('line', { 'class': 'grid', x1: L, x2: w - R, y1: y(v), y2: y(v) }));
      g.appendChild(svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, tick(v)));
    });
    [[-10, 'start', '\\u221210 min'], [-5, 'middle', '\\u22125 min'], [0, 'end', 'now']].forEach(function (m) {
      var xm = x(now + m[0] * 60000);
      g.appendChild(svg('line', { 'class': 'grid', x1: xm, x2: xm, y1: T, y2: h - B }));
      g.appendChild(svg('text', { x: xm, y: h - 5, 'text-anchor': m[1] }, m[2]));
    });
    if (isNum(startedAt) && startedAt > t0) {
      var xs = x(startedAt);
      g.appendChild(svg('line', { 'class': 'grid start', x1: xs, x2: xs, y1: T, y2: h - B }));
      var right = xs > w - R - 40;
      g.appendChild(svg('text', { x: right ? xs - 3 : xs + 3, y: T + 10, 'text-anchor': right ? 'end' : 'start' }, 'start'));
    }
    node.appendChild(g);
    for (var s = 0; s < series.length; s++) {
      var pts = [], lastPt = null;
      for (var k = 0; k < series[s].points.length; k++) {
        var p = series[s].points[k];
        if (p[0] < t0 || p[0] > now) continue;
        lastPt = [x(p[0]), y(p[1])];
        pts.push(lastPt[0].toFixed(1) + ',' + lastPt[1].toFixed(1));
      }
      node.appendChild(svg('polyline', { 'class': 's-' + series[s].name, 'data-series': series[s].name, 'data-points': pts.length, points: pts.join(' ') }));
      // The latest value as a dot: visible even while the line has a single point.
      if (lastPt) node.appendChild(svg('circle', { 'class': 'dot d-' + series[s].name, cx: lastPt[0].toFixed(1), cy: lastPt[1].toFixed(1), r: 2.5 }));
    }
  }

  /**
   * The chart series from history: one point per bucket with the bucket's
   * count per second (or, for 'connections', the level at its end), then
   * the live point at 'now'.
   */
  function historySeries(s, names, liveValues) {
    var hist = Array.isArray(s.history) ? s.history : [];
    var step = hist.length >= 2 && hist[1].t > hist[0].t ? hist[1].t - hist[0].t : 5000;
    var out = [];
    for (var i = 0; i < names.length; i++) {
      var name = names[i], pts = [];
      for (var j = 0; j < hist.length; j++) {
        var b = obj(hist[j]);
        // t is the end of a closed bucket; the one still filling is the live point.
        if (!isNum(b.t) || !isNum(b[name])) continue;
        pts.push([b.t, name === 'connections' ? b[name] : b[name] * 1000 / step]);
      }
      var lv = liveValues ? liveValues[name] : null;
      if (isNum(lv)) pts.push([s.now, lv]);
      out.push({ name: name, points: pts });
    }
    return out;
  }

  function renderCharts(s) {
    chart($('events-chart'), s.now, historySeries(s, SOURCES, live), s.started_at);
    chart($('deliveries-chart'), s.now, historySeries(s, ['deliveries'], live), s.started_at);
    chart($('connections-chart'), s.now, historySeries(s, ['connections'], { connections: s.connections }), s.started_at);
    var parts = [];
    for (var i = 0; i < SOURCES.length; i++) parts.push(SOURCES[i] + ' ' + rate(live ? live[SOURCES[i]] : null));
    $('events-chart').setAttribute('aria-label', 'Events per second by source over the last 10 minutes; now: ' + parts.join(', '));
    $('deliveries-chart').setAttribute('aria-label', 'Deliveries per second over the last 10 minutes; now: ' + rate(live ? live.deliveries : null));
    $('connections-chart').setAttribute('aria-label', 'Connections over the last 10 minutes; now: ' + int(s.connections));
  }

  function render(s) {
    var ev = obj(s.events);
    set('version', str(s.version));
    set('uptime', dur(s.uptime_s), s.uptime_s);
    set('updated', clock(s.now));
    set('connections', int(s.connections), s.connections);
    set('users', int(s.users), s.users);
    set('folder-subscriptions', int(s.folder_subscriptions), s.folder_subscriptions);
    set('kb-subscriptions', int(s.kb_subscriptions), s.kb_subscriptions);
    set('events-total', int(sum(ev)), sum(ev));
    for (var i = 0; i < SOURCES.length; i++) {
      var k = SOURCES[i];
      set('total-' + k, int(ev[k]), ev[k]);
      set('rate-' + k, rate(live ? live[k] : null), live ? live[k] : null);
    }
    set('rate-total', rate(live ? live.total : null), live ? live.total : null);
    set('deliveries-rate', rate(live ? live.deliveries : null), live ? live.deliveries : null);
    set('deliveries-total', int(s.deliveries), s.deliveries);
    set('duplicates', int(s.duplicates), s.duplicates);

    var lat = obj(s.latency_ms);
    set('latency-p50', ms(lat.p50), lat.p50);
    set('latency-p99', ms(lat.p99), lat.p99);
    set('latency-count', int(lat.count), lat.count);

    var lag = obj(s.event_loop_lag_ms);
    set('loop-p50', ms(lag.p50), lag.p50);
    set('loop-p99', ms(lag.p99), lag.p99);
    set('loop-max', ms(lag.max), lag.max);

    var p = obj(s.poller);
    if (p.enabled === false) set('poller-state', 'disabled (poller.enabled is false)', 'disabled', '');
    else if (p.holds_lock === true) set('poller-state', 'polling (holds the lock)', 'active', 'ok');
    else if (p.holds_lock === false) set('poller-state', 'standby (another daemon holds the lock)', 'standby', '');
    else set('poller-state', DASH, null, '');
    set('poller-backlog', int(p.backlog), p.backlog, p.backlog > 0 ? 'warn' : '');
    set('poller-lag', ms(p.lag_ms), p.lag_ms);
    set('poller-last', isNum(p.last_poll_ms_ago) ? ms(p.last_poll_ms_ago) + ' ago' : DASH, p.last_poll_ms_ago);

    var j = obj(s.journal);
    set('journal-queued', int(j.queued), j.queued);
    set('journal-written', int(j.written), j.written);
    set('journal-errors', int(j.write_errors), j.write_errors, j.write_errors > 0 ? 'bad' : '');
    set('journal-dropped', int(j.dropped), j.dropped, j.dropped > 0 ? 'bad' : '');
    set('journal-slow', j.slow === true ? 'yes: writes fall behind' : j.slow === false ? 'no' : DASH, j.slow, j.slow === true ? 'warn' : '');

    var r = obj(s.ready);
    set('ready-state', r.ready === true ? 'ready' : r.ready === false ? 'not ready' : DASH, r.ready, r.ready === true ? 'ok' : r.ready === false ? 'bad' : '');
    var list = $('ready-checks');
    clear(list);
    var checks = Array.isArray(r.checks) ? r.checks : [];
    for (var c = 0; c < checks.length; c++) {
      var ch = obj(checks[c]);
      var li = el('li', null, [
        el('span', ch.ok ? 'ok' : 'bad', [ch.ok ? '\\u2713 ok' : '\\u2717 failing']),
        ' ', el('strong', null, [str(ch.name)]),
        ch.detail ? ': ' + String(ch.detail) : '',
      ]);
      li.setAttribute('data-ok', ch.ok ? 'true' : 'false');
      list.appendChild(li);
    }

    var errs = Array.isArray(s.recent_errors) ? s.recent_errors.slice() : [];
    errs.sort(function (a, b) { return (obj(b).time || 0) - (obj(a).time || 0); });
    var body = $('errors');
    clear(body);
    for (var e = 0; e < errs.length; e++) {
      var er = obj(errs[e]);
      var time = el('td', 'num', [clock(er.time)]);
      if (isNum(er.time)) time.title = new Date(er.time).toISOString();
      body.appendChild(el('tr', null, [time, el('td', er.level === 'error' || er.level === 'fatal' ? 'bad' : 'warn', [str(er.level)]), el('td', 'msg', [str(er.msg) + (er.code ? ' (' + String(er.code) + ')' : '')])]));
    }
    $('errors-table').hidden = errs.length === 0;
    $('errors-none').hidden = errs.length !== 0;
    set('errors-count', String(errs.length), errs.length);

    var cfg = obj(s.config);
    set('config-file', cfg.file ? String(cfg.file) : 'none (defaults, TPWS_* environment and flags)');
    set('config-teampass', cfg.teampass_root ? String(cfg.teampass_root) : 'not read');
    set('config-store', str(cfg.store));
    set('config-listen', str(cfg.listen));
    set('config-ingest', cfg.ingest_socket ? String(cfg.ingest_socket) : 'none');
    set('started', clock(s.started_at));

    renderCharts(s);
  }

  function setState(ok, why) {
    var st = $('state');
    if (ok) {
      downSince = 0;
      document.body.classList.remove('stale');
      st.className = 'live';
      st.textContent = 'live';
      return;
    }
    if (downSince === 0) downSince = Date.now();
    document.body.classList.add('stale');
    st.className = 'down';
    st.textContent = 'daemon unreachable' + (why ? ' (' + why + ')' : '') + (last ? '; showing the numbers of ' + clock(last.now) : '');
  }

  function poll() {
    var started = Date.now();
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, TIMEOUT_MS);
    fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' }, signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (s) {
        if (!s || typeof s !== 'object' || !isNum(s.now)) throw new Error('not a tp-ws status');
        live = rates(prev, s) || (prev && prev.started_at === s.started_at ? live : null);
        prev = s;
        last = s;
        render(s);
        setState(true);
      })
      .catch(function (err) {
        // fetch rejects with a TypeError when no connection could be made.
        var why = err && err.name === 'AbortError' ? 'no answer within ' + (TIMEOUT_MS / 1000) + ' s'
          : err instanceof TypeError ? 'no connection' : err && err.message ? err.message : 'request failed';
        setState(false, why);
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, Math.max(100, POLL_MS - (Date.now() - started)));
      });
  }

  window.addEventListener('resize', function () { if (last) renderCharts(last); });
  poll();
})();
`;

const BODY = `
<header>
  <h1>tp-ws status</h1>
  <p id="state" role="status" aria-live="polite">connecting…</p>
  <p class="meta">version <span id="version">—</span> · up <span id="uptime" class="num">—</span> (since <span id="started" class="num">—</span>) · updated <span id="updated" class="num">—</span></p>
</header>
<main>
  <section aria-labelledby="h-now">
    <h2 id="h-now">Now</h2>
    <dl class="tiles">
      <div><dt>Connections</dt><dd id="connections">—</dd></div>
      <div><dt>Users</dt><dd id="users">—</dd></div>
      <div><dt>Events/s</dt><dd id="rate-total">—</dd></div>
      <div><dt>Deliveries/s</dt><dd id="deliveries-rate">—</dd></div>
      <div><dt>Latency p50</dt><dd id="latency-p50">—</dd></div>
      <div><dt>Latency p99</dt><dd id="latency-p99">—</dd></div>
    </dl>
  </section>

  <section aria-labelledby="h-events">
    <h2 id="h-events">Events per second, by source</h2>
    <svg id="events-chart" class="chart" role="img" aria-label="Events per second by source over the last 10 minutes"></svg>
    <table aria-labelledby="h-events">
      <thead><tr><th scope="col">source</th><th scope="col" class="n">now (/s)</th><th scope="col" class="n">since start</th></tr></thead>
      <tbody>
        <tr><th scope="row"><svg class="swatch" aria-hidden="true" viewBox="0 0 32 12"><line class="s-socket" x1="0" y1="6" x2="32" y2="6"/></svg> socket</th><td class="n" id="rate-socket">—</td><td class="n" id="total-socket">—</td></tr>
        <tr><th scope="row"><svg class="swatch" aria-hidden="true" viewBox="0 0 32 12"><line class="s-table" x1="0" y1="6" x2="32" y2="6"/></svg> table</th><td class="n" id="rate-table">—</td><td class="n" id="total-table">—</td></tr>
        <tr><th scope="row"><svg class="swatch" aria-hidden="true" viewBox="0 0 32 12"><line class="s-replay" x1="0" y1="6" x2="32" y2="6"/></svg> replay</th><td class="n" id="rate-replay">—</td><td class="n" id="total-replay">—</td></tr>
        <tr><th scope="row"><svg class="swatch" aria-hidden="true" viewBox="0 0 32 12"><line class="s-api" x1="0" y1="6" x2="32" y2="6"/></svg> api</th><td class="n" id="rate-api">—</td><td class="n" id="total-api">—</td></tr>
        <tr><th scope="row"><svg class="swatch" aria-hidden="true" viewBox="0 0 32 12"><line class="s-daemon" x1="0" y1="6" x2="32" y2="6"/></svg> daemon</th><td class="n" id="rate-daemon">—</td><td class="n" id="total-daemon">—</td></tr>
      </tbody>
      <tfoot><tr><th scope="row">all</th><td class="n"></td><td class="n" id="events-total">—</td></tr></tfoot>
    </table>
  </section>

  <div class="cols">
    <section aria-labelledby="h-deliveries">
      <h2 id="h-deliveries">Deliveries per second</h2>
      <svg id="deliveries-chart" class="chart small" role="img" aria-label="Deliveries per second over the last 10 minutes"></svg>
      <dl class="pairs">
        <dt>delivered since start</dt><dd id="deliveries-total">—</dd>
        <dt>duplicates dropped</dt><dd id="duplicates">—</dd>
        <dt>latency sample</dt><dd><span id="latency-count">—</span> events in the last minute (creation → fan-out)</dd>
      </dl>
    </section>
    <section aria-labelledby="h-connections">
      <h2 id="h-connections">Connections</h2>
      <svg id="connections-chart" class="chart small" role="img" aria-label="Connections over the last 10 minutes"></svg>
      <dl class="pairs">
        <dt>folder subscriptions</dt><dd id="folder-subscriptions">—</dd>
        <dt>knowledge-base subscriptions</dt><dd id="kb-subscriptions">—</dd>
      </dl>
    </section>
  </div>

  <div class="cols">
    <section aria-labelledby="h-poller">
      <h2 id="h-poller">Table poller</h2>
      <dl class="pairs">
        <dt>state</dt><dd id="poller-state">—</dd>
        <dt>backlog (rows)</dt><dd id="poller-backlog">—</dd>
        <dt>lag</dt><dd id="poller-lag">—</dd>
        <dt>last poll</dt><dd id="poller-last">—</dd>
      </dl>
    </section>
    <section aria-labelledby="h-journal">
      <h2 id="h-journal">Journal</h2>
      <dl class="pairs">
        <dt>queued</dt><dd id="journal-queued">—</dd>
        <dt>written</dt><dd id="journal-written">—</dd>
        <dt>write errors</dt><dd id="journal-errors">—</dd>
        <dt>dropped</dt><dd id="journal-dropped">—</dd>
        <dt>slow</dt><dd id="journal-slow">—</dd>
      </dl>
    </section>
  </div>

  <section aria-labelledby="h-ready">
    <h2 id="h-ready">Readiness: <span id="ready-state">—</span></h2>
    <ul class="checks" id="ready-checks"></ul>
  </section>

  <section aria-labelledby="h-errors">
    <h2 id="h-errors">Recent errors (<span id="errors-count">0</span>)</h2>
    <p id="errors-none" class="empty">None.</p>
    <table id="errors-table" hidden>
      <thead><tr><th scope="col">time</th><th scope="col">level</th><th scope="col">message</th></tr></thead>
      <tbody id="errors"></tbody>
    </table>
  </section>

  <div class="cols">
    <section aria-labelledby="h-config">
      <h2 id="h-config">Configuration</h2>
      <dl class="pairs">
        <dt>config file</dt><dd id="config-file">—</dd>
        <dt>TeamPass install</dt><dd id="config-teampass">—</dd>
        <dt>store</dt><dd id="config-store">—</dd>
        <dt>WebSocket listener</dt><dd id="config-listen">—</dd>
        <dt>ingest socket</dt><dd id="config-ingest">—</dd>
      </dl>
    </section>
    <section aria-labelledby="h-loop">
      <h2 id="h-loop">Event loop lag</h2>
      <dl class="pairs">
        <dt>p50</dt><dd id="loop-p50">—</dd>
        <dt>p99</dt><dd id="loop-p99">—</dd>
        <dt>max</dt><dd id="loop-max">—</dd>
      </dl>
    </section>
  </div>
</main>
<footer>Polls <code>status.json</code> every second. The same numbers: <code>tp-ws status</code>; for Prometheus: <code>/metrics</code>.</footer>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page's Content-Security-Policy: its own inline style and script (by
 * hash), requests to its own origin only, and no framing. Sent as a
 * response header it also enforces `frame-ancestors`, which a `<meta>` tag
 * cannot.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The complete status page (`GET /` on the admin listener). */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${STATUS_PAGE_CSP.replace("; frame-ancestors 'none'", '')}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>tp-ws status</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;
