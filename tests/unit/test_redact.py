"""Secrets never leave their file: URL masking and the redaction every log line passes."""

from __future__ import annotations

import json
import logging
import sys
from urllib.parse import quote

import pytest

from common.log import JsonFormatter
from common.redact import REDACT, Redactor, mask_url, passwords, secrets_in

PASSWORD = "p%a#s$s@w'o\"r d"


@pytest.mark.parametrize("url, masked", [
    ("postgresql://u:secret@db.example:5432/postgres?sslmode=require",
     "postgresql://u:***@db.example:5432/postgres?sslmode=require"),
    (f"postgresql://u:{PASSWORD}@db.example/postgres", "postgresql://u:***@db.example/postgres"),
    ("postgresql://u@db.example/postgres?password=secret&sslmode=require",
     "postgresql://u@db.example/postgres?password=***&sslmode=require"),
    ("host=db.example password='sec ret' user=u", "host=db.example password=*** user=u"),
    ("postgresql://postgres@/streaming?host=/srv/var/pg/run", "postgresql://postgres@/streaming?host=/srv/var/pg/run"),
])
def test_a_url_is_shown_with_its_password_masked(url, masked):
    assert mask_url(url) == masked


def test_passwords_are_found_as_typed_as_decoded_and_as_libpq_splits_them():
    typed = quote(PASSWORD, safe="")
    assert {typed, PASSWORD} <= set(passwords(f"postgresql://u:{typed}@h/db"))
    assert "p%a#s$s" in passwords(f"postgresql://u:{PASSWORD}@h/db"), "libpq stops at the first @"
    assert secrets_in({"SCHWAB_APP_SECRET": "app-secret", "DATABASE_URL": "postgresql://u:pw123@h/db",
                       "PATH": "/usr/bin"}) == ["app-secret", "pw123", "pw123"]


def test_every_spelling_of_a_secret_is_redacted():
    redact = Redactor([PASSWORD])
    for spelling in (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), json.dumps(PASSWORD)[1:-1],
                     repr(PASSWORD)[1:-1]):
        assert redact(f"before {spelling} after") == "before *** after", spelling


def test_short_values_are_not_redacted_everywhere():
    assert Redactor(["ab"])("a tab and a cab") == "a tab and a cab"


def test_a_log_line_carries_no_secret_in_its_message_fields_or_traceback():
    REDACT.add("Zq8-log-secret")
    try:
        raise ValueError("could not connect with Zq8-log-secret")
    except ValueError:
        record = logging.LogRecord("writer", logging.ERROR, __file__, 1, "failed for %s", ("Zq8-log-secret",),
                                   exc_info=sys.exc_info())
    record.reason = {"url": "postgresql://u:Zq8-log-secret@h/db"}
    line = JsonFormatter("writer").format(record)
    assert "Zq8" not in line and json.loads(line)["msg"] == "failed for ***"
