// A readable difference of two JSON values (two programme versions, an audit entry's before and
// after): field by field, each field named by its path, lists of named things (levels,
// promotions) matched by name rather than by position.

import { h, table } from "./dom.js";
import { whenIn } from "./format.js";

const INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)$/;

const SKIPPED = new Set(["version", "effective_from"]);

/** path -> value (text) of every leaf of `value`. */
export function flatten(value, path = [], out = new Map()) {
  if (Array.isArray(value)) {
    const named = value.length && value.every((item) => item && typeof item === "object" && "name" in item);
    if (!value.length) out.set(path.join(" › "), "[]");
    value.forEach((item, i) => flatten(item, [...path, named ? item.name : `[${i}]`], out));
  } else if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) out.set(path.join(" › "), "{}");
    for (const key of keys) flatten(value[key], [...path, key], out);
  } else {
    out.set(path.join(" › "), value === null ? "null" : String(value));
  }
  return out;
}

/** [{path, before, after}] of the fields that differ (a missing field is undefined). */
export function differences(before, after, { all = false } = {}) {
  const a = flatten(before ?? {});
  const b = flatten(after ?? {});
  const paths = [...new Set([...a.keys(), ...b.keys()])];
  return paths
    .filter((path) => all || !SKIPPED.has(path))
    .filter((path) => a.get(path) !== b.get(path))
    .map((path) => ({ path, before: a.get(path), after: b.get(path) }));
}

/** The differences as a table (or a sentence saying there are none); with `zone`, a value that
 * is an RFC 3339 time is shown in that zone, as every time on the page is. */
export function diffTable(caption, before, after, beforeName, afterName, { zone = null, ...options } = {}) {
  const found = differences(before, after, options);
  if (!found.length) return h("p", { class: "empty" }, "No field differs.");
  const shown = (value) => (value === undefined ? "(none)" : zone && INSTANT.test(value) ? whenIn(value, zone) : value);
  return table(caption, ["Field", beforeName, afterName],
    found.map((d) => [d.path, { value: shown(d.before), class: "before" }, { value: shown(d.after), class: "after" }]),
    { className: "diff" });
}
