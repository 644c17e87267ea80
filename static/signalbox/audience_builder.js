/*
 * Audience rule builder: edits the JSON rule tree in the `rules` textarea without anyone
 * writing JSON. No framework and no build step: the admin loads this file as form media.
 *
 * The field registry (labels, operators, value types, choices), the translated words and the
 * Unfold input classes arrive as JSON in a <script type="application/json"> next to the textarea.
 * Every edit writes the textarea and fires a bubbling `rules-changed` event; the preview region
 * listens for it (htmx, debounced) and the server validates, so this script never decides what
 * is valid, it only offers what the registry allows.
 *
 * Internal model: group = {kind: "group", mode: "all"|"any"|"none", children: [...]},
 * condition = {kind: "condition", field, op, value}. "none" is stored as {"not": {"any": [...]}}.
 */
(function () {
  "use strict";

  class Unsupported extends Error {}

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function isGroupNode(node) {
    return node !== null && typeof node === "object" && !Array.isArray(node) &&
      ("all" in node || "any" in node || "not" in node);
  }

  function Builder(container) {
    const textarea = container.querySelector("[data-rules-input]");
    const root = container.querySelector("[data-builder-root]");
    const note = container.querySelector("[data-builder-note]");
    const toggle = container.querySelector("[data-builder-toggle]");
    const schema = JSON.parse(document.getElementById(container.dataset.schemaId).textContent);
    const t = schema.labels;
    const classes = schema.classes;
    const limits = schema.limits;
    const fields = new Map(schema.fields.map((f) => [f.key, f]));
    let tree = null;
    let raw = false;

    // --- JSON <-> model ------------------------------------------------------------------
    function fromJson(node, depth) {
      if (depth > limits.max_depth) throw new Unsupported("too deep");
      if (node === null || node === undefined) return {kind: "group", mode: "all", children: []};
      if (typeof node !== "object" || Array.isArray(node)) throw new Unsupported("not an object");
      if (depth === 0 && Object.keys(node).length === 0) return {kind: "group", mode: "all", children: []};
      if (isGroupNode(node)) {
        const keys = Object.keys(node);
        if (keys.length !== 1) throw new Unsupported("group keys");
        const key = keys[0];
        if (key === "not") {
          const inner = node.not;
          if (isGroupNode(inner) && Array.isArray(inner.any) && Object.keys(inner).length === 1) {
            return {kind: "group", mode: "none", children: inner.any.map((c) => fromChild(c, depth + 1))};
          }
          if (isGroupNode(inner) && Array.isArray(inner.all) && inner.all.length === 1) {
            return {kind: "group", mode: "none", children: [fromChild(inner.all[0], depth + 1)]};
          }
          if (!isGroupNode(inner)) return {kind: "group", mode: "none", children: [fromCondition(inner)]};
          throw new Unsupported("not");
        }
        if (!Array.isArray(node[key])) throw new Unsupported("group list");
        return {kind: "group", mode: key, children: node[key].map((c) => fromChild(c, depth + 1))};
      }
      // A bare condition at the top: show it inside an "all" group.
      return {kind: "group", mode: "all", children: [fromCondition(node)]};
    }

    function fromChild(node, depth) {
      return isGroupNode(node) ? fromJson(node, depth) : fromCondition(node);
    }

    function fromCondition(node) {
      if (node === null || typeof node !== "object" || Array.isArray(node)) throw new Unsupported("condition");
      const field = fields.get(node.field);
      if (!field) throw new Unsupported("field");
      if (!field.ops.some((op) => op.key === node.op)) throw new Unsupported("op");
      for (const key of Object.keys(node)) if (!["field", "op", "value"].includes(key)) throw new Unsupported("key");
      return {kind: "condition", field: node.field, op: node.op, value: node.value};
    }

    function toJson(node) {
      if (node.kind === "condition") {
        const out = {field: node.field, op: node.op};
        if (opOf(node).type !== "none") out.value = node.value === undefined ? null : node.value;
        return out;
      }
      const children = node.children.map(toJson);
      if (node.mode === "none") return {not: {any: children}};
      return {[node.mode]: children};
    }

    function opOf(condition) {
      const field = fields.get(condition.field);
      return field.ops.find((op) => op.key === condition.op) || field.ops[0];
    }

    function defaultValue(type, field) {
      switch (type) {
        case "none": return undefined;
        case "bool": return true;
        case "choices": case "ids": return [];
        case "days": return 30;
        case "integer": return 1;
        case "count_days": return {count: 1, days: 30};
        case "text_days": return {text: "", days: 30};
        case "days_channel": return {days: 14};
        case "date": return "";
        default: return field && field.choices && field.choices.length ? field.choices[0][0] : "";
      }
    }

    function newCondition() {
      const field = schema.fields[0];
      const op = field.ops[0];
      return {kind: "condition", field: field.key, op: op.key, value: defaultValue(op.type, field)};
    }

    // --- Writing back ---------------------------------------------------------------------
    function commit() {
      textarea.value = JSON.stringify(toJson(tree), null, 2);
      announce();
    }

    function announce() {
      textarea.dispatchEvent(new CustomEvent("rules-changed", {bubbles: true}));
    }

    // --- Rendering ------------------------------------------------------------------------
    function button(label, onClick, extra) {
      const b = el("button", {type: "button", class: "sb-button " + (extra || ""), text: label});
      b.addEventListener("click", onClick);
      return b;
    }

    function select(options, value, ariaLabel, multiple) {
      const s = el("select", {class: classes.select, "aria-label": ariaLabel, multiple: !!multiple});
      for (const item of options) {
        if (item.group !== undefined) {
          const og = el("optgroup", {label: item.group});
          for (const o of item.options) og.append(option(o, value, multiple));
          s.append(og);
        } else {
          s.append(option(item, value, multiple));
        }
      }
      if (multiple) s.size = Math.min(6, Math.max(3, options.length));
      return s;
    }

    function option([value, label], current, multiple) {
      const selected = multiple ? (current || []).map(String).includes(String(value)) : String(current) === String(value);
      return el("option", {value: String(value), text: label, selected});
    }

    function numberInput(value, min, max, ariaLabel, onValue) {
      const input = el("input", {
        type: "number", class: classes.input + " sb-number", min, max, step: 1,
        value: Number.isInteger(value) ? String(value) : "", "aria-label": ariaLabel,
      });
      input.addEventListener("input", () => {
        const n = Number(input.value);
        onValue(input.value !== "" && Number.isInteger(n) ? n : null);
        commit();
      });
      return input;
    }

    function valueEditor(condition) {
      const field = fields.get(condition.field);
      const type = opOf(condition).type;
      const set = (v) => { condition.value = v; };
      const label = t.value;
      switch (type) {
        case "none":
          return null;
        case "bool": {
          const s = select([[true, t.yes], [false, t.no]], condition.value === false ? false : true, label);
          s.addEventListener("change", () => { set(s.value === "true"); commit(); });
          return s;
        }
        case "days":
          return el("span", {class: "sb-inline"}, [
            numberInput(condition.value, 1, limits.max_days, label, set), el("span", {text: t.days}),
          ]);
        case "integer":
          return numberInput(condition.value, 0, limits.max_count, label, set);
        case "count_days": {
          const v = (condition.value && typeof condition.value === "object") ? condition.value : {count: 1, days: 30};
          condition.value = v;
          return el("span", {class: "sb-inline"}, [
            numberInput(v.count, 1, limits.max_count, t.count, (n) => { v.count = n; }),
            el("span", {text: t.in_the_last}),
            numberInput(v.days, 1, limits.max_days, t.days, (n) => { v.days = n; }),
            el("span", {text: t.days}),
          ]);
        }
        case "text_days": {
          const v = (condition.value && typeof condition.value === "object") ? condition.value : {text: "", days: 30};
          condition.value = v;
          const text = el("input", {
            type: "text", class: classes.input, maxlength: limits.max_text, "aria-label": label,
            value: typeof v.text === "string" ? v.text : "",
          });
          text.addEventListener("input", () => { v.text = text.value; commit(); });
          return el("span", {class: "sb-inline"}, [
            text,
            el("span", {text: t.within}),
            numberInput(v.days, 1, limits.max_days, t.days, (n) => { v.days = n; }),
            el("span", {text: t.days}),
          ]);
        }
        case "days_channel": {
          const v = (condition.value && typeof condition.value === "object") ? condition.value : {days: 14};
          condition.value = v;
          const channel = select([["", t.any_channel], ...(field.choices || [])], v.channel || "", t.channel);
          channel.addEventListener("change", () => {
            if (channel.value) v.channel = channel.value;
            else delete v.channel;
            commit();
          });
          return el("span", {class: "sb-inline"}, [
            numberInput(v.days, 1, limits.max_days, t.days, (n) => { v.days = n; }),
            el("span", {text: t.days}),
            channel,
          ]);
        }
        case "date": {
          const input = el("input", {type: "date", class: classes.input, value: condition.value || "", "aria-label": label});
          input.addEventListener("input", () => { set(input.value); commit(); });
          return input;
        }
        case "choices":
        case "ids": {
          if (field.choices) {
            const s = select(field.choices, condition.value, label, true);
            s.addEventListener("change", () => {
              const picked = Array.from(s.selectedOptions, (o) => o.value);
              set(type === "ids" ? picked.map(Number) : picked);
              commit();
            });
            if (field.choices.length > 30 && window.SignalboxZonePicker) {
              // A long list (time zones): a search box above it, as the zone picker has.
              const box = el("div", {class: "tz-picker", "data-tz-picker": ""});
              box.append(s);
              window.SignalboxZonePicker.attach(s, {placeholder: t.search_choices, empty: t.no_match});
              return box;
            }
            return s;
          }
          const input = el("input", {
            type: "text", class: classes.input, placeholder: t.comma_separated, "aria-label": label,
            value: Array.isArray(condition.value) ? condition.value.join(", ") : "",
          });
          input.addEventListener("input", () => {
            const parts = input.value.split(",").map((p) => p.trim()).filter(Boolean);
            set(type === "ids" ? parts.map(Number) : parts);
            commit();
          });
          return input;
        }
        default: {
          if (field.choices) {
            const s = select(field.choices, condition.value, label);
            s.addEventListener("change", () => { set(s.value); commit(); });
            return s;
          }
          const input = el("input", {
            type: "text", class: classes.input, maxlength: limits.max_text, "aria-label": label,
            value: typeof condition.value === "string" ? condition.value : "",
          });
          input.addEventListener("input", () => { set(input.value); commit(); });
          return input;
        }
      }
    }

    function fieldOptions() {
      const groups = new Map();
      for (const f of schema.fields) {
        if (!groups.has(f.group)) groups.set(f.group, []);
        groups.get(f.group).push([f.key, f.label]);
      }
      return Array.from(groups, ([group, options]) => (group ? {group, options} : options)).flat();
    }

    function renderCondition(condition, parent) {
      const field = fields.get(condition.field);
      const fieldSelect = select(fieldOptions(), condition.field, t.field);
      fieldSelect.addEventListener("change", () => {
        const next = fields.get(fieldSelect.value);
        const previousType = opOf(condition).type;
        condition.field = next.key;
        const op = next.ops.find((o) => o.key === condition.op) || next.ops[0];
        condition.op = op.key;
        if (op.type !== previousType || (next.choices && op.type !== "days_channel")) condition.value = defaultValue(op.type, next);
        render();
        commit();
      });
      const opSelect = select(field.ops.map((o) => [o.key, o.label]), condition.op, t.operator);
      opSelect.addEventListener("change", () => {
        const previousType = opOf(condition).type;
        condition.op = opSelect.value;
        const type = opOf(condition).type;
        if (type !== previousType) condition.value = defaultValue(type, field);
        render();
        commit();
      });
      const row = el("div", {class: "sb-condition", role: "group"}, [
        fieldSelect, opSelect, valueEditor(condition),
        button("×", () => {
          parent.children.splice(parent.children.indexOf(condition), 1);
          render();
          commit();
        }, "sb-button--remove"),
      ]);
      row.lastChild.setAttribute("aria-label", t.remove);
      row.lastChild.title = t.remove;
      if (field.help) row.append(el("p", {class: "sb-help", text: field.help}));
      return row;
    }

    function renderGroup(group, parent, depth) {
      const mode = select([["all", t.all], ["any", t.any], ["none", t.none]], group.mode, t.match);
      mode.addEventListener("change", () => { group.mode = mode.value; commit(); });
      const head = el("div", {class: "sb-group__head"}, [
        el("span", {text: t.match}), mode, el("span", {text: t.of_these}),
      ]);
      if (parent) {
        head.append(button(t.remove_group, () => {
          parent.children.splice(parent.children.indexOf(group), 1);
          render();
          commit();
        }, "sb-button--quiet sb-push-right"));
      }
      const body = el("div", {class: "sb-group__body"});
      if (!group.children.length && !parent) body.append(el("p", {class: "sb-help", text: t.empty}));
      for (const child of group.children) {
        body.append(child.kind === "group" ? renderGroup(child, group, depth + 1) : renderCondition(child, group));
      }
      const foot = el("div", {class: "sb-group__foot"}, [
        button("+ " + t.add_condition, () => { group.children.push(newCondition()); render(); commit(); }),
      ]);
      if (depth + 1 < limits.max_depth) {
        foot.append(button("+ " + t.add_group, () => {
          group.children.push({kind: "group", mode: "any", children: [newCondition()]});
          render();
          commit();
        }));
      }
      return el("div", {class: "sb-group" + (parent ? " sb-group--nested" : ""), role: "group"}, [head, body, foot]);
    }

    function render() {
      root.replaceChildren(renderGroup(tree, null, 0));
    }

    // --- Modes ----------------------------------------------------------------------------
    function showNote(text) {
      note.textContent = text || "";
      note.hidden = !text;
    }

    function useRaw(message) {
      raw = true;
      root.hidden = true;
      textarea.hidden = false;
      toggle.textContent = t.use_builder;
      showNote(message);
    }

    function useBuilder() {
      let parsed;
      try {
        parsed = textarea.value.trim() ? JSON.parse(textarea.value) : {};
      } catch (e) {
        useRaw(t.invalid_json);
        return false;
      }
      try {
        tree = fromJson(parsed, 0);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        useRaw(t.cannot_show);
        return false;
      }
      raw = false;
      textarea.hidden = true;
      root.hidden = false;
      toggle.textContent = t.edit_json;
      showNote("");
      render();
      return true;
    }

    toggle.hidden = false;
    toggle.addEventListener("click", () => {
      if (raw) {
        if (useBuilder()) commit();
      } else {
        useRaw("");
      }
    });
    textarea.addEventListener("input", () => { if (raw) announce(); });
    if (!schema.fields.length) {
      useRaw("");
      toggle.hidden = true;
    } else {
      useBuilder();
    }
  }

  function start() {
    document.querySelectorAll("[data-audience-builder]").forEach((container) => {
      if (container.dataset.builderReady) return;
      container.dataset.builderReady = "1";
      Builder(container);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
