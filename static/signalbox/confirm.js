/* Asks before a dangerous button submits: <button data-confirm="Question?">. The admin runs under
 * a Content-Security-Policy without 'unsafe-inline' for scripts (config/csp.py), so the question
 * lives in an attribute and this listener, not in an onclick handler. One listener on the
 * document, so buttons that htmx swaps in later are covered too. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
