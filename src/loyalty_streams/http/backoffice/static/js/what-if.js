// What-if: a proposed programme (the version in effect, changed in a form or as JSON) replayed
// over the brand's history by the API as a job (POST /loyalty/what-if/{brand} -> 202 with the
// job; GET the job until it is done), its report drawn here with Chart.js from the job's JSON,
// and its files (the plotly HTML page, the CSV tables) to download.
//
// A job lives on the worker that accepted it: the page polls the same worker it was served by,
// the one it posted to.

import { call, get, problem, segment } from "./api.js";
import * as charts from "./charts.js";
import { diffTable } from "./diff.js";
import { $, $$, clear, h, say, table } from "./dom.js";
import { fillBrands, programmeOf, zoneOf } from "./data.js";
import { decimal, money, points, whenIn } from "./format.js";

const SUBMIT = "POST /loyalty/what-if/{brand_id}";
const POLL_MS = 1000;

let context = null;
let base = null; // the version in effect the proposal started from
let proposal = null;
let polling = 0; // the poll loop's generation: a new submission stops the previous loop
let jsonError = ""; // why the JSON editor's text is not a proposal ("" when it is one)
let submitting = false; // a POST in flight: Run stays disabled until it is answered
let submitted = null; // {jobId, name, text} of the proposal the job shown was submitted with

export function start(shared) {
  context = shared;
  const root = $("#what-if");
  if (!context.user.offers(SUBMIT)) {
    clear(root, h("p", { class: "empty" }, "This worker's API has no what-if."));
    return;
  }
  clear(root,
    h("form", { id: "what-if-start", class: "panel inline", novalidate: true },
      h("div", { class: "field" }, h("label", { for: "what-if-brand" }, "Brand"), h("select", { id: "what-if-brand" })),
      h("button", { type: "submit" }, "Start from the version in effect")),
    h("p", { id: "what-if-message", class: "message", role: "status", "aria-live": "polite", hidden: true }),
    h("div", { id: "what-if-editor" }),
    h("section", { id: "what-if-job", "aria-labelledby": "what-if-job-title", hidden: true },
      h("h2", { id: "what-if-job-title", tabindex: "-1" }, "The job"),
      h("p", { id: "what-if-status", class: "message", role: "status", "aria-live": "polite" }),
      h("div", { id: "what-if-report" })));
  fillBrands($("#what-if-brand"), context.brands);
  $("#what-if-start").addEventListener("submit", (event) => {
    event.preventDefault();
    begin($("#what-if-brand").value);
  });
}

export function show(shared) {
  if ($("#what-if-brand")) fillBrands($("#what-if-brand"), shared.brands);
}

export function reset() {
  polling += 1;
  base = null;
  proposal = null;
  jsonError = "";
  submitting = false;
  submitted = null;
}

async function begin(brand) {
  if (!brand) return;
  const programme = await programmeOf(brand, { fresh: true });
  if (!programme) {
    say($("#what-if-message"), "error", `No programme of ${brand} is in effect (or your token may not read it).`);
    return;
  }
  $("#what-if-message").hidden = true;
  base = programme;
  jsonError = "";
  proposal = structuredClone(programme);
  proposal.name = `${programme.name} (what-if)`;
  editor();
}

// --- the proposal ------------------------------------------------------------------------------

const LEVEL_FIELDS = [
  ["threshold", "Threshold"], ["retention", "Retention (empty: default)"],
  ["points_multiplier", "Points ×"], ["cashback_percent", "Cashback %"], ["cashback_daily_cap", "Daily cap"],
];

function editor() {
  const zone = zoneOf(base);
  const unit = base.level_basis === "turnover" ? base.turnover_currency : "VIP points";
  const levelRows = base.levels.map((level, i) => h("tr", {},
    h("th", { scope: "row" }, level.name),
    LEVEL_FIELDS.map(([name, text]) => h("td", {},
      h("label", { class: "sr-only", for: `wi-${i}-${name}` }, `${level.name}: ${text}`),
      h("input", { id: `wi-${i}-${name}`, "data-level": String(i), "data-name": name, inputmode: "decimal",
                   autocomplete: "off", size: "9", value: level[name] === null ? "" : String(level[name]) })))));
  const form = h("form", { id: "what-if-form", class: "panel", novalidate: true },
    h("h2", {}, `Proposal for ${base.brand_id}`,
      h("span", { class: "sub" }, ` from version ${base.version}, ${base.name}`)),
    h("div", { class: "grid" },
      h("div", { class: "field" }, h("label", { for: "what-if-name" }, "Proposal name"),
        h("input", { id: "what-if-name", value: proposal.name, autocomplete: "off" })),
      h("div", { class: "field" }, h("label", { for: "what-if-from" }, `From (a brand day, ${zone}; empty: the whole history)`),
        h("input", { id: "what-if-from", type: "date" })),
      h("div", { class: "field" }, h("label", { for: "what-if-to" }, `To, excluded (empty: now)`),
        h("input", { id: "what-if-to", type: "date" })),
      h("div", { class: "field" }, h("label", { for: "what-if-by" }, "Report by"),
        h("select", { id: "what-if-by" }, h("option", { value: "day" }, "day"), h("option", { value: "month" }, "month")))),
    h("h3", {}, `Levels (thresholds in ${unit}, caps in ${base.turnover_currency})`),
    h("div", { class: "table-wrap" }, h("table", { class: "levels-editor" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Level"), LEVEL_FIELDS.map(([, text]) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, levelRows))),
    h("details", { class: "json-editor" },
      h("summary", {}, "The whole proposal as JSON"),
      h("label", { for: "what-if-json" }, "Programme JSON (edits here update the form)"),
      h("textarea", { id: "what-if-json", rows: "16", spellcheck: "false", "aria-describedby": "what-if-json-note" }),
      h("p", { id: "what-if-json-note", class: "help", role: "status", "aria-live": "polite" })),
    h("h3", {}, "What the proposal changes"),
    h("div", { id: "what-if-diff" }),
    h("p", { id: "what-if-run-note", class: "message", "data-kind": "error", role: "alert", hidden: true }),
    h("button", { type: "submit", id: "what-if-run" }, "Run the what-if"));
  clear($("#what-if-editor"), form);
  syncJson();
  form.addEventListener("input", (event) => {
    const target = event.target;
    if (target.id === "what-if-json") {
      try {
        const parsed = JSON.parse(target.value);
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("a programme is a JSON object");
        proposal = parsed;
        jsonError = "";
        $("#what-if-json-note").textContent = "";
        fillForm();
      } catch (error) {
        // the last valid proposal is not what the user sees: nothing runs until the JSON is one
        jsonError = `Not JSON yet: ${error.message}`;
        $("#what-if-json-note").textContent = jsonError;
        runnable();
        return;
      }
    } else if (target.dataset.level !== undefined) {
      const text = target.value.trim();
      const level = proposal.levels[Number(target.dataset.level)];
      if (level) level[target.dataset.name] = text === "" && target.dataset.name !== "threshold" ? null : text;
      syncJson();
    } else if (target.id === "what-if-name") {
      proposal.name = target.value;
      syncJson();
    }
    runnable();
    showDiff();
    staleReport();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  showDiff();
}

function syncJson() {
  if (jsonError) return; // the form's fields do not overwrite what the user is still typing
  $("#what-if-json").value = JSON.stringify(proposal, null, 2);
}

/** Run is enabled only with a proposal that is valid JSON and no submission in flight. */
function runnable() {
  const run = $("#what-if-run");
  if (!run) return;
  run.disabled = submitting || Boolean(jsonError);
  $("#what-if-json").setAttribute("aria-invalid", String(Boolean(jsonError)));
  const note = $("#what-if-run-note");
  note.hidden = !jsonError;
  note.textContent = jsonError ? `The what-if cannot run: the proposal's JSON is not valid (${jsonError.replace(/^Not JSON yet: /, "")}).` : "";
}

/** Say so when the form no longer holds the proposal the report shown was made from. */
function staleReport() {
  const note = $("#what-if-report-stale");
  if (!note || !submitted) return;
  note.hidden = JSON.stringify(proposal) === submitted.text && !jsonError;
}

function fillForm() {
  $("#what-if-name").value = proposal.name ?? "";
  for (const input of $$("[data-level]", $("#what-if-form"))) {
    const level = (proposal.levels || [])[Number(input.dataset.level)];
    if (level && document.activeElement !== input) input.value = level[input.dataset.name] ?? "";
  }
}

function showDiff() {
  clear($("#what-if-diff"), diffTable(null, base, proposal, `Version ${base.version}`, "Proposal", { zone: zoneOf(base) }));
}

async function submit() {
  if (submitting) return;
  if (jsonError) {
    runnable();
    $("#what-if-json").focus();
    return;
  }
  const status = $("#what-if-status");
  // a new submission stops following the previous job: its result is never shown as this one's
  polling += 1;
  submitted = null;
  $("#what-if-job").hidden = false;
  clear($("#what-if-report"));
  const sent = structuredClone(proposal);
  const body = { programme: sent, by: $("#what-if-by").value };
  if ($("#what-if-from").value) body.from = $("#what-if-from").value;
  if ($("#what-if-to").value) body.to = $("#what-if-to").value;
  say(status, "pending", `Submitting the proposal “${sent.name ?? "unnamed"}”…`);
  submitting = true;
  runnable();
  let answer;
  try {
    answer = await call("POST", `loyalty/what-if/${segment(base.brand_id)}`, { body });
  } catch (error) {
    answer = null;
    say(status, "error", h("strong", {}, "Not started."), ` ${error.message}.`);
  } finally {
    submitting = false;
    runnable();
  }
  if (answer === null) {
    $("#what-if-job-title").focus();
    return;
  }
  if (answer.status !== 202) {
    say(status, "error", h("strong", {}, "Not started."), ` ${problem(answer)}`);
    $("#what-if-job-title").focus();
    return;
  }
  const { job_id: jobId } = answer.body;
  submitted = { jobId, name: sent.name ?? "unnamed", text: JSON.stringify(sent) };
  say(status, "pending", `Job ${jobId} (proposal “${submitted.name}”) accepted (202); replaying the history…`);
  $("#what-if-job-title").focus();
  poll(jobId);
}

async function poll(jobId) {
  polling += 1;
  const generation = polling;
  const began = Date.now();
  const status = $("#what-if-status");
  for (;;) {
    let answer;
    try {
      answer = await get(`loyalty/what-if/jobs/${segment(jobId)}`);
    } catch (error) {
      if (generation !== polling) return;
      say(status, "error", h("strong", {}, `Job ${jobId} cannot be read.`), ` ${error.message}.`);
      return;
    }
    if (generation !== polling) return;
    if (answer.status !== 200) {
      say(status, "error", h("strong", {}, "The job cannot be read."), ` ${problem(answer)}`);
      return;
    }
    const job = answer.body;
    if (job.status === "done") {
      say(status, "ok", h("strong", {}, "Done."), ` Job ${job.job_id}, proposal “${job.report.proposed_name}”, ` +
        `submitted by ${job.submitted_by}, finished ${whenIn(job.finished_at, job.report.timezone)}.`);
      report(job);
      return;
    }
    if (job.status === "failed") {
      say(status, "error", h("strong", {}, `Job ${job.job_id} failed.`), ` ${job.error}`);
      return;
    }
    say(status, "pending", `Job ${job.job_id} (proposal “${submitted?.name ?? job.job_id}”) running for ${Math.round((Date.now() - began) / 1000)} s…`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// --- the report ---------------------------------------------------------------------------------

function report(job) {
  const r = job.report;
  const zone = r.timezone;
  const labels = r.periods.map((p) => p.period);
  const currency = base.turnover_currency;
  const liabilityCurrency = base.policies.redemption_currency;
  const per = (run, pick) => r.periods.map((p) => pick(p[run]));
  const levelsBaseline = charts.canvas("Players per level at the end of each period, baseline", { height: 260 });
  const levelsProposal = charts.canvas("Players per level at the end of each period, proposal", { height: 260 });
  const issued = charts.canvas("Points issued per period, baseline against proposal", { height: 260 });
  const cashback = charts.canvas(`Cashback paid per period in ${currency}, baseline against proposal`, { height: 260 });
  const total = r.total;
  const moneyRows = (name, field, code) => {
    const codes = [...new Set([...Object.keys(total.baseline[field]), ...Object.keys(total.proposal[field])])];
    return (codes.length ? codes : [code]).map((c) => figure(`${name} (${c})`,
      total.baseline[field][c] ?? "0.00", total.proposal[field][c] ?? "0.00", (t) => money(t, c)));
  };
  clear($("#what-if-report"),
    h("h3", { id: "what-if-report-title" }, `Report of job ${job.job_id}: proposal “${r.proposed_name}” for ${r.brand_id}`),
    h("p", { id: "what-if-report-stale", class: "message", "data-kind": "info", hidden: true },
      `The form has changed since job ${job.job_id} was submitted: this report is of the proposal as it was then. ` +
      "Run the what-if again for the form's proposal."),
    h("p", {}, `From ${whenIn(r.since, zone)} to ${whenIn(r.until, zone)} (excluded), by ${r.by}; baseline: version(s) ` +
      `${r.baseline_versions.join(", ")}; the proposal governs ${r.proposal_from ? `from ${whenIn(r.proposal_from, zone)}` : "the whole history"}. ` +
      `Replayed ${r.stats.events} events of ${r.stats.players} players in ${r.stats.seconds} s.`),
    table("Over the whole range", ["Figure", "Baseline", "Proposal", "Change"], [
      ...r.levels.map((level) => figure(`Players at ${level} at the end`, String(total.baseline.players[level] ?? 0),
        String(total.proposal.players[level] ?? 0), decimal)),
      figure("Points issued", total.baseline.points_issued, total.proposal.points_issued, points),
      ...moneyRows("Liability", "liability", liabilityCurrency),
      ...moneyRows("Cashback", "cashback", currency),
      figure("Daily cashback caps hit", String(total.baseline.cashback_caps), String(total.proposal.cashback_caps), decimal),
      figure("Tier-up rewards", String(total.baseline.tier_rewards), String(total.proposal.tier_rewards), decimal),
      figure("Level ups", String(total.baseline.level_ups), String(total.proposal.level_ups), decimal),
      figure("Level downs", String(total.baseline.level_downs), String(total.proposal.level_downs), decimal),
    ], { className: "what-if-totals" }),
    h("h3", {}, "Players per level at the end of each period"),
    h("div", { class: "two" }, h("div", {}, h("h4", {}, "Baseline"), levelsBaseline),
      h("div", {}, h("h4", {}, "Proposal"), levelsProposal)),
    h("div", { class: "two" },
      h("div", {}, h("h3", {}, "Points issued"), issued),
      h("div", {}, h("h3", {}, `Cashback paid (${currency})`), cashback)),
    h("h3", {}, `Level at the end: baseline (rows) against proposal (columns)`),
    moves(r),
    h("h3", {}, "Players most affected"),
    table(null, ["Player", "Baseline", "Proposal", "Levels", "Points, baseline", "Points, proposal", "Change"],
      r.affected.map((a) => [a.player_id, a.baseline_level, a.proposal_level,
        { value: a.level_change > 0 ? `+${a.level_change}` : String(a.level_change), class: "num" },
        { value: points(a.baseline_points), class: "num" }, { value: points(a.proposal_points), class: "num" },
        { value: points(a.points_change, { signed: true }), class: "num" }]),
      { empty: "No player differs." }),
    h("h3", {}, "Files"),
    h("p", { class: "downloads" }, downloads(job)),
    h("p", { id: "what-if-download", class: "message", role: "status", "aria-live": "polite", hidden: true }));
  staleReport();
  charts.levels(levelsBaseline, labels, r.levels, per("baseline", (run) => run.players));
  charts.levels(levelsProposal, labels, r.levels, per("proposal", (run) => run.players));
  charts.compared(issued, labels, [
    { label: "Baseline", values: per("baseline", (run) => run.points_issued) },
    { label: "Proposal", values: per("proposal", (run) => run.points_issued) },
  ], "points");
  charts.compared(cashback, labels, [
    { label: "Baseline", values: per("baseline", (run) => run.cashback[currency] ?? "0") },
    { label: "Proposal", values: per("proposal", (run) => run.cashback[currency] ?? "0") },
  ], currency);
}

/** A row of the totals: the figure in both runs and the change, all exact. */
function figure(name, baseline, proposal, format) {
  return [name, { value: format(baseline), class: "num" }, { value: format(proposal), class: "num" },
    { value: change(baseline, proposal), class: "num" }];
}

/** proposal - baseline of two decimal strings, exactly (as scaled integers). */
export function change(baseline, proposal) {
  const scale = Math.max(places(baseline), places(proposal));
  const difference = scaled(proposal, scale) - scaled(baseline, scale);
  const sign = difference < 0n ? "-" : "";
  const digits = (difference < 0n ? -difference : difference).toString().padStart(scale + 1, "0");
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return decimal(`${sign}${text}`, { signed: true });
}

function places(text) {
  const dot = String(text).indexOf(".");
  return dot < 0 ? 0 : String(text).length - dot - 1;
}

function scaled(text, scale) {
  const [whole, fraction = ""] = String(text).replace(/^-/, "").split(".");
  const value = BigInt(whole + fraction.padEnd(scale, "0"));
  return String(text).startsWith("-") ? -value : value;
}

function moves(r) {
  const count = new Map(r.moves.map((m) => [`${m.baseline}→${m.proposal}`, m.players]));
  return table(null, ["Baseline \\ proposal", ...r.levels],
    r.levels.map((from) => [from, ...r.levels.map((to) => {
      const n = count.get(`${from}→${to}`) || 0;
      return { value: String(n), class: `num${n && from !== to ? " moved" : ""}` };
    })]), { className: "moves" });
}

function downloads(job) {
  const tables = context.user.document?.paths?.["/loyalty/what-if/jobs/{job_id}/report.csv"]?.get?.parameters
    ?.find((p) => p.name === "table")?.schema?.enum || [];
  const file = (text, path, query, name) => h("button", { type: "button", class: "quiet",
    onclick: () => download(path, query, name) }, text);
  const jobPath = `loyalty/what-if/jobs/${segment(job.job_id)}`;
  return [
    file("The full report (HTML, plotly)", `${jobPath}/report.html`, {}, `what-if-${job.job_id}.html`),
    tables.map((t) => [" ", file(`${t}.csv`, `${jobPath}/report.csv`, { table: t }, `what-if-${job.job_id}-${t}.csv`)]),
  ];
}

/** Fetch a file with the user's token and hand it to the browser as a download. */
async function download(path, query, name) {
  const answer = await call("GET", path, { query, as: "text" });
  if (answer.status !== 200) {
    say($("#what-if-download"), "error", problem(answer));
    return;
  }
  const type = name.endsWith(".html") ? "text/html" : "text/csv";
  const link = h("a", { href: URL.createObjectURL(new Blob([answer.body], { type })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  say($("#what-if-download"), "ok", `${name} downloaded.`);
}
