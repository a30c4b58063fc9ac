"""The report written: the terminal table, the finance CSVs and JSON (exact decimal strings),
and a self-contained HTML page with the plotly charts."""

import csv
import json
from pathlib import Path

from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from loyalty_streams.whatif.render import (
    CSV_FILES,
    render_text,
    write_csv,
    write_html,
    write_json,
)
from tests.whatif.test_silver_threshold import run


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_the_csv_files_hold_the_figures_as_exact_decimals(tmp_path: Path) -> None:
    written = write_csv(run(None), tmp_path / "out")
    assert [path.name for path in written] == list(CSV_FILES)

    periods = rows(tmp_path / "out" / "periods.csv")
    assert [(row["period"], row["run"]) for row in periods[:2]] == [
        ("2026-11-02", "baseline"),
        ("2026-11-02", "proposal"),
    ]
    total = {row["run"]: row for row in periods if row["period"] == "total"}
    assert total["baseline"]["points_issued"] == "108999.99"
    assert total["proposal"]["points_issued"] == "109099.99"
    assert total["proposal"]["liability_EUR"] == "1091.00"
    assert total["proposal"]["cashback_EUR"] == "909.99"
    assert total["baseline"]["cashback_caps"] == "2"
    assert periods[0]["start"] == "2026-11-01T23:00:00+00:00"

    levels = rows(tmp_path / "out" / "levels.csv")
    silver = [row for row in levels if row["period"] == "2026-11-04" and row["level"] == "Silver"]
    assert silver == [
        {
            "period": "2026-11-04",
            "end": "2026-11-04T23:00:00+00:00",
            "level": "Silver",
            "baseline": "2",
            "proposal": "5",
            "change": "3",
        }
    ]
    moves = rows(tmp_path / "out" / "moves.csv")
    assert {"baseline_level": "Bronze", "proposal_level": "Silver", "players": "3"} in moves
    players = rows(tmp_path / "out" / "players.csv")
    assert [row["player_id"] for row in players] == ["b", "c", "e"]
    assert players[0]["points_change"] == "100.00"
    assert not list((tmp_path / "out").glob("*.partial"))


def test_the_json_holds_the_whole_report(tmp_path: Path) -> None:
    written = write_json(run(None), tmp_path / "report.json")
    report = json.loads(written.read_text(encoding="utf-8"))
    assert report["brand_id"] == "aurora-casino"
    assert report["total"]["proposal"]["players"] == {
        "Bronze": 2,
        "Silver": 5,
        "Gold": 1,
        "Platinum": 0,
    }
    assert report["total"]["baseline"]["liability"] == {"EUR": "1090.00"}
    assert report["periods"][1]["proposal"]["cashback"] == {"EUR": "909.99"}
    assert report["moves"][1] == {"baseline": "Bronze", "proposal": "Silver", "players": 3}
    assert report["affected"][0]["player_id"] == "b"
    assert report["stats"]["events"] == 11


def test_the_html_page_draws_the_charts_with_plotly_inline(tmp_path: Path) -> None:
    page = write_html(run(None), tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert get_plotlyjs()[:2000] in page  # plotly.js itself, not a link to it
    assert "<script src" not in page.replace(" ", "")
    for chart in ("levels", "moves", "points", "cashback", "tier-rewards"):
        assert f'id="chart-{chart}"' in page
    assert page.count("Plotly.newPlot(") == 5
    assert '"type":"heatmap"' in page
    assert "Players most affected" in page


def test_the_terminal_table_names_the_figures() -> None:
    text = render_text(run(None))
    assert "by day in Europe/Malta" in text
    assert "2026-11-02  108,999.99  109,099.99  +100.00" in text
    assert "Not replayed: commands" in text
    assert "Bronze                    2       3     0         0" in text
