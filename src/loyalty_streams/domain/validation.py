"""Validation errors in words, for dead letters and API answers alike; JSON with unique keys."""

import json
from typing import Any

from pydantic import ValidationError


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s `object_pairs_hook`: the object; raises `ValueError` naming a key that
    appears twice (JSON parsers otherwise keep the last, so a second `"points"` would win)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice")
        seen.add(key)
    return dict(pairs)


def check_unique_keys(text: str | bytes) -> None:
    """Raises `ValueError` when `text` is not JSON or names a key twice in any object."""
    json.loads(text, object_pairs_hook=unique_keys)


def validation_summary(error: ValidationError) -> str:
    """The validation errors on one line: where, and what was wrong."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)
