"""How a database error is put into words: one line, secrets masked, bounded."""

from __future__ import annotations

import psycopg

from common.store.connection import REASON_CHARS, reason

URL = "postgresql://writer:s3cr%40t-pass@db.example:5432/postgres"


def test_a_reason_is_one_line_with_the_urls_password_masked_in_every_spelling():
    error = psycopg.OperationalError('connection to "db.example" failed:\n  password "s3cr@t-pass"\tor s3cr%40t-pass')
    said = reason(error, URL)
    assert "s3cr" not in said and "\n" not in said and "\t" not in said
    assert said == 'connection to "db.example" failed: password "***" or ***'


def test_a_reason_is_cut_to_a_log_lines_length_unless_asked_for_whole():
    error = psycopg.errors.SyntaxError("x" * 1000)
    assert len(reason(error)) == REASON_CHARS and len(reason(error, limit=None)) == 1000


def test_an_error_without_a_message_is_named_by_its_type():
    assert reason(psycopg.OperationalError()) == "OperationalError"
