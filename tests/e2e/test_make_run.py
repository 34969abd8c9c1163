"""`make` as a user runs it, in a copy of the checkout with its own `.env`.

What is checked is what a new user meets: bad settings stop `make run` before
anything starts; `.env` is read by one grammar; the embedded Postgres opens no
directory of the user's; `make clean` keeps the token and asks before it
deletes data; and the database password, with every awkward character in it,
appears in no log line, no make output, no page and no process command line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from common.config import simulator_token_path
from common.store import migrate
from common.store.localpg import SUPERUSER, LocalPostgres
from tests.helpers.checkout import Checkout
from tests.helpers.harness import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
DATA = Path(__file__).resolve().parents[1] / "data"
#: Every character that ever broke a URL, a shell or a .env parser; the two ends are what a search looks for,
#: so that an echo of any part of it is found.
PASSWORD = "Xk7Qm%a#b$c@d'e\"f gRt5Wp"
FRAGMENTS = ("Xk7Qm", "Rt5Wp")


def ports() -> str:
    sim = free_port()
    return (f"SIM_PORT={sim}\nSIM_WS_PORT={free_port()}\nSIMULATOR_URL=http://127.0.0.1:{sim}\n"
            f"METRICS_HTTP_PORT={free_port()}\n")


def crlf(path: Path) -> str:
    return path.read_text().replace("\n", "\r\n")


@pytest.fixture(scope="module")
def checkout() -> Iterator[Checkout]:
    copy = Checkout()
    try:
        yield copy
    finally:
        copy.close()


def test_make_help_lists_every_target():
    phony = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith(".PHONY:"))
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    assert {line.split()[1] for line in listed.splitlines()} == set(phony.split()[1:])


@pytest.mark.parametrize("env_text, environ, names", [
    ("STREAM_BACKOFF_MIN=0\n", {}, "STREAM_BACKOFF_MIN='0' is out of range; accepted: a duration from 100ms"),
    ("METRICS_INTERVAL=0\n", {}, "METRICS_INTERVAL='0'"),
    ("DATABASE_URL=postgresql://u:pw@db.example/postgres\n", {}, "SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not"),
    ("SCHWAB_APP_KEY=key\n", {}, "SCHWAB_APP_KEY is set but SCHWAB_APP_SECRET is not"),
    ("", {"STREAM_TICKERS": '"SPY,QQQ"'}, 'STREAM_TICKERS has symbols Schwab cannot stream: "SPY, QQQ"'),
])
def test_a_bad_setting_stops_make_run_before_anything_starts(checkout, env_text, environ, names):
    checkout.write_env(env_text)
    run = checkout.make("run", **environ)
    assert run.returncode != 0 and names in run.stdout, run.stdout
    assert "Running." not in run.stdout
    assert not (checkout.var / "run" / "supervisord.pid").exists() and not (checkout.var / "pg").exists()


def shown(output: str) -> dict[str, str]:
    """The values `show --json` printed (it prints the check's summary after the JSON)."""
    document, _ = json.JSONDecoder().raw_decode(output[output.index("{"):])
    return {name: row["value"] for name, row in document.items()}


def test_one_env_grammar_for_make_and_the_container_entry_point(checkout):
    """The deployed host's path is the same script, run over SSH in tests/e2e/test_deploy.py."""
    expected = json.loads((DATA / "grammar.json").read_text())
    checkout.write_env(ports() + crlf(DATA / "grammar.env"))
    made = checkout.make("settings", "JSON=1")
    assert made.returncode == 0, made.stdout
    entry = subprocess.run([str(checkout.root / "deploy" / "supervisord-env.sh"), "python", "-m",
                            "common.environment", "show", "--json"], cwd="/", capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME")})
    assert entry.returncode == 0, entry.stderr
    for output in (made.stdout, entry.stdout):
        values = shown(output)
        assert {name: values[name] for name in expected} == expected


def test_a_setting_on_makes_command_line_is_taken_as_typed(checkout):
    """make reads `$SPX` as its own variable `$S` followed by PX: an index on the command line would stream PX."""
    checkout.write_env(ports())
    made = checkout.make("settings", "JSON=1", "STREAM_TICKERS=SPY,$SPX,$VIX")
    assert made.returncode == 0, made.stdout
    assert shown(made.stdout)["STREAM_TICKERS"] == "SPY,$SPX,$VIX"


@pytest.fixture
def private_checkout() -> Iterator[Checkout]:
    copy = Checkout(mode=0o700)
    copy.parent.chmod(0o700)
    try:
        yield copy
    finally:
        copy.close()


def modes(*paths: Path) -> dict[Path, int]:
    return {path: stat.S_IMODE(path.stat().st_mode) for path in paths}


def test_make_run_opens_no_directory_of_the_users_and_make_clean_keeps_the_token(private_checkout):
    copy = private_checkout
    env_file = copy.write_env(ports() + "STREAM_TICKERS=SPY\n")
    before = modes(copy.parent, copy.root, env_file)

    run = copy.make("run")
    assert run.returncode == 0 and "Running." in run.stdout, run.stdout
    url = f"postgresql://postgres@/streaming?host={copy.var}/pg/run"
    with psycopg.connect(url) as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM equity_data").fetchone()[0] > 0, 60, "trades stored")
    assert modes(copy.parent, copy.root, env_file) == before
    as_postgres = subprocess.run(["runuser", "-u", "postgres", "--", "cat", str(env_file)], capture_output=True)
    assert as_postgres.returncode != 0, "the postgres OS user could read .env"

    token = simulator_token_path(copy.var / "data" / "schwab_token.json")
    assert token.exists(), "the simulated login writes the simulator's own token file"
    cluster = LocalPostgres(copy.var / "pg").home
    kept = copy.make("clean")  # not a terminal, no CONFIRM=1: nothing of value goes
    assert kept.returncode == 0 and "kept the database and the journals" in kept.stdout, kept.stdout
    assert not (copy.var / "log").exists() and cluster.exists() and (copy.var / "data" / "journal").exists()
    cleaned = copy.make("clean", "CONFIRM=1")
    assert cleaned.returncode == 0 and "deleted the database and the journals" in cleaned.stdout, cleaned.stdout
    assert not cluster.exists() and not (copy.var / "pg").exists() and not (copy.var / "data" / "journal").exists()
    assert token.exists() and f"kept the Schwab token file {token}" in cleaned.stdout
    assert modes(copy.parent, copy.root, env_file) == before


@pytest.fixture
def tcp_database() -> Iterator[tuple[LocalPostgres, int]]:
    """A cluster reached over TCP on 127.0.0.1 with scram, migrated, with a writer login whose password is PASSWORD."""
    base = Path(tempfile.mkdtemp(prefix="pgtcp", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    cluster.init()
    port = free_port()
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\npassword_encryption = 'scram-sha-256'\n")
    hba = cluster.data_dir / "pg_hba.conf"
    hba.write_text(f"host all all 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
    cluster.start()
    try:
        with migrate.connect(owner_url(cluster, port)) as conn:
            migrate.migrate(conn)
            conn.execute(sql.SQL("CREATE ROLE streaming_ingest LOGIN PASSWORD {} IN ROLE streaming_writer")
                         .format(sql.Literal(PASSWORD)))
        yield cluster, port
    finally:
        cluster.remove()
        subprocess.run(["rm", "-rf", str(base)], check=False)


def owner_url(cluster: LocalPostgres, port: int) -> str:
    return f"{cluster.url()}&port={port}"


def set_password(cluster: LocalPostgres, port: int, password: str) -> None:
    """As the cluster's superuser, as a DBA rotating it would; the writer's sessions end so it must log in again."""
    with psycopg.connect(f"{cluster.url(SUPERUSER)}&port={port}", autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE streaming_ingest PASSWORD {}").format(sql.Literal(password)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'streaming_ingest'")


def http(port: str, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()


def command_lines() -> str:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile
            continue
    return "\n".join(lines)


def test_the_database_password_appears_nowhere(checkout, tcp_database):
    cluster, port = tcp_database
    settings = (f"STREAM_SOURCE=simulator\nSTREAM_TICKERS=SPY\nSTATS_INTERVAL=0.5s\nMETRICS_INTERVAL=1s\n"
                f"MIGRATE_DATABASE_URL={owner_url(cluster, port)}\n{ports()}")
    metrics_port = settings.split("METRICS_HTTP_PORT=")[1].split()[0]
    seen: dict[str, str] = {}

    # Typed into the URL as it is, libpq cannot read it (and once echoed it into writer.log, forever).
    checkout.write_env(f"DATABASE_URL='postgresql://streaming_ingest:{PASSWORD.replace(chr(39), '')}"
                       f"@127.0.0.1:{port}/streaming'\n{settings}")
    refused = seen["make run, unencoded"] = checkout.make("run").stdout
    assert "DATABASE_URL='postgresql://streaming_ingest:***@127.0.0.1" in refused, refused
    assert "Running." not in refused

    checkout.write_env(f"DATABASE_URL=postgresql://streaming_ingest:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"
                       f"/streaming\n{settings}")
    run = seen["make run"] = checkout.make("run").stdout
    assert "Running." in run, run
    with psycopg.connect(owner_url(cluster, port), autocommit=True) as conn:
        stored = lambda: conn.execute("SELECT count(*) FROM equity_data").fetchone()[0]  # noqa: E731
        wait_for(lambda: stored() > 0, 60, "trades stored by the writer login")
        seen["page, running"] = http(metrics_port, "/") + http(metrics_port, "/api/series?ticker=SPY")

        set_password(cluster, port, "a-different-password")
        wait_for(lambda: "password authentication failed" in checkout.log("writer"), 60,
                 "the writer to be refused")
        seen["series, refused"] = http(metrics_port, "/api/series?ticker=SPY")
        seen["make health, refused"] = checkout.make("health").stdout
        seen["command lines"] = command_lines()

        set_password(cluster, port, PASSWORD)
        resumed = stored()
        wait_for(lambda: stored() > resumed, 60, "the writer to store again once the password is right")
    for path in ("/", "/healthz", "/metrics", "/api/series?ticker=SPY"):
        seen[f"GET {path}"] = http(metrics_port, path)
    for target in ("settings", "status", "health"):
        seen[f"make {target}"] = checkout.make(target).stdout
    seen["command lines, after"] = command_lines()
    seen["make stop"] = checkout.make("stop").stdout
    for path in (checkout.var / "log").rglob("*"):
        if path.is_file():
            seen[str(path)] = path.read_text(errors="replace")

    assert "database unavailable; retrying" in seen[str(checkout.var / "log" / "writer.log")]
    leaks = [where for where, text in seen.items() if any(fragment in text for fragment in FRAGMENTS)]
    assert leaks == [], f"the password shows in {leaks}"
