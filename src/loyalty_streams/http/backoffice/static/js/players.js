// Players: look one up by brand and id; their level, progress, balances, holds, rewards, perks
// and multipliers; the admin's actions (each confirmed in a dialog, its outcome shown as the
// API answers); their history, paged and filtered, and the explanation of balance and level.

import { call, get, problem, segment } from "./api.js";
import * as charts from "./charts.js";
import { $, $$, clear, confirm, facts, h, json, say, table, tabs } from "./dom.js";
import { HISTORY_TYPES, describe, label } from "./describe.js";
import { basisUnit, fillBrands, programmeOf, zoneOf } from "./data.js";
import { decimal, money, percent, points, times, wallToInstant, when, whenIn } from "./format.js";

const OPS = {
  adjust: "POST /loyalty/points/add",
  force: "POST /loyalty/status/update",
  redeem: "POST /loyalty/redemptions",
  confirm: "POST /loyalty/redemptions/{redemption_id}/confirm",
  cancel: "POST /loyalty/redemptions/{redemption_id}/cancel",
};
const PAGE_SIZES = [20, 50, 100, 200];

let context = null;
let current = null; // {brand, player, lookup, programme, zone}
let history = null; // {cursors: [null, ...], at: 0, filters}
let explainCursor = [null];

export function start(shared) {
  context = shared;
  fillBrands($("#lookup-brand"), context.brands);
  $("#lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    const brand = $("#lookup-brand").value;
    const player = $("#lookup-player").value.trim();
    if (!brand || !player) {
      say($("#lookup-message"), "error", "Choose a brand and type a player id.");
      (brand ? $("#lookup-player") : $("#lookup-brand")).focus();
      return;
    }
    lookUp(brand, player);
  });
}

export function show(shared) {
  fillBrands($("#lookup-brand"), shared.brands);
}

export function reset() {
  current = null;
  $("#player").hidden = true;
  clear($("#player"));
  $("#lookup-message").hidden = true;
}

async function lookUp(brand, player) {
  say($("#lookup-message"), "pending", `Looking up ${player} at ${brand}…`);
  let answer;
  let programme;
  try {
    [answer, programme] = await Promise.all([
      get(`loyalty/${segment(brand)}/${segment(player)}`),
      programmeOf(brand),
    ]);
  } catch (error) {
    // a request that could not be made ends the look-up too, never "Looking up…" for ever
    reset();
    say($("#lookup-message"), "error", `The look-up failed: ${error.message}.`);
    return;
  }
  if (answer.status !== 200) {
    reset();
    say($("#lookup-message"), "error", problem(answer));
    return;
  }
  $("#lookup-message").hidden = true;
  current = { brand, player, lookup: answer.body, programme, zone: zoneOf(programme) };
  history = { cursors: [null], at: 0, filters: {} };
  explainCursor = [null];
  build();
  $("#player-heading").focus();
}

/** Read the player again (after an action) and redraw what it shows. */
async function refresh() {
  const answer = await get(`loyalty/${segment(current.brand)}/${segment(current.player)}`);
  if (answer.status === 200) {
    current.lookup = answer.body;
    summary();
  }
  history.cursors = [null];
  history.at = 0;
  await Promise.all([loadHistory(), loadExplanation()]);
}

function build() {
  const root = $("#player");
  clear(root,
    h("h2", { id: "player-heading", tabindex: "-1" }, current.player,
      h("span", { class: "sub" }, ` at ${current.brand}`)),
    h("p", { id: "served", class: "served" }),
    h("div", { id: "player-summary", class: "cards" }),
    h("section", { id: "holds", "aria-labelledby": "holds-title" },
      h("h3", { id: "holds-title" }, "Redemption holds"), h("div", { id: "holds-table" }),
      h("p", { id: "holds-result", class: "message", role: "status", "aria-live": "polite", hidden: true })),
    actions(),
    h("div", { class: "tabs" },
      h("div", { role: "tablist", "aria-label": "The player's records", id: "player-tabs" },
        h("button", { type: "button", role: "tab", id: "tab-history", "aria-controls": "panel-history",
                      "aria-selected": "true" }, "History"),
        h("button", { type: "button", role: "tab", id: "tab-explain", "aria-controls": "panel-explain",
                      "aria-selected": "false" }, "Explanation")),
      h("section", { role: "tabpanel", id: "panel-history", "aria-labelledby": "tab-history", tabindex: "0" },
        historyFilter(), h("div", { id: "history-table" }), historyPager()),
      h("section", { role: "tabpanel", id: "panel-explain", "aria-labelledby": "tab-explain", tabindex: "0", hidden: true },
        h("div", { id: "explain" }))));
  root.hidden = false;
  tabs($("#player-tabs"));
  summary();
  loadHistory();
  loadExplanation();
}

function summary() {
  const { lookup: p, programme, zone } = current;
  const served = p.served_by || {};
  clear($("#served"),
    `Programme version ${p.programme_version}; answered by ${served.worker ?? "?"} (partition ${served.partition ?? "?"}), ` +
    `data as of ${whenIn(served.as_of, zone)}`,
    served.stale ? h("strong", { class: "warn" }, " — stale: the owner of this player could not be reached") : "");
  const unit = basisUnit(programme, p.progress.basis);
  const turnover = p.turnover.currency;
  const pts = p.points;
  const level = p.level;
  const rewards = p.rewards;
  const perks = Object.entries(p.perks).filter(([, on]) => on).map(([name]) => name.replace(/_/g, " "));
  const progressChart = charts.canvas(`Progress of ${current.player}: ${decimal(p.progress.reached)} ${unit} reached` +
    (p.progress.next_level ? `, ${decimal(p.progress.next_level.still_needed)} to ${p.progress.next_level.name}` : ""));
  clear($("#player-summary"),
    card("Level", "level",
      h("p", { class: "big", "data-field": "level.name" }, level.name),
      facts([
        ["Rank", String(level.rank)],
        ["Since", whenIn(level.since, zone)],
        level.downgrade_pending_since && ["Downgrade pending since", whenIn(level.downgrade_pending_since, zone)],
        p.forced_level && ["Forced", `${p.forced_level.level} by ${p.forced_level.actor}: ${p.forced_level.reason}` +
          (p.forced_level.until ? ` (until ${whenIn(p.forced_level.until, zone)})` : " (for good)")],
        level.description && ["About", level.description],
      ])),
    card("Points", "points",
      h("p", { class: "big" }, h("span", { "data-field": "points.available" }, points(pts.available)),
        h("span", { class: "unit" }, " available")),
      facts([
        ["Held", h("span", { "data-field": "points.held" }, points(pts.held))],
        ["Accrued", points(pts.accrued)], ["Redeemed", points(pts.redeemed)],
        ["Expired", points(pts.expired)], ["Credited", points(pts.credited)],
        ["Debited", points(pts.debited)], ["Reversed", points(pts.reversed)],
        pts.owed !== undefined && ["Owed", points(pts.owed)],
        ["Unrecovered", points(pts.unrecovered)],
        ["Expire", pts.expires_at ? `${whenIn(pts.expires_at, zone)} if the player stays away` : "never"],
      ])),
    card("Rewards", "rewards", rewardFacts(rewards, zone)),
    card("Progress", "progress wide",
      h("p", {}, p.progress.next_level
        ? `${decimal(p.progress.next_level.still_needed)} ${unit} to ${p.progress.next_level.name} ` +
          `(starts at ${decimal(p.progress.next_level.threshold)} ${unit}; reached ${decimal(p.progress.reached)}).`
        : `Top level: ${decimal(p.progress.reached)} ${unit} reached.`),
      h("p", {}, `Keeping ${level.name} asks ${decimal(p.progress.retention_30d)} ${unit} over 30 days; ` +
        `the last 30 days have ${decimal(p.progress.rolling_30d)}.`),
      progressChart),
    card("Perks and multipliers", "perks",
      perks.length ? h("ul", { class: "tags" }, perks.map((perk) => h("li", {}, perk))) : h("p", { class: "empty" }, "No perks at this level."),
      facts([
        ["Points", times(p.multipliers.points)], ["Daily bonus", times(p.multipliers.daily_bonus)],
        ["Store", times(p.multipliers.store)],
        ["Cashback", `${percent(p.cashback.percent)}` + (p.cashback.daily_cap !== null ? `, at most ${money(p.cashback.daily_cap, turnover)} a day` : "")],
      ])),
    card("Turnover", "turnover", facts([
      ["Cumulative", money(p.turnover.cumulative, turnover)],
      p.turnover.rolling_30d !== null && ["Last 30 days", money(p.turnover.rolling_30d, turnover)],
      ["VIP points", decimal(p.vip_points)],
      ["Last activity", whenIn(p.last_activity, zone)],
    ])));
  charts.progress(progressChart, p, unit);
  holds();
}

function card(title, name, ...content) {
  const id = `card-${name.split(" ")[0]}`;
  return h("section", { class: `card ${name}`, "aria-labelledby": id }, h("h3", { id }, title), content);
}

function rewardFacts(rewards, zone) {
  const daily = rewards.daily_reward;
  const monthly = rewards.monthly_bonus;
  const birthday = rewards.birthday_gift;
  const coins = (c) => `${money(c.gc, "GC")} + ${money(c.sc, "SC")}`;
  return facts([
    ["Daily reward", daily === null ? "the brand pays none"
      : `streak ${daily.streak} (last claimed ${daily.last_claimed_day ?? "never"}); next from ` +
        `${whenIn(daily.next_claim_from, zone)}: ${coins(daily.next_reward)} (base ${coins(daily.next_base)})`],
    ["Monthly bonus", monthly === null ? "the brand pays none"
      : `${monthly.eligible ? "eligible" : "not at this level"}: ${coins(monthly)}` +
        ` (last claimed ${monthly.last_claimed_month ?? "never"})`],
    ["Birthday gift", `${coins(birthday)} (last claimed ${birthday.last_claimed_year ?? "never"})`],
    ["Tier-up rewards paid", rewards.tier_rewards_granted_for.join(", ") || "none"],
  ]);
}

function holds() {
  const { lookup, zone } = current;
  const user = context.user;
  const canConfirm = user.may(OPS.confirm);
  const canCancel = user.may(OPS.cancel);
  const rows = lookup.holds.map((hold) => [
    hold.redemption_id, { value: points(hold.points), class: "num" }, { value: money(hold.value, hold.currency), class: "num" },
    whenIn(hold.held_at, zone), whenIn(hold.expires_at, zone),
    h("span", { class: "row-actions" },
      canConfirm ? h("button", { type: "button", onclick: () => redemption("confirm", hold) }, `Confirm ${hold.redemption_id}`) : null,
      canCancel ? h("button", { type: "button", class: "quiet", onclick: () => redemption("cancel", hold) }, `Cancel ${hold.redemption_id}`) : null),
  ]);
  clear($("#holds-table"),
    table(null, ["Redemption", "Points", "Value", "Held at", "Released at", canConfirm || canCancel ? "Actions" : ""], rows,
      { empty: "No redemption is held." }));
}

async function redemption(what, hold) {
  const verb = what === "confirm" ? "Confirm" : "Cancel";
  const ok = await confirm(`${verb} redemption ${hold.redemption_id}?`,
    h("p", {}, what === "confirm"
      ? `The ${points(hold.points)} held points of ${current.player} are written off for ${money(hold.value, hold.currency)}.`
      : `The ${points(hold.points)} held points go back to ${current.player}'s available balance.`),
    `${verb} the redemption`);
  if (!ok) return;
  const answer = await call("POST", `loyalty/redemptions/${segment(hold.redemption_id)}/${what}`,
    { body: { brand_id: current.brand, player_id: current.player } });
  await afterCommand(answer, "#holds-result");
}

/** The admin's actions: each a form, asked again in a dialog, answered as the API answers. A
 * form the user's roles may not use is hidden (the API would refuse it: 403). */
function actions() {
  const user = context.user;
  const levels = current.programme?.levels || [];
  const zone = current.zone;
  const policies = current.programme?.policies || {};
  const result = () => h("p", { class: "message result", role: "status", "aria-live": "polite", hidden: true });
  const forms = [
    h("form", { id: "adjust", class: "action", novalidate: true, hidden: !user.may(OPS.adjust) },
      h("h4", {}, "Adjust points"),
      h("fieldset", { class: "choice" }, h("legend", {}, "Direction"),
        h("label", {}, h("input", { type: "radio", name: "direction", value: "credit", checked: true }), " Credit"),
        h("label", {}, h("input", { type: "radio", name: "direction", value: "debit" }), " Debit")),
      field("adjust-points", "Points", h("input", { id: "adjust-points", name: "points", inputmode: "decimal", autocomplete: "off",
        required: true, "aria-describedby": "adjust-points-help" }),
        h("p", { id: "adjust-points-help", class: "help" }, "A positive amount, at most 2 decimal places.")),
      field("adjust-reason", "Reason", h("input", { id: "adjust-reason", name: "reason", required: true, autocomplete: "off" })),
      h("button", { type: "submit" }, "Adjust points…"),
      result()),
    h("form", { id: "force", class: "action", novalidate: true, hidden: !user.may(OPS.force) },
      h("h4", {}, "Force a level"),
      field("force-level", "Level", h("select", { id: "force-level", name: "level", required: true },
        levels.map((level) => h("option", { value: level.name }, `${level.name} (rank ${level.rank})`)))),
      field("force-reason", "Reason", h("input", { id: "force-reason", name: "reason", required: true, autocomplete: "off" })),
      field("force-until", `Until (${zone}; empty: for good)`,
        h("input", { id: "force-until", name: "until", type: "datetime-local", step: "1" })),
      h("button", { type: "submit" }, "Force the level…"),
      result()),
    h("form", { id: "redeem", class: "action", novalidate: true, hidden: !user.may(OPS.redeem) },
      h("h4", {}, "Request a redemption"),
      field("redeem-points", "Points", h("input", { id: "redeem-points", name: "points", inputmode: "numeric", autocomplete: "off",
        required: true, "aria-describedby": "redeem-points-help" }),
        h("p", { id: "redeem-points-help", class: "help" },
          `At least ${decimal(String(policies.redemption_min_points ?? "?"))}, in steps of ` +
          `${decimal(String(policies.redemption_step_points ?? "?"))}; they are held until confirmed or cancelled.`)),
      h("button", { type: "submit" }, "Request the redemption…"),
      result()),
  ];
  const section = h("section", { id: "actions", "aria-labelledby": "actions-title", hidden: forms.every((form) => form.hidden) },
    h("h3", { id: "actions-title" }, "Actions"), h("div", { class: "action-forms" }, forms));
  for (const form of forms) form.addEventListener("submit", (event) => { event.preventDefault(); act(form); });
  return section;
}

function field(id, text, input, ...after) {
  return h("div", { class: "field" }, h("label", { for: id }, text), input, after);
}

async function act(form) {
  const data = new FormData(form);
  const result = $(".result", form);
  const missing = $$("[required]", form).find((input) => !String(input.value).trim());
  if (missing) {
    say(result, "error", `${$(`label[for="${missing.id}"]`, form)?.textContent || missing.name} is required.`);
    missing.focus();
    return;
  }
  const who = `${current.player} at ${current.brand}`;
  let path;
  let body;
  let question;
  let verb;
  if (form.id === "adjust") {
    const debit = data.get("direction") === "debit";
    const amount = String(data.get("points")).trim();
    // the Direction alone gives the sign: the API reads a leading minus as a debit, so only a
    // positive amount is taken here (a "-5" credit would debit)
    const refused = amountProblem(amount);
    if (refused) {
      say(result, "error", refused);
      $("#adjust-points", form).focus();
      return;
    }
    body = { points: `${debit ? "-" : ""}${amount}`, reason: String(data.get("reason")).trim() };
    path = "loyalty/points/add";
    verb = debit ? "Debit" : "Credit";
    question = [`${verb} ${points(amount)} points ${debit ? "from" : "to"} ${who}?`, `Reason: ${body.reason}`];
  } else if (form.id === "force") {
    let until = "";
    try {
      until = wallToInstant(String(data.get("until") || ""), current.zone);
    } catch (error) {
      say(result, "error", error.message);
      return;
    }
    body = { level: String(data.get("level")), reason: String(data.get("reason")).trim(), ...(until ? { until } : {}) };
    path = "loyalty/status/update";
    verb = "Force";
    question = [`Force ${who} to ${body.level}?`, `Reason: ${body.reason}`,
      until ? `Until ${whenIn(until, current.zone)}` : "For good, until another change"];
  } else {
    const amount = String(data.get("points")).trim();
    body = { points: amount };
    path = "loyalty/redemptions";
    verb = "Redeem";
    question = [`Hold ${points(amount)} points of ${who} for a redemption?`];
  }
  const ok = await confirm(`${question[0]}`, question.slice(1).map((line) => h("p", {}, line)), verb);
  if (!ok) return;
  say(result, "pending", "Sent; waiting for the worker to carry it out…");
  let answer;
  try {
    answer = await call("POST", path, { body: { brand_id: current.brand, player_id: current.player, ...body } });
  } catch (error) {
    say(result, "error", h("strong", {}, "Not sent."), ` ${error.message}.`);
    return;
  }
  await afterCommand(answer, result);
  if (answer.status === 200) form.reset();
}

/** Why `amount` is not a positive number of points with at most 2 decimal places, or "". */
export function amountProblem(amount) {
  if (/^[-−]/.test(amount)) {
    return "Points must be a positive amount: choose Debit to take points away, and type the amount without a sign.";
  }
  if (!/^\d+(\.\d{1,2})?$/.test(amount)) return "Points must be a positive number with at most 2 decimal places, e.g. 250 or 12.50.";
  if (/^0*(\.0*)?$/.test(amount)) return "Points must be more than 0.";
  return "";
}

/** Show a command's outcome as the API answered it, then read the player again. */
async function afterCommand(answer, region) {
  const where = typeof region === "string" ? $(region) : region;
  const body = answer.body || {};
  if (answer.status === 200) {
    say(where, "ok", h("strong", {}, "Applied (200)."), " ",
      h("ul", {}, (body.outputs || []).map((row) => {
        const { change, text } = describe(row);
        return h("li", {}, `${label(row.type)}${change ? ` ${change}` : ""}${text ? `: ${text}` : ""}`);
      })));
  } else if (answer.status === 409 && body.status === "rejected") {
    say(where, "error", h("strong", {}, `Refused by the rules (409): ${body.code}.`), ` ${body.error}`);
  } else if (answer.status === 202) {
    say(where, "info", h("strong", {}, "Accepted (202)."), ` ${body.detail || ""} Command ${body.command_id}.`);
  } else {
    say(where, "error", h("strong", {}, "Not done."), ` ${problem(answer)}`);
  }
  if ([200, 202, 409].includes(answer.status)) await refresh();
}

// --- history --------------------------------------------------------------------------------

function historyFilter() {
  const zone = current.zone;
  const form = h("form", { id: "history-filter", class: "panel grid", novalidate: true },
    h("details", { class: "types" },
      h("summary", {}, "Types ", h("span", { id: "history-types-summary", class: "sub" }, "(all)")),
      h("fieldset", {}, h("legend", { class: "sr-only" }, "Types to show"),
        HISTORY_TYPES.map((type) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: "types", value: type }), ` ${label(type)}`)))),
    field("history-since", `Since (${zone})`, h("input", { id: "history-since", name: "since", type: "datetime-local", step: "1" })),
    field("history-until", `Until (${zone}, excluded)`, h("input", { id: "history-until", name: "until", type: "datetime-local", step: "1" })),
    field("history-limit", "Per page", h("select", { id: "history-limit", name: "limit" },
      PAGE_SIZES.map((size) => h("option", { value: String(size), selected: size === 20 }, String(size))))),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply")));
  form.addEventListener("change", (event) => {
    if (event.target.name === "types") {
      const chosen = $$('input[name="types"]:checked', form).map((input) => label(input.value));
      $("#history-types-summary").textContent = chosen.length ? `(${chosen.length}: ${chosen.join(", ")})` : "(all)";
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      history.filters = {
        types: data.getAll("types").join(","),
        since: wallToInstant(String(data.get("since") || ""), current.zone),
        until: wallToInstant(String(data.get("until") || ""), current.zone),
        limit: String(data.get("limit")),
      };
    } catch (error) {
      say($("#history-message"), "error", error.message);
      return;
    }
    history.cursors = [null];
    history.at = 0;
    loadHistory();
  });
  return form;
}

function historyPager() {
  return h("div", { class: "pager" },
    h("p", { id: "history-message", class: "message", role: "status", "aria-live": "polite", hidden: true }),
    h("nav", { "aria-label": "History pages" },
      h("button", { type: "button", id: "history-newest", class: "quiet", onclick: () => page(0) }, "Newest"),
      h("button", { type: "button", id: "history-newer", class: "quiet", onclick: () => page(history.at - 1) }, "Newer"),
      h("span", { id: "history-page", class: "sub" }),
      h("button", { type: "button", id: "history-older", onclick: () => page(history.at + 1) }, "Older")));
}

function page(at) {
  if (at < 0 || at >= history.cursors.length) return;
  history.at = at;
  loadHistory();
}

async function loadHistory() {
  const { brand, player, zone } = current;
  const query = { limit: "20", ...history.filters, cursor: history.cursors[history.at] };
  let answer;
  try {
    answer = await get(`loyalty/${segment(brand)}/${segment(player)}/history`, query);
  } catch (error) {
    say($("#history-message"), "error", `The history cannot be read: ${error.message}.`);
    return;
  }
  if (answer.status !== 200) {
    say($("#history-message"), "error", problem(answer));
    return;
  }
  $("#history-message").hidden = true;
  const rows = answer.body.history.map((row) => {
    const { change, text } = describe(row);
    return [
      { value: when(row.occurred_at, zone), class: "nowrap" },
      label(row.type),
      { value: change, class: "num" },
      { value: row.points_available !== undefined ? points(row.points_available) : "", class: "num" },
      text,
      row.command_id || row.cause_id ? h("code", {}, row.command_id || row.cause_id) : "",
      json("JSON", row),
    ];
  });
  history.cursors.length = history.at + 1;
  if (answer.body.next_cursor) history.cursors.push(answer.body.next_cursor);
  clear($("#history-table"), table(`History of ${player}, newest first (times in ${zone})`,
    ["Time", "Type", "Points", "Available after", "What", "Command", "Row"], rows,
    { empty: "Nothing in the history matches.", className: "history" }));
  $("#history-page").textContent = `Page ${history.at + 1}`;
  $("#history-newer").disabled = history.at === 0;
  $("#history-newest").disabled = history.at === 0;
  $("#history-older").disabled = !answer.body.next_cursor;
}

// --- explanation ----------------------------------------------------------------------------

async function loadExplanation() {
  const { brand, player, zone } = current;
  const cursor = explainCursor[explainCursor.length - 1];
  const root = $("#explain");
  let answer;
  try {
    answer = await get(`loyalty/${segment(brand)}/${segment(player)}/explain`, { cursor });
  } catch (error) {
    clear(root, h("p", { class: "message", "data-kind": "error" }, `The explanation cannot be read: ${error.message}.`));
    return;
  }
  if (answer.status !== 200) {
    clear(root, h("p", { class: "message", "data-kind": "error" }, problem(answer)));
    return;
  }
  const { balance, level } = answer.body;
  const chart = charts.canvas(`Points balance of ${player} after each movement, over the days shown`, { height: 260 });
  clear(root,
    h("h3", {}, "Level"),
    h("ul", { class: "statement" }, level.statement.map((line) => h("li", {}, sentence(line, zone)))),
    level.last_changes?.length ? table("Last level changes", ["Time", "Change", "Reason"],
      level.last_changes.map((c) => [when(c.at, zone), `${c.from_level} → ${c.to_level} (${c.direction})`, c.reason])) : null,
    h("h3", {}, "Balance"),
    h("p", {}, `${points(balance.available)} available + ${points(balance.held)} held = `,
      h("strong", {}, `${points(balance.total)} points`), `. ${sentence(balance.opening.note, zone).replace(/\.$/, "")}.`),
    chart,
    table("Totals by kind: what the history holds, what the record counts, and what came before the history",
      ["Kind", "History", "Record", "Before the history"],
      Object.entries(balance.totals).map(([kind, t]) => [kind,
        { value: points(t.history), class: "num" }, { value: points(t.record), class: "num" },
        { value: points(t.before_history), class: "num" }])),
    balance.problems.length
      ? h("div", { class: "message", "data-kind": "error" }, h("strong", {}, "Does not reconcile: "),
          h("ul", {}, balance.problems.map((p) => h("li", {}, typeof p === "string" ? p : JSON.stringify(p)))))
      : h("p", { class: "message", "data-kind": "ok" }, "Every movement reconciles with the record."),
    h("h3", {}, `Days (brand days in ${answer.body.zone})`),
    balance.days.map((day) => h("details", { class: "day" },
      h("summary", {}, `${day.day}: ${points(day.opening.total)} → ${points(day.closing.total)} (${day.lines.length} lines)`),
      table(null, ["Time", "Available", "Held", "Balance", "What"], day.lines.map((line) => [
        { value: when(line.at, zone).slice(11), class: "nowrap" },
        { value: moved(line.available), class: "num" }, { value: moved(line.held), class: "num" },
        { value: line.balance ? points(line.balance.total) : "", class: "num" }, line.text])))),
    h("nav", { class: "pager", "aria-label": "Explanation pages" },
      h("button", { type: "button", class: "quiet", disabled: explainCursor.length === 1,
                    onclick: () => { explainCursor.pop(); loadExplanation(); } }, "Earlier days"),
      h("button", { type: "button", disabled: !balance.next_cursor,
                    onclick: () => { explainCursor.push(balance.next_cursor); loadExplanation(); } }, "Later days")));
  charts.balance(chart, balance.days, zone);
}

/** A line of the API's words for people: its RFC 3339 times in the brand's zone, and each
 * sentence starting with a capital. */
export function sentence(text, zone) {
  return String(text ?? "")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)/g, (at) => whenIn(at, zone))
    .replace(/(^|[.!?]\s+)([a-z])/g, (_, before, letter) => before + letter.toUpperCase());
}

function moved(text) {
  return text === null || text === "0" || text === "0.00" ? "" : points(text, { signed: true });
}
