"""Validation errors in words, for dead letters and API answers alike."""

from pydantic import ValidationError


def validation_summary(error: ValidationError) -> str:
    """The validation errors on one line: where, and what was wrong."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)
