/* Type-to-search for long selects (time zones): a search box above the select hides options
 * that do not match (name or label, "_" read as a space), opens the list while there are
 * matches, and picks the first match when the chosen one is hidden, so typing "Shang" and
 * pressing on chooses Asia/Shanghai. Works for multi-selects too (chosen options stay chosen).
 * Pickers rendered by Django carry [data-tz-picker]; scripts call SignalboxZonePicker.attach(select).
 */
(function () {
  "use strict";
  const norm = (text) => String(text || "").toLowerCase().replace(/_/g, " ").replace(/\u2212/g, "-").trim();

  function filter(select, search, empty) {
    const query = norm(search.value);
    let shown = 0;
    let firstShown = null;
    for (const option of select.options) {
      const match = !query || norm(option.value).includes(query) || norm(option.textContent).includes(query);
      option.hidden = !match;
      if (match) { shown += 1; firstShown = firstShown || option; }
    }
    for (const group of select.querySelectorAll("optgroup")) {
      group.hidden = !Array.from(group.children).some((o) => !o.hidden);
    }
    empty.hidden = shown > 0;
    if (!select.multiple) {
      if (query && shown > 1) select.size = Math.min(8, shown);
      else select.removeAttribute("size");
      const current = select.options[select.selectedIndex];
      if (query && firstShown && (!current || current.hidden)) {
        select.value = firstShown.value;
        select.dispatchEvent(new Event("change", {bubbles: true}));
      }
    }
  }

  function attach(select, options) {
    if (!select || select.dataset.tzAttached) return;
    select.dataset.tzAttached = "1";
    const box = select.closest("[data-tz-picker]");
    let search = box && box.querySelector("[data-tz-search]");
    const texts = options || {};
    if (!search) {
      search = document.createElement("input");
      search.type = "search";
      search.autocomplete = "off";
      search.placeholder = texts.placeholder || "";
      search.setAttribute("aria-label", texts.label || texts.placeholder || "");
      search.className = select.className.replace(/\bpr-8!?/, "");
      select.parentNode.insertBefore(search, select);
    }
    const empty = document.createElement("p");
    empty.dataset.tzEmpty = "";
    empty.hidden = true;
    empty.setAttribute("role", "status");
    empty.textContent = (box && box.dataset.empty) || texts.empty || "";
    select.insertAdjacentElement("afterend", empty);
    search.hidden = false;
    search.addEventListener("input", () => filter(select, search, empty));
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); select.focus(); }
      if (event.key === "ArrowDown") { event.preventDefault(); select.focus(); }
    });
    // The search box is only a lens: it never travels with the form.
    search.removeAttribute("name");
  }

  function scan(root) {
    for (const box of (root.querySelectorAll ? root.querySelectorAll("[data-tz-picker]") : [])) {
      attach(box.querySelector("select"));
    }
  }

  window.SignalboxZonePicker = {attach, scan};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => scan(document));
  else scan(document);
  document.addEventListener("htmx:afterSettle", (event) => scan(event.target));
})();
