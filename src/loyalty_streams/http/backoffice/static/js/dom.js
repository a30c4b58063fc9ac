// Small DOM helpers: elements built from data (text is always set as text, never parsed as
// HTML), tables, tabs, and confirmation dialogs that keep the focus inside until closed.

/** h("td", {class: "num"}, "1,000") */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A table with a caption, its headers and rows (each row an array of cells: text or nodes;
 * a cell given as {value, class} gets the class, e.g. "num" for right-aligned figures). */
export function table(caption, headers, rows, { empty = "Nothing to show.", className } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const cell = (tag, value) => {
    if (value && typeof value === "object" && !(value instanceof Node) && !Array.isArray(value)) {
      return h(tag, { class: value.class, scope: value.scope }, value.value);
    }
    return h(tag, {}, value);
  };
  return h("div", { class: "table-wrap" },
    h("table", { class: className },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((name) => {
        const th = cell("th", name);
        th.setAttribute("scope", "col");
        return th;
      }))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((value, i) => {
        const td = cell(i === 0 ? "th" : "td", value);
        if (i === 0) td.setAttribute("scope", "row");
        return td;
      }))))));
}

/** A definition list from [label, value] pairs. */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

/** A message in a live region: kind "ok", "error", "info" or "pending". */
export function say(region, kind, ...content) {
  region.hidden = false;
  region.dataset.kind = kind;
  clear(region, ...content);
}

/** Tabs over panels, as the ARIA pattern has them: arrows, Home and End move between tabs. */
export function tabs(list) {
  const all = $$('[role="tab"]', list);
  const select = (tab, focus) => {
    for (const other of all) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !chosen;
    }
    if (focus) tab.focus();
    list.dispatchEvent(new CustomEvent("tabchange", { detail: tab.id }));
  };
  for (const tab of all) {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const at = all.indexOf(tab);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      select(all[(to + all.length) % all.length], true);
    });
  }
  select(all.find((tab) => tab.getAttribute("aria-selected") === "true") || all[0], false);
  return { select: (id) => select(all.find((tab) => tab.id === id), false) };
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), ' +
  'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** Keep Tab and Shift+Tab inside `dialog` (a modal <dialog> already makes the rest inert; this
 * makes the cycle explicit, so the focus never leaves for the browser's own controls). */
export function trapFocus(dialog) {
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const inside = $$(FOCUSABLE, dialog).filter((e) => !e.hidden && e.offsetParent !== null);
    if (!inside.length) return;
    const first = inside[0];
    const last = inside[inside.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
}

/**
 * Ask before doing: a modal dialog with a title, what will happen, and Confirm / Cancel.
 * Resolves true on Confirm, false on Cancel or Escape. The focus goes to Cancel (the safe
 * choice) and back to where it was when the dialog closes.
 */
export function confirm(title, content, confirmLabel = "Confirm") {
  const dialog = $("#confirm");
  const before = document.activeElement;
  clear($("#confirm-title"), title);
  clear($("#confirm-body"), content);
  $("#confirm-ok").textContent = confirmLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      if (before && before.focus) before.focus();
      resolve(answer);
    };
    const onClose = () => done(dialog.returnValue === "ok");
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

/** A <details> holding a value as readable JSON. */
export function json(label, value) {
  return h("details", { class: "json" }, h("summary", {}, label),
    h("pre", {}, JSON.stringify(value, null, 2)));
}
