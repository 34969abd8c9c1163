"""`make deploy` for real: over SSH to this machine, into a prefix of its own.

A throwaway sshd on 127.0.0.1 (a free port, throwaway keys) stands in for the
Lightsail host; its `.env` runs the simulator and the embedded Postgres. The
container has no systemd, so deploy starts supervisord as a daemon. What is
checked is what a user would look at over SSH: every actor RUNNING, rows
arriving, and a deploy with nothing changed restarting nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.store.localpg import LocalPostgres
from tests.helpers.harness import ACTOR_PROGRAMS, ROOT, free_port, wait_for

DATA = Path(__file__).resolve().parents[1] / "data"

# A fresh machine first installs sshd, rsync and the host's venv.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PROGRAMS = ("postgres", "simulator", *ACTOR_PROGRAMS)
STATUS_LINE = re.compile(r"^(?:embedded|pipeline):(\w+)\s+([A-Z]+)\s*(?:pid (\d+))?")


class Host:
    """The deployed instance, reached the way its user reaches it: over SSH."""

    def __init__(self, tmp: Path, port: int):
        self.tmp = tmp
        self.prefix = tmp / "prefix"
        # Only the throwaway key and this sshd's host key: nothing of ~/.ssh.
        options = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}",
                   "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
        self.ssh_args = ["-p", str(port), "-i", str(tmp / "client_key"), "-o", "BatchMode=yes", *options]
        self.make_args = [
            "HOST=127.0.0.1", "SSH_USER=root", f"SSH_PORT={port}", f"SSH_KEY={tmp / 'client_key'}",
            f"SSH_OPTS={' '.join(options)}", f"PREFIX={self.prefix}",
        ]

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", *self.ssh_args, "root@127.0.0.1", command],
                              capture_output=True, text=True, timeout=60, check=check)

    def in_prefix(self, command: str) -> str:
        """`command` run in PREFIX with supervisord's environment."""
        return self.ssh(f"{self.prefix}/deploy/supervisord-env.sh {command}").stdout

    def deploy(self, checkout: Path = ROOT) -> subprocess.CompletedProcess[str]:
        # Nothing of this process's settings may reach the host: its own .env decides.
        env = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        env.update(STREAMING_VAR=str(self.tmp / "leaked"), DATABASE_URL="postgresql://leaked.invalid/streaming")
        result = subprocess.run(["make", "--no-print-directory", "-C", str(checkout), "deploy", *self.make_args],
                                env=env, capture_output=True, text=True, timeout=540)
        assert result.returncode == 0, f"make deploy failed:\n{result.stdout}\n{result.stderr}"
        return result

    def status(self) -> dict[str, tuple[str, int | None]]:
        """program: (state, pid), from `supervisorctl status` on the host."""
        result = self.ssh(f"{self.prefix}/deploy/supervisord-env.sh supervisorctl -c {self.prefix}/supervisord.conf"
                          " status", check=False)
        return {match[1]: (match[2], int(match[3]) if match[3] else None)
                for match in map(STATUS_LINE.match, result.stdout.splitlines()) if match}

    def wait_running(self) -> dict[str, tuple[str, int | None]]:
        return wait_for(lambda: (status := self.status()) and all(
            status.get(program, ("",))[0] == "RUNNING" for program in PROGRAMS) and status,
            60, "every program RUNNING on the host", interval=0.5)

    def count(self, table: str) -> int:
        code = ("import psycopg; from common.config import load; print(psycopg.connect(load().database_url)"
                f".execute('SELECT count(*) FROM {table}').fetchone()[0])")
        return int(self.in_prefix(f'python -c "{code}"'))


def ensure_ssh_tools() -> None:
    if Path("/usr/sbin/sshd").exists() and shutil.which("rsync") and shutil.which("ssh-keygen"):
        return
    if os.geteuid() != 0:
        pytest.fail("tests/e2e/test_deploy.py needs openssh-server and rsync: apt-get install openssh-server rsync")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "openssh-server", "rsync"]):
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    ensure_ssh_tools()
    tmp = Path(tempfile.mkdtemp(prefix="ssdeploy", dir="/tmp"))
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / key)], check=True)
    port = free_port()
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {(tmp / 'host_key.pub').read_text()}")
    (tmp / "sshd_config").write_text(f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {tmp / 'host_key'}
AuthorizedKeysFile {tmp / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile {tmp / 'sshd.pid'}
UsePAM no
StrictModes no
""")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    with (tmp / "sshd.log").open("w") as log:
        sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                                stdout=log, stderr=subprocess.STDOUT)
    host = Host(tmp, port)
    sim_port = free_port()
    host.prefix.mkdir()
    # The host's own settings, written the awkward ways tests/data/grammar.env shows, with CRLF line ends.
    (host.prefix / ".env").write_text(f"""\
SIM_PORT={sim_port}
SIM_WS_PORT={free_port()}
SIMULATOR_URL=http://127.0.0.1:{sim_port}
SIM_SEED=7
HEARTBEAT_INTERVAL=0.5s
""" + (DATA / "grammar.env").read_text().replace("\n", "\r\n"))
    try:
        wait_for(lambda: host.ssh("true", check=False).returncode == 0, 30, "sshd to let us in", interval=0.2)
        yield host
    finally:
        pidfile = host.prefix / "var" / "run" / "supervisord.pid"
        if pidfile.exists():
            host.ssh(f"{host.prefix}/deploy/supervisord-env.sh supervisorctl -c {host.prefix}/supervisord.conf"
                     " shutdown", check=False)
            wait_for(lambda: not pidfile.exists(), 90, "the deployed supervisord to exit")
        sshd.terminate()
        sshd.wait(timeout=10)
        LocalPostgres(host.prefix / "var" / "pg").remove()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def first_deploy(host: Host) -> subprocess.CompletedProcess[str]:
    return host.deploy()


def test_deploy_runs_every_actor_and_data_flows(host: Host, first_deploy: subprocess.CompletedProcess[str]) -> None:
    table = first_deploy.stdout.rstrip().splitlines()[-len(PROGRAMS):]
    assert {STATUS_LINE.match(line)[1] for line in table if STATUS_LINE.match(line)} == set(PROGRAMS), \
        f"make deploy should end with the host's status table:\n{first_deploy.stdout}"
    assert "no systemd on this host" in first_deploy.stdout

    host.wait_running()
    before = host.count("equity_data")
    wait_for(lambda: host.count("equity_data") > before, 60, "new rows in equity_data", interval=0.5)

    # The host's own settings, not ours: its var under PREFIX, its embedded Postgres.
    assert (host.prefix / "var" / "pg" / "data" / "PG_VERSION").exists()
    assert not (host.tmp / "leaked").exists()


def test_deploying_again_restarts_nothing(host: Host, first_deploy: subprocess.CompletedProcess[str]) -> None:
    running = host.wait_running()
    env_file = host.prefix / ".env"
    env_before = (env_file.read_bytes(), env_file.stat().st_mtime_ns)

    again = host.deploy()

    assert "installing the dependencies" not in again.stdout
    assert host.status() == running, f"a deploy with nothing changed restarted something:\n{again.stdout}"
    assert (env_file.read_bytes(), env_file.stat().st_mtime_ns) == env_before


def test_new_code_restarts_only_what_runs_it(host: Host, first_deploy: subprocess.CompletedProcess[str]) -> None:
    checkout = host.tmp / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", ".env*", "__pycache__", "*_cache", "*.egg-info"))
    (checkout / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)  # make deploy reads .env with it
    with (checkout / "actors" / "options.py").open("a") as module:
        module.write("# a change deployed by tests/e2e/test_deploy.py\n")
    before = host.wait_running()

    changed = host.deploy(checkout)

    assert "new code for pipeline:options" in changed.stdout, changed.stdout
    after = host.wait_running()
    assert after["options"][1] != before["options"][1]
    assert {name: pid for name, (_, pid) in after.items() if name != "options"} == \
        {name: pid for name, (_, pid) in before.items() if name != "options"}


def test_the_host_reads_env_with_the_one_grammar(host: Host, first_deploy: subprocess.CompletedProcess[str]) -> None:
    document = json.loads(host.in_prefix("python -m common.environment show --json"))
    expected = json.loads((DATA / "grammar.json").read_text())
    assert {name: document[name]["value"] for name in expected} == expected


def test_the_service_refuses_to_start_on_a_real_database_without_schwab_credentials(
        host: Host, first_deploy: subprocess.CompletedProcess[str]) -> None:
    """As systemd's unit starts it: simulated prices must never stream into a real database unasked."""
    started = host.ssh(f"DATABASE_URL=postgresql://u:pw@db.example/postgres {host.prefix}/deploy/supervisord-env.sh"
                       f" supervisord -n -c {host.prefix}/supervisord.conf", check=False)
    assert started.returncode == 2
    assert "SCHWAB_APP_KEY and SCHWAB_APP_SECRET are not" in started.stderr and "pw@" not in started.stderr
