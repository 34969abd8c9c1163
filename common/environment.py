"""The one reading of the service's settings, for make, the deployed host and the container.

`.env` at the top of the checkout (or the file ENV_FILE names) is read with
python-dotenv, the ecosystem's grammar: `KEY=value`, `export KEY=value`,
spaces round `=`, single or double quotes (a `#` inside quotes is kept; after
a space outside them it starts a comment), CRLF line ends, `KEY=` for empty.
Values are taken literally, with no `${VAR}` expansion, so a password's `$`
stays a `$`. A variable set (non-empty) in the environment wins over the
file, so `make run STREAM_TICKERS=QQQ` overrides it for one run.

From the settings it derives what supervisord.conf needs (STREAMING_VAR,
STREAMING_PYTHON, EMBEDDED_PG, EMBEDDED_SIM) and checks the whole
configuration (common/config.py, and DATABASE_URL with libpq's own parser)
before anything starts. Nothing it prints shows a secret.

    python -m common.environment check            what will run (passwords masked); exit 2 naming a bad setting
    python -m common.environment show [--json]    every setting, its value (secrets masked) and where it came from
    python -m common.environment get ATTRIBUTE    one value of the checked Config, e.g. schwab_token_path
    python -m common.environment example          .env.example, from the settings' own list
    python -m common.environment exec [--no-check] -- COMMAND [ARG...]    run COMMAND with these settings

Started as root with STREAMING_USER set (the image's entry point), it reads
the settings file as root and then becomes that user before anything else:
`.env` stays private to its owner on the host (chmod 600; a bind mount keeps
the host's owner), and nothing of the service runs as root.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from common.config import BY_NAME, SETTINGS, Config, ConfigError, load, loopback, open_to_others, read
from common.redact import Redactor, mask_url, secrets_in

ROOT = Path(__file__).resolve().parents[1]
#: Config attributes `get` may print: none of them holds a secret.
PRINTABLE = ("schwab_token_path", "stream_source", "embedded_database", "data_dir", "log_dir", "run_dir", "tickers")


class Settings:
    """The file's values under the environment's, and where each came from."""

    def __init__(self, environ: Mapping[str, str], env_file: Path | None = None,
                 from_file: dict[str, str] | None = None):
        self.environ = dict(environ)
        self.env_file = env_file or Path(environ.get("ENV_FILE") or ROOT / ".env")
        self.from_file = (read_env_file(self.env_file, required="ENV_FILE" in environ and not env_file)
                          if from_file is None else from_file)
        self.values = {**self.from_file, **{key: value for key, value in self.environ.items() if value.strip()}}
        self.redact = Redactor(secrets_in(self.values))

    def for_account(self, account: pwd.struct_passwd) -> Settings:
        """The same settings for processes of `account`, with its HOME, USER and LOGNAME; the file is not read
        again (only the user that started the launcher may be able to)."""
        names = {"HOME": account.pw_dir, "USER": account.pw_name, "LOGNAME": account.pw_name}
        return Settings({**self.environ, **names}, self.env_file, self.from_file)

    def origin(self, name: str) -> str:
        if self.environ.get(name, "").strip():
            return "environment"
        return str(self.env_file.name) if name in self.from_file else "default"

    @property
    def var(self) -> Path:
        """Everything kept lives here; absolute, so every process of the service agrees on it."""
        return (read(self.values, "STREAMING_VAR") or ROOT / "var").resolve()

    def config(self) -> Config:
        """The checked configuration: every setting, the data source and the database URL."""
        config = load({**self.values, "STREAMING_VAR": str(self.var)})
        for name in ("DATABASE_URL", "MIGRATE_DATABASE_URL"):
            check_database_url(name, self.values.get(name, "").strip())
        return config

    def for_processes(self, checked: bool = True) -> dict[str, str]:
        """The environment supervisord and the actors get: the settings plus what is derived from them."""
        env = {**self.environ, **self.values}
        if checked:
            config = self.config()
            embedded_pg, simulated = config.embedded_database, config.uses_simulator
        else:
            embedded_pg, simulated = not self.values.get("DATABASE_URL", "").strip(), False
        env.update(
            STREAMING_VAR=str(self.var),
            STREAMING_PYTHON=sys.executable,
            EMBEDDED_PG=str(embedded_pg).lower(),
            EMBEDDED_SIM=str(simulated).lower(),
            PATH=os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", os.defpath))),
        )
        return env

    def shown(self, name: str) -> str:
        """A setting's value as it may be printed."""
        value = self.values.get(name, "")
        if not value.strip():
            return BY_NAME[name].default if name in BY_NAME else ""
        if name in ("DATABASE_URL", "MIGRATE_DATABASE_URL"):
            return self.redact(mask_url(value))
        return "***" if name in BY_NAME and BY_NAME[name].secret else self.redact(value)


def read_env_file(path: Path, required: bool = False) -> dict[str, str]:
    """KEY=value pairs from a dotenv file; a line that cannot be read is an error naming its number, not its text."""
    try:
        if not path.exists():
            if required:
                raise ConfigError(f"ENV_FILE={str(path)!r} does not exist")
            return {}
        values: dict[str, str] = {}
        with path.open(encoding="utf-8") as stream:
            for binding in parse_stream(stream):
                if binding.error:
                    raise ConfigError(f"{path}: line {binding.original.line} is not KEY=value "
                                      "(quote a value that holds spaces or #)")
                if binding.key is not None and binding.value is not None:
                    values[binding.key] = binding.value
    except PermissionError:
        raise ConfigError(unreadable(path)) from None
    return values


def unreadable(path: Path) -> str:
    """Why this process cannot read the settings file, and a remedy that keeps it private: a file of secrets
    made readable by everyone is the fix people reach for."""
    uid = os.geteuid()
    try:
        status = path.stat()
    except OSError:
        return (f"{path} cannot be read by uid {uid}: a directory above it is closed to that user; run as the user "
                "that owns the file")
    return (f"{path} cannot be read by uid {uid} (it is uid {status.st_uid}'s, mode "
            f"{stat.S_IMODE(status.st_mode):04o}): run as uid {status.st_uid}, or give the file to uid {uid} "
            f"(chown {uid} {path}) and keep it chmod 600, never readable by everyone. The image's entry point reads "
            "it as root: start the container without --user")


def service_account(environ: Mapping[str, str]) -> pwd.struct_passwd | None:
    """The user to become once the settings file is read: STREAMING_USER, when started as root (the image sets it
    to its own user); None when unset, or when started as anyone else, who cannot switch."""
    name = environ.get("STREAMING_USER", "").strip()
    if not name or os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"STREAMING_USER={name!r} is not a user of this system; accepted: an existing user's "
                          "name") from None


def become(account: pwd.struct_passwd) -> None:
    """Drop root for good: `account`'s groups, group and user, in that order (setuid first would forbid the rest)."""
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def check_database_url(name: str, url: str) -> None:
    """libpq must be able to parse it; the error shows the URL with its password masked."""
    if not url:
        return
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as error:
        redact = Redactor(secrets_in({name: url}))
        # libpq quotes the piece it could not read, which may be any part of the password.
        reason = re.sub(r'".*"', '"***"', redact(" ".join(str(error).split())))
        raise ConfigError(f"{name}={redact(mask_url(url))!r} is not a URL libpq can read: {reason} "
                          "(percent-encode special characters of the password: % as %25, # as %23, @ as %40, "
                          "space as %20)") from None


def warnings_for(settings: Settings, config: Config) -> list[str]:
    notes = []
    if settings.env_file.exists() and settings.env_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(settings.env_file.stat().st_mode)
        notes.append(f"{settings.env_file} is readable by other users (mode {mode:04o}): chmod 600 {settings.env_file}")
    for directory in (config.run_dir, config.schwab_token_path.parent):
        if note := open_to_others(directory):
            notes.append(note)
    if config.bus_transport == "tcp" and not loopback(config.bus_host):
        notes.append(f"BUS_HOST={config.bus_host} sends every frame, with no credential, to whoever reaches it from "
                     f"port {config.bus_base_port} on: keep it on a private network")
    return notes


def summary(settings: Settings, config: Config) -> str:
    if config.uses_simulator:
        source = "SIMULATED prices from the Schwab simulator (not Schwab's)"
    elif config.replays:
        source = f"REPLAYED recording {config.stream_replay} (not live; nothing logs in)"
    else:
        source = "Schwab's streaming API"
    database = (f"embedded Postgres in {settings.var / 'pg'}" if config.embedded_database
                else settings.shown("DATABASE_URL"))
    lines = [f"source    {source}", f"database  {database}", f"tickers   {','.join(config.tickers)}"]
    return "\n".join(lines + [f"warning   {note}" for note in warnings_for(settings, config)])


#: Uncommented in .env.example: what a new user fills in first (the seed's, and where the rows go).
FILL_IN = ("STREAM_TICKERS", "SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "DATABASE_URL")


def example() -> str:
    """.env.example: every setting with its default and its meaning, the seed's five first."""
    lines = [
        "# streaming-service settings. Copy to .env (chmod 600 .env) and set what you need; unset means the",
        "# default shown. make, the deployed host and the container read it alike, with python-dotenv's grammar:",
        "# KEY=value, quotes around a value holding spaces or #, no ${VAR} expansion. `make settings` shows what",
        "# is in effect. Generated from common/config.py (python -m common.environment example): edit it there.",
    ]
    for setting in SETTINGS:
        lines += ["", f"# {setting.meaning}",
                  f"{'' if setting.name in FILL_IN else '# '}{setting.name}={setting.default}"]
    return "\n".join(lines) + "\n"


def table(settings: Settings) -> dict[str, dict[str, str]]:
    names = [setting.name for setting in SETTINGS] + ["STREAM_TICKER"]
    return {name: {"value": settings.shown(name), "origin": settings.origin(name)} for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.environment", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check every setting; say what will run")
    commands.add_parser("example", help="print .env.example")
    show = commands.add_parser("show", help="every setting, its value (secrets masked) and its origin")
    show.add_argument("--json", action="store_true")
    get = commands.add_parser("get", help="one value of the checked configuration")
    get.add_argument("attribute", choices=PRINTABLE)
    run = commands.add_parser("exec", help="run a command with the settings in its environment")
    run.add_argument("--no-check", action="store_true", help="for stop, status, logs: run even if a setting is bad")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    redact = Redactor()
    try:
        settings = Settings(os.environ)
        if account := service_account(os.environ):
            become(account)
            settings = settings.for_account(account)
        redact = settings.redact
        if args.command == "check":
            print(summary(settings, settings.config()))
        elif args.command == "example":
            print(example(), end="")
        elif args.command == "show":
            rows = table(settings)
            if args.json:
                print(json.dumps(rows, indent=1))
            else:
                width = max(map(len, rows))
                print("\n".join(f"{name:<{width}}  {row['value']!s:<30}  ({row['origin']})" for name, row in rows.items()))
        elif args.command == "get":
            value = getattr(settings.config(), args.attribute)
            print(",".join(value) if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool)
                  else value)
        else:
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                parser.error("exec needs a command after --")
            env = settings.for_processes(checked=not args.no_check)
            os.execvpe(command[0], command, env)
    except ConfigError as error:
        print(f"settings: {redact(str(error))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
