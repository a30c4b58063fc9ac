// Charts, drawn by Chart.js (vendored: vendor/chart.umd.js, window.Chart). Chart geometry needs
// numbers, so the API's decimal strings are read with parseFloat for the bars and lines only;
// every figure a person reads (tooltips, the tables beside each chart) is the exact string.

import { h } from "./dom.js";
import { approx, decimal, when } from "./format.js";

const COLOURS = ["#2458a6", "#c2571a", "#2f855a", "#8a3ffc", "#b7791f", "#d53f8c", "#319795", "#4a5568"];
const drawn = new WeakMap();

function library() {
  if (!window.Chart) throw new Error("the charting library did not load");
  return window.Chart;
}

/** A canvas for a chart, described for screen readers (the figures are also in a table or in
 * the text beside it). */
export function canvas(label, { height = 220 } = {}) {
  const element = h("canvas", { role: "img", "aria-label": label });
  return h("div", { class: "chart", style: null, "data-height": height }, element);
}

function draw(holder, config) {
  const Chart = library();
  const element = holder.querySelector("canvas");
  drawn.get(element)?.destroy();
  holder.classList.add(`h${holder.dataset.height}`);
  const chart = new Chart(element, {
    ...config,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      ...config.options,
      plugins: { legend: { position: "bottom" }, ...(config.options?.plugins || {}) },
    },
  });
  drawn.set(element, chart);
  return chart;
}

/**
 * A player's level: how far they are toward the next level, and their last 30 days against what
 * the current level asks to be kept. `unit` is the basis's unit (a currency or "VIP points").
 */
export function progress(holder, lookup, unit) {
  const p = lookup.progress;
  const next = p.next_level;
  const rows = [];
  if (next) {
    rows.push({ label: `To ${next.name}`, done: p.reached, rest: next.still_needed,
                doneText: `reached ${decimal(p.reached)} ${unit}`,
                restText: `${decimal(next.still_needed)} ${unit} still needed (threshold ${decimal(next.threshold)})` });
  } else {
    rows.push({ label: "Top level", done: p.reached, rest: "0",
                doneText: `reached ${decimal(p.reached)} ${unit}`, restText: "no level above" });
  }
  const missing = Math.max(approx(p.retention_30d) - approx(p.rolling_30d), 0);
  rows.push({ label: `Keep ${lookup.level.name}`, done: p.rolling_30d, rest: String(missing),
              doneText: `${decimal(p.rolling_30d)} ${unit} in the last 30 days`,
              restText: `retention asks ${decimal(p.retention_30d)} ${unit}` });
  draw(holder, {
    type: "bar",
    data: {
      labels: rows.map((row) => row.label),
      datasets: [
        { label: "Reached", data: rows.map((row) => approx(row.done)), backgroundColor: COLOURS[0],
          exact: rows.map((row) => row.doneText) },
        { label: "Still needed", data: rows.map((row) => approx(row.rest)), backgroundColor: "#cbd5e0",
          exact: rows.map((row) => row.restText) },
      ],
    },
    options: {
      indexAxis: "y",
      scales: { x: { stacked: true, beginAtZero: true, ticks: { callback: (v) => decimal(String(v)) } },
                y: { stacked: true } },
      plugins: { tooltip: { callbacks: { label: (item) => item.dataset.exact[item.dataIndex] } } },
    },
  });
}

/** The points balance (available + held) after each line of the explanation, over time. */
export function balance(holder, days, zone) {
  const lines = days.flatMap((day) => day.lines).filter((line) => line.balance); // a level change moves nothing
  const points = lines.map((line) => ({ x: new Date(line.at).getTime(), y: approx(line.balance.total),
                                        exact: line.balance.total, text: line.text }));
  const span = points.length ? points[points.length - 1].x - points[0].x : 0;
  // within a day the time of day tells the points apart; over days, the date does
  const tick = (v) => (span < 86_400_000 ? when(new Date(v).toISOString(), zone).slice(11)
                                          : when(new Date(v).toISOString(), zone).slice(0, 10));
  draw(holder, {
    type: "line",
    data: { datasets: [{ label: "Balance (available + held)", data: points, borderColor: COLOURS[0],
                         backgroundColor: "rgba(36, 88, 166, 0.12)", fill: true, stepped: true,
                         pointRadius: points.length > 60 ? 0 : 2 }] },
    options: {
      parsing: false,
      scales: {
        x: { type: "linear", ticks: { maxTicksLimit: 6, callback: tick } },
        y: { beginAtZero: true, ticks: { callback: (v) => decimal(String(v)) } },
      },
      plugins: { tooltip: { callbacks: {
        title: (items) => when(new Date(items[0].raw.x).toISOString(), zone),
        label: (item) => `${decimal(item.raw.exact)} points`,
        afterLabel: (item) => item.raw.text,
      } } },
    },
  });
}

/** Bars of one figure per period, baseline against proposal (the what-if). */
export function compared(holder, labels, series, unit) {
  draw(holder, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((one, i) => ({
        label: one.label, data: one.values.map(approx), exact: one.values,
        backgroundColor: COLOURS[i % COLOURS.length],
      })),
    },
    options: {
      scales: { y: { beginAtZero: true, ticks: { callback: (v) => decimal(String(v)) } } },
      plugins: { tooltip: { callbacks: {
        label: (item) => `${item.dataset.label}: ${decimal(item.dataset.exact[item.dataIndex])} ${unit}`,
      } } },
    },
  });
}

/** Players per level at each period's end, stacked, for one run of the what-if. */
export function levels(holder, labels, levelNames, counts) {
  draw(holder, {
    type: "bar",
    data: {
      labels,
      datasets: levelNames.map((name, i) => ({
        label: name, data: counts.map((byLevel) => byLevel[name] || 0),
        backgroundColor: COLOURS[i % COLOURS.length],
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true,
                                                    ticks: { precision: 0 } } } },
  });
}
