/* Behaviour for the recipient pages (notifications/base.html), kept out of the templates so the
 * pages run under a Content-Security-Policy without 'unsafe-inline' (config/csp.py).
 *
 * - <select data-autosubmit>: submits its form on change (the language switch). Without
 *   JavaScript the form's <noscript> button does the same.
 * - <form data-leave-to="https://elsewhere/...">: the inbox's "Open" for a link to another site.
 *   The policy's `form-action 'self'` also covers where a form's response redirects, so the
 *   browser would refuse the POST that marks the notification read and redirects away. Instead
 *   the POST goes by fetch (its redirect not followed) and the page then navigates to the link,
 *   which the server already checked is http(s) (Notification.safe_url).
 */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-leave-to")) return;
    event.preventDefault();
    var destination = form.getAttribute("data-leave-to");
    var leave = function () { window.location.assign(destination); };
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual"})
      .then(leave, leave);
  });
})();
