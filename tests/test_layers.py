"""The layer rules of docs/architecture.md, checked on the source: which folder may import which.

A folder may import only the folders listed for it (and itself, and `settings`); the domain
imports nothing of the package at all, so every business rule can be read and tested alone.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "loyalty_streams"

MAY_IMPORT: dict[str, set[str]] = {
    "domain": set(),
    "kafka": {"domain", "settings"},
    "state": {"domain", "kafka", "settings"},
    "runtime": {"domain", "state", "kafka", "settings"},
    "reports": {"domain", "kafka", "settings"},
    "imports": {"domain", "settings"},
    "archive": {"domain", "kafka", "settings"},
    "services": {"domain", "state", "kafka", "runtime", "archive", "settings"},
    "http": {"domain", "state", "kafka", "runtime", "reports", "whatif", "settings"},
    "devtools": {"domain", "state", "kafka", "runtime", "http", "settings"},
    "whatif": {"domain", "kafka", "runtime", "archive", "settings"},
    "cli": {
        "domain",
        "state",
        "kafka",
        "runtime",
        "http",
        "services",
        "archive",
        "reports",
        "imports",
        "devtools",
        "whatif",
        "settings",
    },
}
"""Each folder, and the folders below it that it may use."""


def imported_folders(path: Path) -> set[str]:
    """The package's top-level folders (or modules) a module imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "loyalty_streams" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_folder_has_a_rule() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert folders == set(MAY_IMPORT)


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_a_folder_imports_only_the_folders_below_it(folder: str) -> None:
    allowed = MAY_IMPORT[folder] | {folder}
    broken = {
        str(path.relative_to(PACKAGE)): sorted(imported_folders(path) - allowed)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        if imported_folders(path) - allowed
    }
    assert broken == {}
