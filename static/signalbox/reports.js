// Reports page: download a watched report once it is ready (the link carries data-auto-download).
// The "My reports" region is polled by htmx; each report downloads once per browser tab, so a
// reload or a later poll does not download it again.
(function () {
  "use strict";

  function downloadReady() {
    document.querySelectorAll("a[data-auto-download]").forEach(function (link) {
      var key = "signalbox:report-downloaded:" + link.dataset.reportId;
      try {
        if (window.sessionStorage.getItem(key)) return;
        window.sessionStorage.setItem(key, "1");
      } catch (error) {
        if (link.dataset.downloaded) return; // storage refused (private mode): once per page
      }
      link.dataset.downloaded = "1";
      link.click();
    });
  }

  document.addEventListener("DOMContentLoaded", downloadReady);
  document.addEventListener("htmx:afterSettle", downloadReady);
})();
