/* Draws the analytics charts: each [data-plotly="ID"] element gets the plotly figure stored as
 * JSON in <script type="application/json" id="ID"> (Django's json_script).
 *
 * The page is usable before any chart is drawn: plotly.js (our own static file, named by this
 * script's data-plotly-src; no CDN) is fetched only after the page's first paint, once its other
 * scripts have run, and each chart is then drawn in its own task, so a click waits for at most
 * one chart (or for plotly.js's own start-up, one task of ~0.3 s here). The placeholders keep the charts' height, so nothing moves when they
 * appear. Runs on load, after every htmx swap and after htmx restores a page from history; a chart
 * whose JSON did not change is left alone. If plotly.js is already on the page it is used as is. */
(function () {
  "use strict";
  var source = document.currentScript && document.currentScript.getAttribute("data-plotly-src");
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var drawn = new WeakMap();
  var queue = [];
  var loading = null;
  var busy = false;
  function plotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = source;
        script.async = true;
        script.onload = function () { resolve(window.Plotly); };
        script.onerror = function () { loading = null; reject(new Error("plotly.js did not load: " + source)); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function figureOf(el) {
    var json = document.getElementById(el.getAttribute("data-plotly"));
    return json ? json.textContent : null;
  }

  function enqueue(el) {
    if (queue.indexOf(el) < 0) queue.push(el);
    next();
  }

  function next() {
    if (busy || !queue.length) return;
    busy = true;
    plotly().then(function (Plotly) {
      var el = queue.shift();
      var json = el.isConnected ? figureOf(el) : null;
      if (json === null || drawn.get(el) === json) return null;
      drawn.set(el, json);
      var figure = JSON.parse(json);
      return Plotly.react(el, figure.data, figure.layout, config).then(function () {
        el.setAttribute("data-rendered", "true");
      });
    }).catch(function (error) {
      queue = [];
      if (window.console) console.warn(error);
    }).then(function () {
      busy = false;
      if (queue.length) setTimeout(next, 0); // one chart per task: input is handled in between
    });
  }

  // After the next paint: a requestAnimationFrame callback runs just before a frame is painted,
  // and a task it queues runs after that frame.
  function afterPaint(callback) {
    requestAnimationFrame(function () { setTimeout(callback, 0); });
  }

  function draw(root) {
    var charts = [];
    (root || document).querySelectorAll("[data-plotly]").forEach(function (el) {
      var json = figureOf(el);
      if (json !== null && drawn.get(el) !== json) charts.push(el);
    });
    if (charts.length) afterPaint(function () { charts.forEach(enqueue); });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  document.addEventListener("htmx:historyRestore", function () { draw(document); });
})();
