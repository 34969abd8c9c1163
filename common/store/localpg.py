"""A throwaway or embedded PostgreSQL cluster on a unix socket, shaped like Supabase.

Used by `make run` when no DATABASE_URL is configured and by the tests. The
superuser is `supabase_admin`; the application connects as the non-superuser
`postgres`, which is granted `anon`, `authenticated` and `service_role`, and the
default privileges grant ALL on new public objects to those three roles, as a
Supabase project does, so that the migrations' REVOKEs are tested for real.

The cluster listens on no TCP port, only on `<base>/run` (mode 0700) with trust
authentication: whoever can reach the socket directory owns the database.

As root, the server runs as the `postgres` OS user (initdb refuses root), and
that user must reach the cluster's files without any directory of the
user's being opened to it: so the files live in the `postgres` user's own
home (`~postgres/streaming-service/<id>`, id from the base path), and `<base>`
is a symlink to them that only root follows. `remove()` deletes both; a
cluster whose symlink is gone (a test run that was killed) is swept away the
next time one is created.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg

SUPERUSER = "supabase_admin"
OS_USER = "postgres"
SETTINGS = {
    "listen_addresses": "''",
    "shared_buffers": "32MB",
    "max_connections": "40",
    "work_mem": "4MB",
    "maintenance_work_mem": "32MB",
    "timezone": "'UTC'",
}

_BOOTSTRAP = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postgres') THEN
        CREATE ROLE postgres LOGIN CREATEROLE CREATEDB;
    END IF;
END $$;
GRANT anon, authenticated, service_role TO postgres;
"""

# Per database, so applied to template1 before `streaming` (and test databases) copy it.
_SUPABASE_DEFAULTS = """
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


class LocalPostgresError(RuntimeError):
    """The local cluster cannot be set up or run; the message says what to do."""


def find_bindir() -> Path:
    """The server binaries: pg_config's bindir, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(p.split("/")[-2]), reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise LocalPostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: run `make setup` to install them"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def clusters_home() -> Path:
    """As root, where clusters live: in the postgres OS user's home, which that user can reach."""
    return Path(pwd.getpwnam(OS_USER).pw_dir) / "streaming-service"


class LocalPostgres:
    def __init__(self, base_dir: Path):
        self.base_dir = Path(os.path.abspath(base_dir))
        self._bindir: Path | None = None

    @property
    def home(self) -> Path:
        """Where the cluster's files are: `base_dir` itself, or as root the directory it links to."""
        return self.base_dir.resolve()

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def url(self, user: str = "postgres", dbname: str = "streaming") -> str:
        return f"postgresql://{user}@/{dbname}?host={quote(str(self.socket_dir), safe='/')}"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self, template: LocalPostgres | None = None) -> None:
        """initdb and bootstrap the Supabase-like roles; does nothing if already done.

        The cluster is built in `data.new` and renamed into place only once
        bootstrapped, so an interrupted init leaves nothing half-made behind.
        With a `template` (an initialised, stopped cluster), its files are
        copied instead: the tests start many clusters, and initdb and the
        bootstrap cost seconds each.
        """
        if self.initialised:
            return
        self._prepare_dirs()
        building = self.home / "data.new"
        if building.exists():
            shutil.rmtree(building)
        if template is not None:
            self._copy(template, building)
            building.rename(self.data_dir)
            return
        self._run(
            self.bindir / "initdb", "-D", building, "-U", SUPERUSER, "--auth-local=trust",
            "--auth-host=reject", "--encoding=UTF8", "--no-locale", "--no-instructions",
        )
        with (building / "postgresql.conf").open("a") as conf:
            conf.write("\n# streaming-service: a tiny local cluster on a unix socket only\n")
            for name, value in {**SETTINGS, "unix_socket_directories": f"'{self.socket_dir}'"}.items():
                conf.write(f"{name} = {value}\n")
        self._pg_ctl(building, "start")
        try:
            self._bootstrap()
        finally:
            self._pg_ctl(building, "stop")
        building.rename(self.data_dir)

    def _copy(self, template: LocalPostgres, building: Path) -> None:
        if template.running or not template.initialised:
            raise LocalPostgresError(f"the template cluster in {template.base_dir} must be initialised and stopped")
        shutil.copytree(template.data_dir, building, symlinks=True)
        conf = building / "postgresql.conf"
        conf.write_text(conf.read_text().replace(f"'{template.socket_dir}'", f"'{self.socket_dir}'"))
        if _as_root():
            user = pwd.getpwnam(OS_USER)
            for directory, _, files in os.walk(building):
                for path in (directory, *(os.path.join(directory, name) for name in files)):
                    os.chown(path, user.pw_uid, user.pw_gid)

    def _bootstrap(self) -> None:
        with psycopg.connect(self.url(SUPERUSER, "postgres"), autocommit=True) as admin:
            admin.execute(_BOOTSTRAP)
        with psycopg.connect(self.url(SUPERUSER, "template1"), autocommit=True) as template:
            template.execute(_SUPABASE_DEFAULTS)
        with psycopg.connect(self.url(SUPERUSER, "postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE streaming OWNER postgres")

    def start(self) -> None:
        """Start in the background and wait until it accepts connections; a no-op if running."""
        self._require_init()
        self._prepare_dirs()
        if not self.running:
            self._pg_ctl(self.data_dir, "start")

    def stop(self) -> None:
        """Fast shutdown (sessions are cut, nothing committed is lost); a no-op if stopped."""
        if self.initialised and self.running:
            self._pg_ctl(self.data_dir, "stop")

    def remove(self) -> None:
        """Stop and delete the cluster: its files, and the symlink to them as root."""
        self.stop()
        home = self.home
        if self.base_dir.is_symlink():
            self.base_dir.unlink()
        shutil.rmtree(home, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._run(self.bindir / "pg_ctl", "status", "-D", self.data_dir, check=False).returncode == 0

    def serve(self) -> None:
        """Become the postmaster in the foreground, for supervisord: its signals reach postgres itself."""
        self._require_init()
        self._prepare_dirs()
        postgres, data_dir = str(self.bindir / "postgres"), self.data_dir  # resolved while we can follow the link
        if _as_root():
            user = pwd.getpwnam(OS_USER)
            os.setgid(user.pw_gid)
            os.initgroups(OS_USER, user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ.update(HOME=user.pw_dir, USER=OS_USER, LOGNAME=OS_USER)
        os.chdir(data_dir)
        os.execv(postgres, [postgres, "-D", str(data_dir)])

    def _require_init(self) -> None:
        if not self.initialised:
            raise LocalPostgresError(
                f"no cluster in {self.data_dir}: run `python -m common.store.localpg init --dir {self.base_dir}`"
            )

    def _prepare_dirs(self) -> None:
        """Create the cluster's directory and socket dir; as root, in the postgres user's home, owned by it.

        No directory on the way to `base_dir` changes: the server never goes there.
        """
        if _as_root() and not self.base_dir.exists():
            if self.base_dir.is_symlink():  # its cluster was deleted
                self.base_dir.unlink()
            self.base_dir.parent.mkdir(parents=True, exist_ok=True)
            _sweep_orphans(clusters_home())
            home = clusters_home() / hashlib.sha256(str(self.base_dir).encode()).hexdigest()[:16]
            home.mkdir(parents=True, mode=0o700, exist_ok=True)
            self.base_dir.symlink_to(home, target_is_directory=True)
            (home / "origin").write_text(str(self.base_dir))  # after the link: a sweep never sees one unlinked
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if _as_root():
            user = pwd.getpwnam(OS_USER)
            for path in (self.home, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _pg_ctl(self, data_dir: Path, action: str) -> None:
        options = {"start": ["-l", self.log_file, "-t", "60"], "stop": ["-m", "fast", "-t", "60"]}[action]
        result = self._run(self.bindir / "pg_ctl", action, "-D", data_dir, "-w", *options, check=False)
        if result.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise LocalPostgresError(f"pg_ctl {action} failed: {result.stderr.strip()}\n{log}")

    def _run(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a server tool, as the postgres OS user when we are root."""
        as_user = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam(OS_USER)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(part) for part in command], cwd=self.home, capture_output=True, text=True, **as_user
        )
        if check and result.returncode != 0:
            output = result.stderr.strip() or result.stdout.strip()
            raise LocalPostgresError(f"{Path(command[0]).name} failed: {output}")
        return result


def _sweep_orphans(home: Path) -> None:
    """Delete clusters whose symlink is gone or points elsewhere now, unless their server still runs."""
    for cluster in home.glob("*/origin"):
        origin = Path(cluster.read_text())
        if origin.is_symlink() and origin.resolve() == cluster.parent:
            continue
        pid_file = cluster.parent / "data" / "postmaster.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text().split()[0])):
            continue
        shutil.rmtree(cluster.parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.store.localpg", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("init", "start", "stop", "serve", "url", "remove"))
    parser.add_argument("--dir", type=Path, default=Path("var/pg"), help="cluster base directory (default var/pg)")
    args = parser.parse_args(argv)
    cluster = LocalPostgres(args.dir)
    try:
        if args.command == "url":
            print(cluster.url())
        else:
            getattr(cluster, args.command)()
    except LocalPostgresError as error:
        sys.exit(f"localpg {args.command}: {error}")


if __name__ == "__main__":
    main()
