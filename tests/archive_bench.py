"""The archive of one busy day, measured: a measurement, not a test.

    .venv/bin/python -m tests.archive_bench [--tickers 50] [--contracts 1500]

On a throwaway local Postgres with every migration applied: one New York day
of `equity_data` (50 tickers trading every second of the session: 1.17 M
rows) and of `option_prices` (1,500 contracts x 390 one-minute snapshots:
585,000 rows), each archived to a local directory by its own process
(`common.store.archive.archive_day`, verified as `make archive` does). Prints
one JSON object: per table the rows, the Parquet bytes and bytes per row, the
archiving process's CPU seconds, wall seconds and peak RSS (its own
ru_maxrss), and the same for restoring the day back after
`drop_archived_day`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import psycopg

from common.store import migrate
from common.store.localpg import LocalPostgres
from tests.helpers.archive import fill_equity_day, fill_option_day

DAY = date(2026, 3, 3)

#: Runs the command as its only child and reports that child's usage: each figure is that one process's own.
WRAPPER = """
import json, resource, subprocess, sys, time
wall = time.perf_counter()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": run.returncode, "out": run.stdout.strip(), "err": run.stderr.strip(),
                  "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                  "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}))
"""


def measure(url: str, command: str, table: str, root: Path) -> dict:
    """`python -m common.store.archive` (what `make archive` / `make restore` run) in a process of its own: its
    wall time, CPU seconds and peak RSS (its ru_maxrss, read by the wrapper that waited for it)."""
    env = {**os.environ, "DATABASE_URL": url, "ARCHIVE_DIR": str(root), "STREAM_SOURCE": "simulator",
           "STREAMING_VAR": str(root.parent / "var")}
    run = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", "common.store.archive", command,
                          "--table", table, "--day", DAY.isoformat()], env=env, capture_output=True, text=True,
                         check=True)
    result = json.loads(run.stdout)
    if result.pop("code"):
        raise SystemExit(f"{command} {table} failed:\n{result['err']}")
    result.pop("err")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--contracts", type=int, default=1500)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="archbench", dir="/tmp"))
    cluster = LocalPostgres(base / "pg")
    try:
        cluster.init()
        cluster.start()
        url = cluster.url()
        with migrate.connect(url) as conn:
            migrate.migrate(conn)
        with psycopg.connect(url, autocommit=True) as conn:
            filled = {"equity_data": fill_equity_day(conn, DAY, args.tickers),
                      "option_prices": fill_option_day(conn, DAY, args.contracts)}
            conn.execute("VACUUM ANALYZE")
        report = {}
        for table, rows in filled.items():
            archived = measure(url, "archive", table, base / "archive")
            with psycopg.connect(url, autocommit=True) as conn:
                logged = conn.execute("SELECT row_count, file_bytes FROM public.archive_log WHERE table_name = %s",
                                      (table,)).fetchone()
                assert logged[0] == rows, (logged, rows)
                conn.execute("SELECT public.drop_archived_day(%s, %s)", (table, DAY))
            archived.update(rows=rows, bytes=logged[1], bytes_per_row=round(logged[1] / rows, 1))
            report[table] = {"archive": archived, "restore": measure(url, "restore", table, base / "archive")}
        print(json.dumps(report, indent=2))
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
