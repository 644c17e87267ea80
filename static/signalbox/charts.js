/* Draws the analytics charts: each [data-plotly="ID"] element gets the plotly figure stored as
 * JSON in <script type="application/json" id="ID"> (Django's json_script). Runs on load, after
 * every htmx swap and after htmx restores a page from history; a chart whose JSON did not
 * change is left alone. plotly.js is served
 * from our own static files (no CDN). */
(function () {
  "use strict";
  var drawn = new WeakMap();
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-plotly]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-plotly"));
      if (!source || drawn.get(el) === source.textContent) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.react(el, figure.data, figure.layout, config).then(function () {
        el.setAttribute("data-rendered", "true");
      });
      drawn.set(el, source.textContent);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  document.addEventListener("htmx:historyRestore", function () { draw(document); });
})();
