"""Marker and folder agree: every test under `tests/integration/` is marked `integration` (it needs
a broker, started by its fixtures), and no test elsewhere may be, so `make unit` runs exactly the
tests that need none."""

from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        inside = INTEGRATION in Path(item.fspath).resolve().parents
        if inside:
            item.add_marker(pytest.mark.integration)
        elif item.get_closest_marker("integration") is not None:
            raise pytest.UsageError(
                f"{item.nodeid} is marked integration outside tests/integration/"
            )
