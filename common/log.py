"""JSON log lines, one object per line, each carrying the actor's name, secrets redacted.

Actors log to stdout; supervisord writes each actor's stdout to its own
rotated file, so one file per actor holds nothing but that actor's lines.
Every line passes `common.redact.REDACT` last, so a database error that
echoes part of DATABASE_URL, or a library that logs a token, writes `***`.
Uncaught exceptions, in any thread, are logged the same way rather than
printed raw to stderr (which supervisord also writes to the actor's file).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings

import msgspec

from common.redact import REDACT

_encoder = msgspec.json.Encoder(enc_hook=repr)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, actor: str):
        super().__init__()
        self.actor = actor

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "actor": self.actor,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return REDACT(_encoder.encode(line).decode())


def setup(actor: str, level: str = "INFO") -> logging.Logger:
    """Route every logger (ours and the libraries') through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(actor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    # authlib warns about its own httpx integration, which schwab-py uses: not ours to fix.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logger = logging.getLogger(actor)

    def uncaught(kind: type[BaseException], error: BaseException, trace: object) -> None:
        logger.critical("uncaught exception", exc_info=(kind, error, trace))

    sys.excepthook = uncaught
    threading.excepthook = lambda hook: uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback)
    return logger
