"""The ways the real Schwab streamer is known to misbehave, on request (pure).

A fault is written `mode[:arg]`, the same from the command line
(`--fault stall:5`) and from a test (`POST /sim/fault {"fault": "stall:5"}`):

- `close`          close every streamer connection cleanly (close frame 1000)
- `drop`           abort every streamer connection (no close frame: a reset)
- `stall[:s]`      connections open now send nothing, heartbeats included, for s seconds (0: forever)
- `ignore:CMD`     the next CMD request (LOGIN, SUBS, ADD, UNSUBS) gets no answer at all
- `malformed`      send each connection one frame that is not JSON
- `unknown`        send each connection frames of a kind and a service schwab-py does not know
- `refuse_login[:n]` the next n LOGINs are denied (code 3) and closed
- `expire_access`  every access token issued so far is rejected (HTTP 401, LOGIN code 3); sessions end
- `expire_refresh` every refresh token seen so far is rejected too: a person must log in again
- `code:N`         answer with Schwab's code N: 11 or 19 on the next SUBS/ADD, 12 on the next LOGIN,
                   30 (STOP_STREAMING) at once to every connection, which is then closed
- `restart[:s]`    the streamer goes away (connections reset, sessions forgotten) for s seconds

Immediate faults act on the connections of the moment; armed ones wait for
the request they answer. `Faults` only decides; the server acts.
"""

from __future__ import annotations

from dataclasses import dataclass

IMMEDIATE = ("close", "drop", "stall", "malformed", "unknown", "expire_access", "expire_refresh", "restart")
ARMED = ("ignore", "refuse_login")
CODES = (11, 12, 19, 30)
COMMANDS = ("LOGIN", "SUBS", "ADD", "UNSUBS", "LOGOUT")
MODES = (*IMMEDIATE, *ARMED, "code")


class FaultError(ValueError):
    """A fault spec the simulator cannot act on; the message says why."""


@dataclass(frozen=True)
class Fault:
    mode: str
    seconds: float = 0.0
    count: int = 1
    command: str = ""
    code: int = 0

    @property
    def immediate(self) -> bool:
        return self.mode in IMMEDIATE or (self.mode == "code" and self.code == 30)

    def __str__(self) -> str:
        arg = self.command or self.code or (self.count if self.mode == "refuse_login" else self.seconds)
        return f"{self.mode}:{arg}" if arg else self.mode


def parse(spec: str) -> Fault:
    """A `Fault` from `mode[:arg]`, or a FaultError naming what is wrong."""
    mode, _, arg = spec.strip().partition(":")
    if mode not in MODES:
        raise FaultError(f"unknown fault {mode!r}: choose from {', '.join(MODES)}")
    try:
        if mode in ("stall", "restart"):
            seconds = float(arg or (0 if mode == "stall" else 2))
            if seconds < 0:
                raise ValueError
            return Fault(mode, seconds=seconds)
        if mode == "refuse_login":
            count = int(arg or 1)
            if count < 1:
                raise ValueError
            return Fault(mode, count=count)
        if mode == "ignore":
            if arg.upper() not in COMMANDS:
                raise ValueError
            return Fault(mode, command=arg.upper())
        if mode == "code":
            if int(arg) not in CODES:
                raise ValueError
            return Fault(mode, code=int(arg))
    except ValueError:
        raise FaultError(f"fault {spec!r}: bad argument {arg!r}") from None
    if arg:
        raise FaultError(f"fault {mode!r} takes no argument, got {arg!r}")
    return Fault(mode)


@dataclass(frozen=True)
class Override:
    """How to answer one request instead of normally: not at all, or with an error code."""

    silent: bool = False
    code: int = 0
    msg: str = ""
    close: bool = False


class Faults:
    """Armed faults, each spent by the first request it applies to."""

    def __init__(self) -> None:
        self.armed: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        self.armed.append(fault)

    def override(self, service: str | None, command: str | None) -> Override | None:
        """The override for this request, spending the fault that causes it."""
        for index, fault in enumerate(self.armed):
            override = _override(fault, service, command)
            if override is None:
                continue
            if fault.count > 1:
                self.armed[index] = Fault(fault.mode, count=fault.count - 1)
            else:
                del self.armed[index]
            return override
        return None


def _override(fault: Fault, service: str | None, command: str | None) -> Override | None:
    login = service == "ADMIN" and command == "LOGIN"
    subscribe = service != "ADMIN" and command in ("SUBS", "ADD")
    if fault.mode == "ignore" and command == fault.command:
        return Override(silent=True)
    if fault.mode == "refuse_login" and login:
        return Override(code=3, msg="Login denied (SIMULATED fault)", close=True)
    if fault.mode == "code" and fault.code == 12 and login:
        return Override(code=12, msg="Connection limit reached: another streamer is connected (SIMULATED fault)",
                        close=True)
    if fault.mode == "code" and fault.code == 11 and subscribe:
        return Override(code=11, msg=f"Service {service} not available or temporary down (SIMULATED fault)")
    if fault.mode == "code" and fault.code == 19 and subscribe:
        return Override(code=19, msg=f"Symbol limit reached for {service} (SIMULATED fault)")
    return None
