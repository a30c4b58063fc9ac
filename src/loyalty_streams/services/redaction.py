"""URLs in logs, errors and dead letters without their secrets (user info, query, fragment).

A webhook or Redis URL may carry a password (`redis://:pw@host`), a token in its query
(`https://pms.example/hook?token=abc`) or both; whatever shows such a URL, or an error raised
while using it, shows it through these two functions.
"""

from urllib.parse import unquote, urlsplit

MASK = "***"
UNPARSEABLE = "<a URL that does not parse>"


def _secret_parts(url: str) -> list[str]:
    """The parts of `url` that may be secret, raw and percent-decoded, longest first.

    Raises ValueError if `url` does not parse.
    """
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    raw = [userinfo, user, password, parts.query, parts.fragment]
    found = {text for part in raw if part for text in (part, unquote(part))}
    return sorted(found, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """`text` (a message, an error) with every secret part of `url` in it replaced by `***`.

    If `url` does not parse, any occurrence of the whole `url` is replaced instead.
    """
    try:
        secrets = _secret_parts(url)
    except ValueError:
        return text.replace(url, UNPARSEABLE) if url else text
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def redact_url(url: str) -> str:
    """`url` fit for a log line: user info, query and fragment each replaced by `***`.

    e.g. `https://user:pass@pms.example/hook?token=abc` -> `https://***@pms.example/hook?***`;
    a URL that does not parse is shown as `<a URL that does not parse>`.
    """
    return redact(url, url)
