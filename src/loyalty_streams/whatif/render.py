"""A what-if report as a terminal table, CSV files and JSON for finance, and an HTML page with
plotly charts.

Amounts are written as the report holds them (exact decimal strings in CSV and JSON); floats
appear only inside the HTML charts, converted at the last step for drawing. The HTML page is
self-contained: plotly.js is inlined, so it opens without a network.
"""

import csv
import html
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go  # type: ignore[import-untyped]  # plotly ships no types
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from loyalty_streams.whatif.report import AffectedPlayer, PeriodFigures, Report, RunPeriod

RUN_NAMES = ("baseline", "proposal")

CSV_FILES = ("periods.csv", "levels.csv", "moves.csv", "players.csv")
"""What `write_csv` writes into its directory."""


# -- terminal ----------------------------------------------------------------------------------


def render_text(report: Report) -> str:
    """The report as plain-text tables for a terminal."""
    stats = report.stats
    out = [
        f"What-if of {report.brand_id}: proposal {report.proposed_name!r} "
        f"version {report.proposed_version} governs "
        + (
            f"from {_local(report, report.proposal_from)}"
            if report.proposal_from
            else "all of the history"
        )
        + f"; baseline: the versions in effect ({_versions(report.baseline_versions)})",
        f"Range {_local(report, report.since)} to {_local(report, report.until)} (excluded), "
        f"by {report.by.value} in {report.timezone}",
        f"Replayed {stats.events:,} events of {stats.players:,} players ({stats.folds:,} folds "
        f"over both runs) in {stats.seconds:.2f} s: {stats.events_per_second:,.0f} events/s "
        f"(each event counted once, both runs), {stats.processes} process(es)",
        "Not replayed: commands (redemptions, adjustments, forced levels, gifts, claims); "
        f"skipped: {stats.duplicates:,} published again, {stats.unprogrammed:,} without a "
        f"programme, {stats.misrouted:,} not on their key's partition; refused by the rules: "
        f"{stats.rejected[0]:,} baseline, {stats.rejected[1]:,} proposal; failed: "
        f"{stats.failed[0]:,} / {stats.failed[1]:,}",
    ]
    out.extend(f"  failure: {failure}" for failure in stats.failures)
    rows = [*report.periods, report.total]
    liability = _currencies(row.liability for period in rows for row in _runs(period))
    out += ["", "Points issued (accrued less reversed) and their liability at the redemption rate"]
    header = ["period", "baseline", "proposal", "change"]
    for currency in liability:
        header += [f"liability {currency} B", "P", "change"]
    table = []
    for period in rows:
        b, p = period.baseline, period.proposal
        line = [period.label, *_three(b.points_issued, p.points_issued)]
        for currency in liability:
            line += _three(b.liability.get(currency, _ZERO), p.liability.get(currency, _ZERO))
        table.append(line)
    out += _table(header, table)
    cashback = _currencies(row.cashback for period in rows for row in _runs(period))
    out += ["", "Cashback paid (caps hit) and tier-up rewards"]
    header = ["period"]
    for currency in cashback:
        header += [f"cashback {currency} B", "P", "change"]
    header += ["caps B", "caps P", "tier rewards B", "P", "GC B", "GC P"]
    table = []
    for period in rows:
        b, p = period.baseline, period.proposal
        line = [period.label]
        for currency in cashback:
            line += _three(b.cashback.get(currency, _ZERO), p.cashback.get(currency, _ZERO))
        line += [_n(b.cashback_caps), _n(p.cashback_caps), _n(b.tier_rewards)]
        line += [_n(p.tier_rewards), _n(b.tier_reward_gc), _n(p.tier_reward_gc)]
        table.append(line)
    out += _table(header, table)
    out += ["", "Players per level at each period's end (baseline / proposal)"]
    table = [
        [period.label]
        + [
            f"{period.baseline.players.get(level, 0):,} / {period.proposal.players.get(level, 0):,}"
            for level in report.levels
        ]
        for period in report.periods
    ]
    out += _table(["period", *report.levels], table)
    out += [
        "",
        f"Level at {_local(report, report.until)}: baseline (rows) against proposal (columns)",
    ]
    matrix = _matrix(report)
    out += _table(
        ["baseline \\ proposal", *report.levels],
        [[level, *(_n(n) for n in matrix[level])] for level in report.levels],
    )
    out += ["", "Players most affected (difference of level, then of points issued)"]
    out += _table(AFFECTED_HEADER, [_affected_cells(player) for player in report.affected])
    return "\n".join(out) + "\n"


_ZERO = Decimal("0.00")

AFFECTED_HEADER = ("player", "baseline", "proposal", "levels", "points B", "points P", "change")


def _affected_cells(player: AffectedPlayer) -> list[str]:
    return [
        player.player_id,
        player.baseline_level,
        player.proposal_level,
        f"{player.level_change:+d}",
        _n(player.baseline_points),
        _n(player.proposal_points),
        _signed(player.points_change),
    ]


def _local(report: Report, moment: datetime) -> str:
    """An instant in the brand's zone, with its offset."""
    return moment.astimezone(ZoneInfo(report.timezone)).isoformat()


def _runs(period: PeriodFigures) -> tuple[RunPeriod, RunPeriod]:
    return period.baseline, period.proposal


def _versions(versions: Sequence[int]) -> str:
    return ", ".join(str(version) for version in versions) or "none"


def _currencies(amounts: Iterable[Mapping[str, Decimal]]) -> list[str]:
    return sorted({currency for by_currency in amounts for currency in by_currency})


def _three(baseline: Decimal, proposal: Decimal) -> list[str]:
    return [_n(baseline), _n(proposal), _signed(proposal - baseline)]


def _n(number: Decimal | int) -> str:
    return f"{number:,}"


def _signed(number: Decimal | int) -> str:
    return f"{number:+,}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    if not rows:
        return [line(header), "(none)"]
    return [line(header), *(line(row) for row in rows)]


def _matrix(report: Report) -> dict[str, list[int]]:
    """Players by baseline level (rows) and proposal level (columns, `report.levels`)."""
    index = {level: i for i, level in enumerate(report.levels)}
    matrix = {level: [0] * len(report.levels) for level in report.levels}
    for move in report.moves:
        matrix[move.baseline][index[move.proposal]] += move.players
    return matrix


# -- JSON and CSV ------------------------------------------------------------------------------


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as JSON values: amounts as decimal strings, times as RFC 3339 (UTC)."""
    return {
        "brand_id": report.brand_id,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "by": report.by.value,
        "timezone": report.timezone,
        "baseline_versions": list(report.baseline_versions),
        "proposed_version": report.proposed_version,
        "proposed_name": report.proposed_name,
        "proposal_from": None if report.proposal_from is None else report.proposal_from.isoformat(),
        "levels": list(report.levels),
        "periods": [_period_json(period) for period in report.periods],
        "total": _period_json(report.total),
        "moves": [
            {"baseline": move.baseline, "proposal": move.proposal, "players": move.players}
            for move in report.moves
        ],
        "affected": [
            {
                "player_id": player.player_id,
                "baseline_level": player.baseline_level,
                "proposal_level": player.proposal_level,
                "level_change": player.level_change,
                "baseline_points": str(player.baseline_points),
                "proposal_points": str(player.proposal_points),
                "points_change": str(player.points_change),
            }
            for player in report.affected
        ],
        "stats": {
            "events": report.stats.events,
            "folds": report.stats.folds,
            "players": report.stats.players,
            "processes": report.stats.processes,
            "seconds": round(report.stats.seconds, 3),
            "events_per_second": round(report.stats.events_per_second),
            "duplicates": report.stats.duplicates,
            "unprogrammed": report.stats.unprogrammed,
            "misrouted": report.stats.misrouted,
            "rejected": dict(zip(RUN_NAMES, report.stats.rejected, strict=True)),
            "failed": dict(zip(RUN_NAMES, report.stats.failed, strict=True)),
            "failures": list(report.stats.failures),
        },
    }


def _period_json(period: PeriodFigures) -> dict[str, Any]:
    return {
        "period": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        **{name: _run_json(run) for name, run in zip(RUN_NAMES, _runs(period), strict=True)},
    }


def _run_json(run: RunPeriod) -> dict[str, Any]:
    return {
        "players": dict(run.players),
        "points_accrued": str(run.points_accrued),
        "points_reversed": str(run.points_reversed),
        "points_issued": str(run.points_issued),
        "liability": {currency: str(amount) for currency, amount in run.liability.items()},
        "cashback": {currency: str(amount) for currency, amount in run.cashback.items()},
        "cashback_caps": run.cashback_caps,
        "tier_rewards": run.tier_rewards,
        "tier_reward_gc": str(run.tier_reward_gc),
        "level_ups": run.level_ups,
        "level_downs": run.level_downs,
    }


def write_json(report: Report, path: Path) -> Path:
    """Write `report_json` to `path` (complete or not at all); gives the path."""
    _write(path, json.dumps(report_json(report), indent=2) + "\n")
    return path


def csv_tables(report: Report) -> dict[str, str]:
    """The report's CSV files by name (`CSV_FILES`): `periods.csv`, a row per period (and the
    total) and run; `levels.csv`, players per level at each period's end in both runs;
    `moves.csv`, players by level at the end in each run; `players.csv`, the most affected."""
    rows = [*report.periods, report.total]
    liability = _currencies(run.liability for period in rows for run in _runs(period))
    cashback = _currencies(run.cashback for period in rows for run in _runs(period))
    periods: list[list[Any]] = [
        [
            "period",
            "start",
            "end",
            "run",
            "points_accrued",
            "points_reversed",
            "points_issued",
            *(f"liability_{currency}" for currency in liability),
            *(f"cashback_{currency}" for currency in cashback),
            "cashback_caps",
            "tier_rewards",
            "tier_reward_gc",
            "level_ups",
            "level_downs",
        ]
    ]
    for period in rows:
        for name, run in zip(RUN_NAMES, _runs(period), strict=True):
            periods.append(
                [
                    period.label,
                    period.start.isoformat(),
                    period.end.isoformat(),
                    name,
                    run.points_accrued,
                    run.points_reversed,
                    run.points_issued,
                    *(run.liability.get(currency, _ZERO) for currency in liability),
                    *(run.cashback.get(currency, _ZERO) for currency in cashback),
                    run.cashback_caps,
                    run.tier_rewards,
                    run.tier_reward_gc,
                    run.level_ups,
                    run.level_downs,
                ]
            )
    levels: list[list[Any]] = [["period", "end", "level", "baseline", "proposal", "change"]]
    for period in report.periods:
        for level in report.levels:
            before = period.baseline.players.get(level, 0)
            after = period.proposal.players.get(level, 0)
            end = period.end.isoformat()
            levels.append([period.label, end, level, before, after, after - before])
    moves: list[list[Any]] = [["baseline_level", "proposal_level", "players"]]
    moves += [[move.baseline, move.proposal, move.players] for move in report.moves]
    players: list[list[Any]] = [
        [
            "player_id",
            "baseline_level",
            "proposal_level",
            "level_change",
            "baseline_points",
            "proposal_points",
            "points_change",
        ]
    ]
    players += [
        [
            player.player_id,
            player.baseline_level,
            player.proposal_level,
            player.level_change,
            player.baseline_points,
            player.proposal_points,
            player.points_change,
        ]
        for player in report.affected
    ]
    return dict(zip(CSV_FILES, map(_csv, (periods, levels, moves, players)), strict=True))


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([str(cell) for cell in row])
    return buffer.getvalue()


def write_csv(report: Report, directory: Path) -> list[Path]:
    """Write `csv_tables` into `directory` (made if missing); gives the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in csv_tables(report).items():
        written.append(_write(directory / name, text))
    return written


def _write(path: Path, text: str) -> Path:
    """Write a file so it appears complete or not at all."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


# -- HTML --------------------------------------------------------------------------------------


def render_html(report: Report) -> str:
    """A self-contained HTML page: the summary, charts drawn by plotly (players per level over
    the periods in both runs, the move matrix as a heatmap, points issued, cashback and tier-up
    rewards per period) and the tables of the most affected players; plotly.js inline."""
    charts = [
        ("levels", _levels_figure(report)),
        ("moves", _moves_figure(report)),
        ("points", _per_period_figure(report, "Points issued", lambda run: run.points_issued)),
        ("cashback", _cashback_figure(report)),
        (
            "tier-rewards",
            _per_period_figure(report, "Tier-up rewards paid (GC)", lambda r: r.tier_reward_gc),
        ),
    ]
    divs = "\n".join(
        '<section class="chart">'
        + figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{name}",
            config={"displaylogo": False},
        )
        + "</section>"
        for name, figure in charts
    )
    title = html.escape(
        f"What-if: {report.brand_id}, {report.proposed_name} v{report.proposed_version}"
    )
    summary = html.escape(render_text(report).split("\n\n", 1)[0])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
section.chart {{ min-height: 480px; margin-bottom: 2em; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>{title}</h1>
<pre>{summary}</pre>
{_totals_table(report)}
{divs}
<h2>Players most affected</h2>
{_affected_table(report)}
</body>
</html>
"""


def write_html(report: Report, path: Path) -> Path:
    """Write `render_html` to `path` (complete or not at all); gives the path."""
    _write(path, render_html(report))
    return path


def _float(number: Decimal | int) -> float:
    """For drawing only: never for a figure written anywhere."""
    return float(number)


def _labels(report: Report) -> list[str]:
    return [period.label for period in report.periods]


def _levels_figure(report: Report) -> go.Figure:
    """One small chart per level, each on its own scale: the lowest level holds most players."""
    columns = 2
    rows = max(1, -(-len(report.levels) // columns))
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=report.levels)
    colours = {"baseline": "#636efa", "proposal": "#ef553b"}
    for index, level in enumerate(report.levels):
        for name, dash in (("baseline", "solid"), ("proposal", "dash")):
            figure.add_trace(
                go.Scatter(
                    x=_labels(report),
                    y=[getattr(period, name).players.get(level, 0) for period in report.periods],
                    name=name,
                    legendgroup=name,
                    showlegend=index == 0,
                    mode="lines+markers",
                    line={"color": colours[name], "dash": dash},
                    hovertemplate=f"{html.escape(level)} ({name}): %{{y}} players<extra></extra>",
                ),
                row=index // columns + 1,
                col=index % columns + 1,
            )
    figure.update_layout(
        title=f"Players per level at the end of each {report.by.value} "
        "(solid: baseline, dashed: proposal)",
        height=max(480, 260 * rows),
    )
    return figure


def _moves_figure(report: Report) -> go.Figure:
    matrix = _matrix(report)
    figure = go.Figure(
        go.Heatmap(
            z=[matrix[level] for level in report.levels],
            x=list(report.levels),
            y=list(report.levels),
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate="baseline %{y}, proposal %{x}: %{z} players<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Level at {_local(report, report.until)}: baseline (rows), proposal (columns)",
        xaxis_title="proposal",
        yaxis_title="baseline",
        yaxis={"autorange": "reversed"},
    )
    return figure


def _per_period_figure(
    report: Report, title: str, figure_of: Callable[[RunPeriod], Decimal | int]
) -> go.Figure:
    figure = go.Figure(
        [
            go.Bar(
                x=_labels(report),
                y=[_float(figure_of(getattr(period, name))) for period in report.periods],
                name=name,
            )
            for name in RUN_NAMES
        ]
    )
    figure.update_layout(title=f"{title} per {report.by.value}", barmode="group")
    return figure


def _cashback_figure(report: Report) -> go.Figure:
    currencies = _currencies(run.cashback for period in report.periods for run in _runs(period))
    figure = go.Figure(
        [
            go.Bar(
                x=_labels(report),
                y=[
                    _float(getattr(period, name).cashback.get(currency, _ZERO))
                    for period in report.periods
                ],
                text=[_caps(getattr(period, name).cashback_caps) for period in report.periods],
                name=f"{name} {currency}",
            )
            for currency in currencies
            for name in RUN_NAMES
        ]
    )
    figure.update_layout(title=f"Cashback paid per {report.by.value}", barmode="group")
    return figure


def _caps(caps: int) -> str:
    """A bar's label: the daily caps hit, if any."""
    return f"{caps} capped" if caps else ""


def _totals_table(report: Report) -> str:
    b, p = report.total.baseline, report.total.proposal
    rows: list[tuple[str, Decimal | int, Decimal | int]] = [
        ("points issued", b.points_issued, p.points_issued),
        *(
            (f"liability {c}", b.liability.get(c, _ZERO), p.liability.get(c, _ZERO))
            for c in _currencies([b.liability, p.liability])
        ),
        *(
            (f"cashback {c}", b.cashback.get(c, _ZERO), p.cashback.get(c, _ZERO))
            for c in _currencies([b.cashback, p.cashback])
        ),
        ("cashback caps hit", b.cashback_caps, p.cashback_caps),
        ("tier-up rewards", b.tier_rewards, p.tier_rewards),
        ("tier-up rewards GC", b.tier_reward_gc, p.tier_reward_gc),
        ("level ups", b.level_ups, p.level_ups),
        ("level downs", b.level_downs, p.level_downs),
        *(
            (f"players at {level}", b.players.get(level, 0), p.players.get(level, 0))
            for level in report.levels
        ),
    ]
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_n(before)}</td><td>{_n(after)}</td>"
        f"<td>{_signed(after - before)}</td></tr>"
        for name, before, after in rows
    )
    return (
        "<h2>Over the range</h2><table><tr><th></th><th>baseline</th><th>proposal</th>"
        f"<th>change</th></tr>{body}</table>"
    )


def _affected_table(report: Report) -> str:
    if not report.affected:
        return "<p>No player's level or points differ.</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in AFFECTED_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in _affected_cells(p)) + "</tr>"
        for p in report.affected
    )
    return f"<table><tr>{head}</tr>{body}</table>"
