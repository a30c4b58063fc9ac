// Programmes: a brand's version in effect, every version, a field-by-field difference of two
// versions, and the promotions editor (marketing managers and admins).
//
// The API gives the body of the version in effect only (GET /loyalty/programmes/{brand}); the
// body of every version published is in its audit entry (`after` of programme.publish and
// programme.backfill), which an admin may read. Other roles compare what they can read.

import { call, get, problem, segment } from "./api.js";
import { diffTable, differences } from "./diff.js";
import { $, $$, clear, confirm, facts, h, say, table } from "./dom.js";
import { fillBrands, forgetProgrammes, programmeOf, zoneOf } from "./data.js";
import { decimal, instantToWall, money, percent, points, times, wallToInstant, whenIn } from "./format.js";

const PROMOTIONS = "PUT /loyalty/programmes/{brand_id}/promotions";
const AUDIT = "GET /loyalty/audit";

let context = null;
let shown = null; // {brand, programme, versions, bodies: Map(version -> body)}

export function start(shared) {
  context = shared;
  fillBrands($("#programme-brand"), context.brands);
  $("#programme-pick").addEventListener("submit", (event) => {
    event.preventDefault();
    load($("#programme-brand").value);
  });
  if ($("#programme-brand").value) load($("#programme-brand").value);
}

export function show(shared) {
  fillBrands($("#programme-brand"), shared.brands);
}

export function reset() {
  shown = null;
  $("#programme").hidden = true;
  clear($("#programme"));
}

async function load(brand) {
  if (!brand) return;
  say($("#programme-message"), "pending", `Reading the programme of ${brand}…`);
  forgetProgrammes();
  const [programme, versions] = await Promise.all([
    programmeOf(brand, { fresh: true }),
    get(`loyalty/programmes/${segment(brand)}/versions`),
  ]);
  if (!programme || versions.status !== 200) {
    say($("#programme-message"), "error", versions.status !== 200 ? problem(versions) : `No programme of ${brand} is in effect.`);
    reset();
    return;
  }
  $("#programme-message").hidden = true;
  const bodies = new Map([[programme.version, programme]]);
  if (context.user.may(AUDIT)) {
    for (const action of ["programme.publish", "programme.backfill"]) {
      const found = await get("loyalty/audit", { brand_id: brand, action, limit: "1000" });
      for (const entry of found.status === 200 ? found.body.entries : []) {
        if (entry.after && entry.after.version !== undefined && !bodies.has(entry.after.version)) {
          bodies.set(entry.after.version, entry.after);
        }
      }
    }
  }
  shown = { brand, programme, versions: versions.body.versions, bodies };
  render();
}

function render() {
  const { programme: p, brand } = shown;
  const zone = zoneOf(p);
  const unit = p.level_basis === "turnover" ? p.turnover_currency : "VIP points";
  const root = $("#programme");
  clear(root,
    h("h2", {}, `${p.name}`, h("span", { class: "sub" }, ` ${brand}, version ${p.version}`)),
    facts([
      ["In effect since", whenIn(p.effective_from, zone)],
      ["Levels on", p.level_basis === "turnover" ? `turnover in ${p.turnover_currency}` : "VIP points"],
      ["Brand days", zone],
      ["Redemption", `${points(String(p.policies.redemption_points))} points = ${money(p.policies.redemption_value, p.policies.redemption_currency)}; ` +
        `at least ${points(String(p.policies.redemption_min_points))}, in steps of ${points(String(p.policies.redemption_step_points))}, held ${p.policies.redemption_hold_minutes} min`],
      ["Expiry", `after ${p.policies.inactivity_expiry_days} days without activity (warned ${p.policies.expiry_warning_days} days before)`],
      ["Downgrade grace", `${p.policies.downgrade_grace_days} days`],
    ]),
    h("h3", {}, "Levels"),
    table(null, ["Level", "Rank", `Threshold (${unit})`, "Retention, 30 days", "Points ×", "Cashback", "Daily cap",
      "Daily bonus ×", "Store ×", "Tier-up reward", "Birthday gift", "Perks"],
    p.levels.map((level, i) => [level.name, { value: String(level.rank), class: "num" },
      { value: decimal(level.threshold), class: "num" },
      { value: level.retention === null ? `${decimal(i ? p.levels[i - 1].threshold : "0")} (default)` : decimal(level.retention), class: "num" },
      { value: times(level.points_multiplier), class: "num" }, { value: percent(level.cashback_percent), class: "num" },
      { value: level.cashback_daily_cap === null ? "none" : money(level.cashback_daily_cap, p.turnover_currency), class: "num" },
      { value: times(level.daily_bonus_multiplier), class: "num" }, { value: times(level.store_multiplier), class: "num" },
      { value: money(level.tier_up_reward_gc, "GC"), class: "num" },
      `${money(level.birthday_gift_gc, "GC")} + ${money(level.birthday_gift_sc, "SC")}`,
      Object.entries(level.perks).filter(([, on]) => on).map(([name]) => name.replace(/_/g, " ")).join(", ") || "—"]),
    { className: "levels" }),
    h("div", { class: "two" },
      h("div", {}, h("h3", {}, "Currencies"),
        table(null, ["Currency", "Points per unit", `Turnover per unit (${p.turnover_currency})`],
          Object.entries(p.currencies).map(([currency, rule]) => [currency,
            { value: decimal(rule.points_per_unit), class: "num" }, { value: decimal(rule.turnover_per_unit), class: "num" }]))),
      h("div", {}, h("h3", {}, "Game categories"),
        table(null, ["Category", "Weight"], Object.entries(p.category_weights).map(([category, weight]) =>
          [category, { value: times(weight), class: "num" }])))),
    h("h3", {}, "Coin rewards"),
    facts([
      ["Daily login", p.rewards.daily_login === null ? "none"
        : p.rewards.daily_login.schedule.map((c, i) => `day ${i + 1}: ${money(c.gc, "GC")} + ${money(c.sc, "SC")}`).join("; ") +
          ` (after the schedule: ${p.rewards.daily_login.after_schedule.replace(/_/g, " ")})`],
      ["Monthly bonus", p.rewards.monthly_bonus === null ? "none"
        : `${money(p.rewards.monthly_bonus.gc, "GC")} + ${money(p.rewards.monthly_bonus.sc, "SC")}`],
    ]),
    h("h3", {}, "Promotions"),
    promotionsTable(p, zone),
    versionsSection(zone),
    context.user.may(PROMOTIONS) ? promotionsEditor(p, zone) : null);
  root.hidden = false;
}

function promotionsTable(p, zone) {
  return table(null, ["Promotion", "Multiplier", "Starts", "Ends", "Game categories"],
    p.promotions.map((promo) => [promo.name, { value: times(promo.multiplier), class: "num" },
      whenIn(promo.starts_at, zone), whenIn(promo.ends_at, zone), promo.categories ? promo.categories.join(", ") : "all"]),
    { empty: "No promotion in this version." });
}

// --- versions and their difference -----------------------------------------------------------

function versionsSection(zone) {
  const { versions, bodies, programme } = shown;
  const readable = versions.filter((v) => bodies.has(v.version));
  const choose = (id, text, selected) => h("div", { class: "field" }, h("label", { for: id }, text),
    h("select", { id }, versions.map((v) => h("option", {
      value: String(v.version), selected: v.version === selected, disabled: !bodies.has(v.version),
    }, `${v.version}: ${v.name}${v.in_effect ? " (in effect)" : ""}${bodies.has(v.version) ? "" : " (not readable)"}`))));
  const earlier = [...readable].reverse().find((v) => v.version < programme.version);
  const form = h("form", { id: "compare", class: "panel inline", novalidate: true },
    choose("compare-from", "Compare version", earlier ? earlier.version : programme.version),
    choose("compare-to", "with version", programme.version),
    h("button", { type: "submit" }, "Compare"));
  const out = h("div", { id: "compare-result" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const a = Number($("#compare-from").value);
    const b = Number($("#compare-to").value);
    clear(out, diffTable(`Version ${a} → version ${b} (times in ${zone})`, bodies.get(a), bodies.get(b),
      `Version ${a}`, `Version ${b}`, { zone }));
  });
  return h("section", { "aria-labelledby": "versions-title" },
    h("h3", { id: "versions-title" }, "Versions"),
    table(null, ["Version", "Name", "Effective from", "In effect"],
      versions.map((v) => [String(v.version), v.name, whenIn(v.effective_from, zone), v.in_effect ? "yes" : ""])),
    readable.length < versions.length
      ? h("p", { class: "help" }, context.user.may(AUDIT)
        ? "A version not found in the audit trail cannot be compared."
        : "Only the version in effect can be read with your role: the API serves earlier versions' contents " +
          "only through the audit trail (loyalty_admin).")
      : null,
    readable.length > 1 ? [form, out] : null);
}

// --- promotions editor --------------------------------------------------------------------------

function promotionsEditor(p, zone) {
  const categories = Object.keys(p.category_weights);
  const rows = h("div", { id: "promotion-rows" });
  let count = 0;
  const addRow = (promo = null) => {
    count += 1;
    const n = count;
    const id = (name) => `promo-${n}-${name}`;
    const wall = (text) => instantToWall(text, zone);
    const row = h("fieldset", { class: "promotion", "data-row": String(n) },
      h("legend", {}, `Promotion ${n}`),
      h("div", { class: "field" }, h("label", { for: id("name") }, "Name"),
        h("input", { id: id("name"), name: "name", value: promo?.name ?? "", required: true, autocomplete: "off" })),
      h("div", { class: "field" }, h("label", { for: id("multiplier") }, "Multiplier"),
        h("input", { id: id("multiplier"), name: "multiplier", value: promo?.multiplier ?? "2", inputmode: "decimal", required: true })),
      h("div", { class: "field" }, h("label", { for: id("starts") }, `Starts (${zone})`),
        h("input", { id: id("starts"), name: "starts_at", type: "datetime-local", step: "1", required: true,
                     value: promo ? wall(promo.starts_at) : "", "data-original": promo?.starts_at ?? "" })),
      h("div", { class: "field" }, h("label", { for: id("ends") }, `Ends (${zone}, excluded)`),
        h("input", { id: id("ends"), name: "ends_at", type: "datetime-local", step: "1", required: true,
                     value: promo ? wall(promo.ends_at) : "", "data-original": promo?.ends_at ?? "" })),
      h("fieldset", { class: "categories" }, h("legend", {}, "Game categories (none ticked: all)"),
        categories.map((category) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "categories", value: category,
                       checked: Boolean(promo?.categories?.includes(category)) }), ` ${category}`))),
      h("button", { type: "button", class: "quiet", onclick: () => removeRow(row) }, `Remove promotion ${n}`));
    rows.append(row);
    return row;
  };
  // the keyboard's focus goes on to the next promotion's remove button (or the previous one's,
  // or "Add a promotion" when none is left), never back to the page's start
  const removeRow = (row) => {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    (next ? $(":scope > button", next) : $("#promotion-add")).focus();
  };
  for (const promo of p.promotions) addRow(promo);
  const result = h("p", { class: "message result", role: "status", "aria-live": "polite", hidden: true });
  const form = h("form", { id: "promotions", class: "panel", novalidate: true },
    h("h3", {}, "Edit the promotions"),
    h("p", { class: "help" }, "Publishing makes a new version of the latest programme with exactly these promotions, " +
      "from now or from a later moment."),
    rows,
    h("button", { type: "button", id: "promotion-add", class: "quiet", onclick: () => $("input", addRow()).focus() }, "Add a promotion"),
    h("div", { class: "grid" },
      h("div", { class: "field" }, h("label", { for: "promotions-reason" }, "Reason"),
        h("input", { id: "promotions-reason", name: "reason", required: true, autocomplete: "off" })),
      h("div", { class: "field" }, h("label", { for: "promotions-from" }, `Effective from (${zone}; empty: now)`),
        h("input", { id: "promotions-from", name: "effective_from", type: "datetime-local", step: "1" }))),
    h("button", { type: "submit" }, "Publish the promotions…"),
    result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = promotionsBody(form, zone);
    } catch (error) {
      say(result, "error", error.message);
      return;
    }
    const changes = differences({ promotions: p.promotions }, { promotions: body.promotions });
    const ok = await confirm(`Publish new promotions for ${shown.brand}?`, [
      h("p", {}, `A new version of the programme with ${body.promotions.length} promotion(s), ` +
        (body.effective_from ? `from ${whenIn(body.effective_from, zone)}` : "from now") + `. Reason: ${body.reason}`),
      changes.length ? diffTable(`What changes (times in ${zone})`, { promotions: p.promotions }, { promotions: body.promotions },
        "Now", "Proposed", { zone })
        : h("p", {}, "The promotions are the same as now."),
    ], "Publish");
    if (!ok) return;
    say(result, "pending", "Publishing…");
    const answer = await call("PUT", `loyalty/programmes/${segment(shown.brand)}/promotions`, { body });
    if (answer.status === 201) {
      const brand = shown.brand;
      await load(brand);
      const again = $("#promotions .result");
      say(again || result, "ok", h("strong", {}, "Published (201)."),
        ` Version ${answer.body.version}, effective from ${whenIn(answer.body.effective_from, zone)}.`);
    } else {
      say(result, "error", h("strong", {}, "Not published."), ` ${problem(answer)}`);
    }
  });
  return form;
}

function promotionsBody(form, zone) {
  const reason = $("#promotions-reason", form).value.trim();
  if (!reason) {
    $("#promotions-reason", form).focus();
    throw new Error("A reason is required.");
  }
  const instant = (input) => {
    // an unchanged time is sent as the API gave it (to the microsecond), an edited one read
    // in the brand's zone
    const original = input.dataset.original;
    const edited = wallToInstant(input.value, zone);
    return original && wallToInstant(instantToWall(original, zone), zone) === edited ? original : edited;
  };
  const promotions = $$("fieldset.promotion", form).map((row) => {
    const value = (name) => $(`[name="${name}"]`, row);
    for (const name of ["name", "multiplier", "starts_at", "ends_at"]) {
      if (!value(name).value.trim()) {
        value(name).focus();
        throw new Error(`${$(`label[for="${value(name).id}"]`, row).textContent} of ${$("legend", row).textContent} is required.`);
      }
    }
    const categories = $$('input[name="categories"]:checked', row).map((input) => input.value);
    return {
      name: value("name").value.trim(),
      multiplier: value("multiplier").value.trim(),
      starts_at: instant(value("starts_at")),
      ends_at: instant(value("ends_at")),
      categories: categories.length ? categories : null,
    };
  });
  const from = $("#promotions-from", form).value;
  return { promotions, reason, ...(from ? { effective_from: wallToInstant(from, zone) } : {}) };
}
