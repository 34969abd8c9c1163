"""Secrets never leave their file: masking for URLs and a redaction step for every line we write.

The secrets are the database password (in DATABASE_URL or MIGRATE_DATABASE_URL,
or PGPASSWORD), the Schwab app secret, Supabase's service role key and
schwab-py's tokens. A secret can reach text in many spellings: as typed, as
libpq decodes it, percent-encoded, JSON- or repr-escaped; libpq even echoes
the raw URL token it could not parse ("invalid percent-encoded token"). The
`Redactor` replaces every such spelling with `***`; `log.py` runs every log
line through it, and the commands that print (migrate, health, the launcher)
run their messages through it too.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
#: Shorter values are not redacted: masking every "ab" in a log would destroy it, not protect it.
MIN_SECRET = 3
SECRET_VARIABLES = ("SCHWAB_APP_SECRET", "SUPABASE_SERVICE_ROLE_KEY", "PGPASSWORD", "STATUS_PAGE_TOKEN")
URL_VARIABLES = ("DATABASE_URL", "MIGRATE_DATABASE_URL")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&]*)", re.IGNORECASE)


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where the password of a `scheme://user:password@host…` URL sits, as typed (it may hold '@' or '/')."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    query = url.find("?", start)
    at = url.rfind("@", start, len(url) if query < 0 else query)
    colon = url.find(":", start, at)
    if at < 0 or colon < 0:
        return None
    return colon + 1, at


def passwords(url: str) -> list[str]:
    """Every password in a libpq URL or key=value string: as typed, and as libpq decodes it."""
    found: list[str] = []
    span = _userinfo(url)
    if span:
        typed = url[span[0]:span[1]]
        found += [typed, unquote(typed)]
        if "@" in typed:  # libpq splits at the first '@' and may echo what it took for the password
            found.append(typed.split("@")[0])
    for match in _QUERY_PASSWORD.finditer(url):
        found += [match.group(2), unquote(match.group(2))]
    if "://" not in url:
        for match in _KEYWORD_PASSWORD.finditer(url):
            value = match.group(2)
            found += [value, value[1:-1].replace("\\'", "'").replace("\\\\", "\\") if value.startswith("'") else value]
    return [password for password in found if password]


def mask_url(url: str) -> str:
    """The URL with its password shown as ***: safe to print, still says which database."""
    span = _userinfo(url)
    if span:
        url = url[:span[0]] + MASK + url[span[1]:]
    url = _QUERY_PASSWORD.sub(lambda match: match.group(1) + MASK, url)
    if "://" not in url:
        url = _KEYWORD_PASSWORD.sub(lambda match: match.group(1) + MASK, url)
    return url


def spellings(secret: str) -> set[str]:
    """The ways `secret` can appear in a log line, an error message or a URL."""
    plain = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]}
    escaped = {json.dumps(spelling, ensure_ascii=ascii)[1:-1] for spelling in plain for ascii in (True, False)}
    return plain | escaped


class Redactor:
    """Replaces every known secret, in every spelling, with ***. Secrets can be added at any time
    (a refreshed token) from any thread."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        fresh = {secret for secret in secrets if secret and len(secret) >= MIN_SECRET} - self._secrets
        if not fresh:
            return
        with self._lock:
            self._secrets |= fresh
            every = set().union(*(spellings(secret) for secret in self._secrets))
            ordered = sorted((s for s in every if len(s) >= MIN_SECRET), key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """The secrets a process with this environment knows of."""
    found = [env.get(name, "").strip() for name in SECRET_VARIABLES]
    for name in URL_VARIABLES:
        found += passwords(env.get(name, "").strip())
    return [secret for secret in found if secret]


#: The process's one redactor, filled from its environment; schwab_client adds tokens as it loads them.
REDACT = Redactor(secrets_in(os.environ))
