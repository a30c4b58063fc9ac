"""`programmes import`: a vip_levels export becomes a file `programmes load` accepts; a bad one
exits 2 with one line naming the row and column, and writes nothing."""

from decimal import Decimal
from pathlib import Path

import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.domain.programme import load_programme

TABLE = """\
id,brand_id,company_id,level_name,level_rank,required_wagering,points_required,\
cashback_percentage,cashback_max_amount,vip_host,weekly_bonus_enabled
7,star-sweeps,star-holdings,Bronze,1,0,0,0,0,f,f
8,star-sweeps,star-holdings,Silver,2,500,500,1.5,,t,t
9,moon-sweeps,star-holdings,Bronze,1,0,0,0,0,f,f
"""


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """TABLE in a file, as `psql \\copy ... csv header` writes it."""
    path = tmp_path / "vip_levels.csv"
    path.write_text(TABLE)
    return path


def test_an_export_is_written_as_a_programme_file_that_loads(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "star.json"
    argv = ["programmes", "import", str(export), "--brand", "star-sweeps", "--out", str(out)]
    assert main([*argv, "--version", "2", "--effective-from", "2027-01-01T00:00:00Z"]) == 0
    programme = load_programme(out)
    assert (programme.brand_id, programme.company_id) == ("star-sweeps", "star-holdings")
    assert [level.name for level in programme.levels] == ["Bronze", "Silver"]
    assert programme.levels[1].cashback_daily_cap is None
    assert programme.levels[1].cashback_percent == Decimal("1.5")
    assert programme.levels[1].perks.vip_host
    assert programme.version == 2
    err = capsys.readouterr().err.splitlines()
    note = "weekly_bonus_enabled: ignored, deprecated (no longer used); 1 of 2 row(s) hold"
    assert f"note: {note} a value other than false" in err
    summary = "imported 2 levels of brand star-sweeps as 'Lucky Sweeps VIP' version 2"
    assert err[-1].startswith(summary)


def test_without_out_the_programme_goes_to_stdout(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["programmes", "import", str(export), "--brand", "moon-sweeps"]) == 0
    written = tmp_path / "moon.json"
    written.write_text(capsys.readouterr().out)
    assert load_programme(written).brand_id == "moon-sweeps"


def test_a_bad_table_exits_2_with_one_line_naming_row_and_column(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "star.json"
    export.write_text(TABLE.replace(",500,500,", ",500,abc,"))
    argv = ["programmes", "import", str(export), "--brand", "star-sweeps", "--out", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "not imported: row 2 (level 'Silver', rank 2), column points_required: "
        "'abc' is not a number\n"
    )
    assert not out.exists()


def test_an_unknown_brand_or_a_missing_file_exits_2(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["programmes", "import", str(export), "--brand", "sun-sweeps"]) == 2
    assert "no rows of brand 'sun-sweeps'" in capsys.readouterr().err
    assert main(["programmes", "import", str(tmp_path / "none.csv"), "--brand", "x"]) == 2
    assert capsys.readouterr().err.startswith("not imported: [Errno 2]")
