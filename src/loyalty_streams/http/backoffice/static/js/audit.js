// The audit trail (loyalty_admin): GET /loyalty/audit filtered as the API filters it, by brand,
// player, actor, action and time; each entry with what it changed, field by field.

import { get, problem } from "./api.js";
import { diffTable } from "./diff.js";
import { $, clear, h, json, say, table } from "./dom.js";
import { fillBrands, programmeOf, zoneOf } from "./data.js";
import { wallToInstant, when } from "./format.js";

let context = null;

export function start(shared) {
  context = shared;
  fillBrands($("#audit-brand"), context.brands, { any: context.user.allBrands ? "Every brand" : null });
  const actions = actionsOf(context.user.document);
  clear($("#audit-action"), h("option", { value: "" }, "Any"), actions.map((a) => h("option", { value: a }, a)));
  $("#audit-brand").addEventListener("change", zoneHints);
  $("#audit-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  zoneHints();
}

export function show(shared) {
  fillBrands($("#audit-brand"), shared.brands, { any: shared.user.allBrands ? "Every brand" : null });
}

export function reset() {
  clear($("#audit"));
  $("#audit-message").hidden = true;
}

/** The actions `?action=` takes, as the API's document lists them. */
function actionsOf(document) {
  const parameters = document?.paths?.["/loyalty/audit"]?.get?.parameters || [];
  return parameters.find((p) => p.name === "action")?.schema?.enum || [];
}

/** Times are read and shown in the brand's zone when one brand is chosen, in UTC otherwise. */
async function zone() {
  const brand = $("#audit-brand").value;
  return brand ? zoneOf(await programmeOf(brand)) : "UTC";
}

async function zoneHints() {
  const z = await zone();
  for (const hint of document.querySelectorAll('[data-zone-for="audit"]')) hint.textContent = `(${z})`;
}

async function search() {
  const form = $("#audit-filter");
  const data = new FormData(form);
  const z = await zone();
  let query;
  try {
    query = {
      brand_id: data.get("brand_id"), player_id: String(data.get("player_id")).trim(),
      actor: String(data.get("actor")).trim(), action: data.get("action"),
      from: wallToInstant(String(data.get("from") || ""), z), to: wallToInstant(String(data.get("to") || ""), z),
      limit: data.get("limit"),
    };
  } catch (error) {
    say($("#audit-message"), "error", error.message);
    return;
  }
  say($("#audit-message"), "pending", "Reading the audit trail…");
  const answer = await get("loyalty/audit", query);
  if (answer.status !== 200) {
    say($("#audit-message"), "error", problem(answer));
    clear($("#audit"));
    return;
  }
  const { entries, total, truncated } = answer.body;
  say($("#audit-message"), "info", `${total} entr${total === 1 ? "y" : "ies"} match` +
    (truncated ? `; the newest ${entries.length} are shown.` : "."));
  clear($("#audit"), table(`Audit entries, newest first (times in ${z})`,
    ["Time", "Action", "Outcome", "Actor", "Brand", "Player", "Reason", "Command", "What changed"],
    entries.map((entry) => [
      { value: when(entry.occurred_at, z), class: "nowrap" }, entry.action,
      h("span", { class: `outcome ${entry.outcome}` }, entry.outcome), entry.actor, entry.brand_id,
      entry.player_id ?? "—", entry.reason, entry.command_id ? h("code", {}, entry.command_id) : "—",
      changes(entry, z),
    ]), { empty: "No entry matches.", className: "audit" }));
}

function changes(entry, zone) {
  if (!entry.before && !entry.after) return "—";
  return h("details", {}, h("summary", {}, "Before → after"),
    diffTable(null, entry.before, entry.after, "Before", "After", { all: true, zone }),
    json("Whole entry", entry));
}
