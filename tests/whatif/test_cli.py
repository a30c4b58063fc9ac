"""`loyalty-streams what-if` on an in-memory cluster: the table printed, the files written, and
bad inputs refused with exit 2 before anything is read."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.settings import get_settings
from tests.whatif.support import aurora, by_hand, changed_levels
from tests.whatif.test_history import cluster_with


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings for an in-memory cluster whose archive is under `tmp_path/archive`."""
    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", "memory:0")
    monkeypatch.setenv("LOYALTY_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    yield tmp_path / "archive"
    get_settings.cache_clear()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_report_is_printed_and_written(
    settings_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = cluster_with(by_hand(), settings_env)
    proposal = changed_levels(aurora(), 2, Silver="5000")
    programme = write(tmp_path / "proposed.json", proposal.model_dump_json())
    argv = ["what-if", "--brand", "aurora-casino", "--programme", str(programme)]
    argv += ["--from", "2026-11-02", "--to", "2026-11-05", "--processes", "2"]
    argv += ["--csv", str(tmp_path / "csv"), "--json", str(tmp_path / "r.json")]
    argv += ["--html", str(tmp_path / "r.html")]

    assert main(argv, clients=cluster) == 0

    out, err = capsys.readouterr()
    assert "2026-11-02  108,999.99  109,099.99  +100.00" in out
    assert "Bronze                    2       3     0         0" in out
    assert "2 process(es)" in out
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "levels.csv",
        "moves.csv",
        "periods.csv",
        "players.csv",
    ]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["since"] == "2026-11-01T23:00:00+00:00"  # the brand's midnight
    assert report["total"]["proposal"]["cashback"] == {"EUR": "909.99"}
    assert "Plotly.newPlot(" in (tmp_path / "r.html").read_text()
    assert f"wrote {tmp_path / 'r.html'}" in err


def test_a_baseline_from_files_and_a_month_grouping(
    settings_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = cluster_with(by_hand(), settings_env)  # its loyalty.programmes is not read
    baseline = write(tmp_path / "v1.json", aurora().model_dump_json())
    proposal = write(
        tmp_path / "p.json", changed_levels(aurora(), 2, Silver="5000").model_dump_json()
    )
    argv = ["what-if", "--brand", "aurora-casino", "--programme", str(proposal)]
    argv += ["--baseline", str(baseline), "--to", "2026-12-01", "--by", "month"]
    assert main([*argv, "--processes", "1"], clients=cluster) == 0
    out = capsys.readouterr().out
    assert "2026-11  108,999.99  109,099.99  +100.00" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"brand_id": "lucky-sweeps"}, "the proposal is for 'lucky-sweeps'"),
        ({"levels": []}, "levels"),
    ],
)
def test_a_bad_proposal_is_refused_with_exit_2(
    settings_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, object],
    message: str,
) -> None:
    cluster = cluster_with(by_hand(), settings_env)
    document = json.loads(aurora().model_dump_json()) | change
    programme = write(tmp_path / "bad.json", json.dumps(document))
    argv = ["what-if", "--brand", "aurora-casino", "--programme", str(programme)]
    assert main([*argv, "--processes", "1"], clients=cluster) == 2
    assert message in capsys.readouterr().err


def test_dates_out_of_order_are_refused_with_exit_2(
    settings_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = cluster_with(by_hand(), settings_env)
    programme = write(tmp_path / "p.json", aurora().model_dump_json())
    argv = ["what-if", "--brand", "aurora-casino", "--programme", str(programme)]
    argv += ["--from", "2026-11-05", "--to", "2026-11-02", "--processes", "1"]
    assert main(argv, clients=cluster) == 2
    assert "must be before" in capsys.readouterr().err
