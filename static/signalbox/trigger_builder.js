/*
 * Trigger form as a sentence: narrows the field, condition and recipient lists to the chosen
 * model (or signal) as it changes, shows only the events the signal has, offers the watched
 * field's values, and adds or removes condition rows. No framework, no strings of its own: the
 * registry (labels included) arrives as JSON in #sb-trigger-schema. The server validates
 * everything; this script only offers. Any change fires a bubbling `trigger-changed` event,
 * which the live duplicate check (htmx) listens for.
 */
(function () {
  "use strict";

  function Builder(root) {
    const form = root.closest("form");
    const schema = JSON.parse(document.getElementById(root.dataset.schemaId).textContent);
    const signal = form.querySelector("[name=signal]");
    const model = form.querySelector("[name=model]");
    const changedField = form.querySelector("[name=changed_field]");
    const changedTo = form.querySelector("[name=changed_to]");
    const path = form.querySelector("[name=recipient_path]");
    const values = root.querySelector("#sb-trigger-values");
    const rowsBox = root.querySelector("[data-condition-rows]");

    function current() {
      const s = schema.signals[signal.value];
      if (!s) return {signal: null, subject: null};
      const key = s.model_signal ? model.value : s.subject;
      return {signal: s, subject: schema.subjects[key] || null};
    }

    function fill(select, options) {
      const keep = select.value;
      const blank = select.options.length && select.options[0].value === "" ? select.options[0].cloneNode(true) : null;
      select.replaceChildren();
      if (blank) select.append(blank);
      for (const [value, label] of options) {
        const o = document.createElement("option");
        o.value = value;
        o.textContent = label;
        select.append(o);
      }
      select.value = options.some(([v]) => v === keep) ? keep : "";
    }

    function fieldsOf(subject, m2m) {
      if (!subject) return [];
      return (m2m ? subject.m2m : subject.fields).map((f) => [f.name, f.label]);
    }

    function show(el, visible) {
      if (el) el.hidden = !visible;
    }

    function offerValues() {
      const {signal: s, subject} = current();
      values.replaceChildren();
      if (!subject || !s) return;
      const field = (s.m2m ? subject.m2m : subject.fields).find((f) => f.name === changedField.value);
      for (const [value, label] of (field ? field.choices : [])) {
        const o = document.createElement("option");
        o.value = value;
        o.textContent = label;
        values.append(o);
      }
    }

    function update() {
      const {signal: s, subject} = current();
      show(root.querySelector("[data-slot=model]"), !s || s.model_signal);
      show(root.querySelector("[data-slot=watch]"), !s || s.watch);
      form.querySelectorAll("input[name=events]").forEach((box) => {
        const allowed = !s || s.events.includes(box.value);
        const holder = box.closest("label") ? box.closest("label").parentElement : box.parentElement;
        show(holder, allowed);
        if (!allowed) box.checked = false;
      });
      fill(changedField, fieldsOf(subject, s && s.m2m));
      fill(path, subject ? subject.paths.map((p) => [p, p]) : []);
      rowsBox.querySelectorAll("[data-condition=field]").forEach((select) => fill(select, fieldsOf(subject, false)));
      offerValues();
    }

    function renumber() {
      rowsBox.querySelectorAll("[data-condition-row]").forEach((row, index) => {
        row.querySelectorAll("[data-condition]").forEach((input) => {
          input.name = `${rowsBox.dataset.name}-${index}-${input.dataset.condition}`;
        });
      });
    }

    function changed() {
      document.body.dispatchEvent(new CustomEvent("trigger-changed", {bubbles: true}));
    }

    rowsBox.addEventListener("click", (event) => {
      const add = event.target.closest("[data-condition-add]");
      const remove = event.target.closest("[data-condition-remove]");
      const rows = rowsBox.querySelectorAll("[data-condition-row]");
      if (add) {
        const row = rows[rows.length - 1].cloneNode(true);
        row.querySelectorAll("select").forEach((s) => { s.selectedIndex = 0; });
        row.querySelectorAll("input").forEach((i) => { i.value = ""; });
        rows[rows.length - 1].after(row);
      } else if (remove) {
        const row = remove.closest("[data-condition-row]");
        if (rows.length > 1) row.remove();
        else row.querySelectorAll("select, input").forEach((i) => { if (i.tagName === "SELECT") i.selectedIndex = 0; else i.value = ""; });
      } else {
        return;
      }
      renumber();
      changed();
    });
    signal.addEventListener("change", update);
    model.addEventListener("change", update);
    changedField.addEventListener("change", offerValues);
    form.addEventListener("change", changed);
    changedTo.addEventListener("input", changed);
    update();
  }

  function start() {
    document.querySelectorAll("[data-trigger-builder]").forEach((root) => {
      if (root.dataset.builderReady) return;
      root.dataset.builderReady = "1";
      Builder(root);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
