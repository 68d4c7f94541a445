"""A PostgreSQL DSN's passwords, kept out of everything durable shows or logs.

A DSN may carry its password in a URL's user info or query, or as a libpq key=value; an
error from the driver may quote the DSN whole. Every message and repr goes through here.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

# `password=...` in a URL's query or a libpq key=value string (quoted or not).
_PASSWORD_PARAMETER = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def _secrets_of(dsn: str) -> list[str]:
    """Every password a DSN holds: a URL's user info or query, a key=value string."""
    found = [match.group(2).strip("'") for match in _PASSWORD_PARAMETER.finditer(dsn)]
    with contextlib.suppress(ValueError):
        parts = urlsplit(dsn)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [unquote(value) for value in parse_qs(parts.query).get("password", [])]
    return [secret for secret in found if secret]


def redacted(text: str, dsn: str) -> str:
    """`text` (a DSN, or an error that may quote it) with the DSN's passwords as ***."""
    parts = urlsplit(dsn) if "://" in dsn else None
    if parts is not None and parts.password is not None and text.startswith(dsn):
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        text = urlunsplit(parts._replace(netloc=netloc)) + text[len(dsn) :]
    text = _PASSWORD_PARAMETER.sub(r"\1***", text)
    for secret in sorted(_secrets_of(dsn), key=len, reverse=True):
        if len(secret) >= 4:  # (a shorter one would mangle the message more than it hides)
            text = text.replace(secret, "***")
    return text


def without_password(dsn: str) -> str:
    """The DSN to show: its passwords as ***."""
    return redacted(dsn, dsn)
