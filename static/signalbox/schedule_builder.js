/* Campaign schedule builder: shows the inputs of the chosen mode, writes the RRULE it stands for
 * into the advanced box (so switching to "Advanced" starts from it) and lists the next send
 * times as the marketer edits, from the server (the same checks as a save). Nothing here decides
 * what is valid: the server answers every question with a sentence.
 */
(function () {
  "use strict";
  const ORDER = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

  function ruleFrom(box, name) {
    const mode = box.querySelector("[data-sb-mode]").value;
    const time = (box.querySelector(`[name="${name}_time"]`).value || "").split(":");
    if (mode === "advanced" || time.length < 2) return null;
    const clock = `BYHOUR=${Number(time[0])};BYMINUTE=${Number(time[1])}`;
    if (mode === "daily") return `FREQ=DAILY;${clock}`;
    if (mode === "weekly") {
      const days = ORDER.filter((d) => box.querySelector(`[data-day="${d}"]`).checked);
      return days.length ? `FREQ=WEEKLY;BYDAY=${days.join(",")};${clock}` : null;
    }
    const day = box.querySelector(`[name="${name}_monthday"]`).value;
    return `FREQ=MONTHLY;BYMONTHDAY=${day};${clock}`;
  }

  function viewerZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  function setup(box) {
    if (box.dataset.sbReady) return;
    box.dataset.sbReady = "1";
    const name = box.dataset.name;
    const form = box.closest("form");
    const mode = box.querySelector("[data-sb-mode]");
    const text = box.querySelector("[data-sb-text]");
    const ruleLine = box.querySelector("[data-sb-rule-line]");
    const preview = box.querySelector("[data-sb-preview]");
    let timer = null;
    let asked = 0;

    function show() {
      for (const part of box.querySelectorAll("[data-sb-part]")) {
        part.hidden = !part.dataset.sbPart.split(" ").includes(mode.value);
      }
      const rule = ruleFrom(box, name);
      // Only a recurring schedule stores a rule: otherwise the box keeps the value it came with,
      // so saving a one-off campaign changes nothing it does not show.
      const schedule = form && form.querySelector('[name="schedule"]');
      const recurring = !schedule || schedule.value === "recurring";
      if (mode.value !== "advanced") text.value = recurring && rule ? rule : text.defaultValue;
      ruleLine.hidden = mode.value === "advanced" || !rule;
      box.querySelector("[data-sb-rule]").textContent = rule || "";
    }

    function refresh() {
      const schedule = form && form.querySelector('[name="schedule"]');
      if (!form || (schedule && schedule.value !== "recurring")) { asked += 1; preview.replaceChildren(); return; }
      const params = new URLSearchParams();
      for (const [key, value] of new FormData(form)) {
        if (typeof value === "string" && (key === name || key.startsWith(name + "_") || key === "schedule"
            || key === "schedule_timezone" || key.startsWith("recurrence_start"))) params.append(key, value);
      }
      params.set("viewer_tz", viewerZone());
      const ticket = ++asked;
      fetch(`${box.dataset.previewUrl}?${params}`, {headers: {"X-Requested-With": "fetch"}, credentials: "same-origin"})
        .then((response) => response.text())
        .then((html) => { if (ticket === asked) preview.innerHTML = html; })
        .catch(() => { /* offline for a moment: the next change asks again */ });
    }

    function changed() {
      show();
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }

    box.addEventListener("input", changed);
    box.addEventListener("change", changed);
    if (form) {
      for (const field of form.querySelectorAll('[name="schedule_timezone"], [name^="recurrence_start"], [name="schedule"]')) {
        field.addEventListener("change", changed);
        field.addEventListener("input", changed);
      }
    }
    show();
    refresh();
  }

  function scan() { for (const box of document.querySelectorAll("[data-schedule-builder]")) setup(box); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
